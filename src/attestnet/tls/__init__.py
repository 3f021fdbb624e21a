"""Attested TLS: RFC 9261 exported authenticators, bindings, blocking and asyncio adapters."""
