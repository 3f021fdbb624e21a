"""OpenSSL set-up and the post-handshake steps shared by the blocking and asyncio adapters."""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL

from attestnet.errors import VerificationError
from attestnet.tls.authenticator import Exporter, spki_der
from attestnet.tls.config import AttestedTLSConfig, Binding
from attestnet.tls.identity import (
    Identity,
    cert_binding_binder,
    generate_identity,
    read_cmw_extension,
)
from attestnet.tls.session import TIMING_PHASES, AttestationSession

logger = logging.getLogger("attestnet.tls")

_connection_ids = itertools.count(1)


def next_connection_id(prefix: str) -> str:
    return f"{prefix}-{next(_connection_ids)}"


@dataclass
class AttestationInfo:
    """The facts that the attestation of one connection established about the peer."""

    binding: Binding
    peer_result: Any = None
    """The appraiser's return value, or None when this side did not appraise the peer."""
    peer_certificate: x509.Certificate | None = None
    """The peer's certificate (the authenticator's end-entity in expat, the TLS one in cert)."""
    peer_tik: bytes | None = None
    """DER SubjectPublicKeyInfo of the peer's TIK, when the peer was appraised."""
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMING_PHASES, 0.0))
    """Seconds per phase; "transfer" is the attestation exchange's wall time minus the
    local phases, so it is the time spent on the network and waiting for the peer."""


class AttestationView:
    """Read-only access to a connection's `AttestationInfo`, shared by both adapters."""

    info: AttestationInfo

    @property
    def binding(self) -> Binding:
        return self.info.binding

    @property
    def peer_result(self) -> Any:
        return self.info.peer_result

    @property
    def peer_certificate(self) -> Any:
        return self.info.peer_certificate

    @property
    def peer_tik(self) -> bytes | None:
        return self.info.peer_tik

    @property
    def timings(self) -> dict[str, float]:
        return self.info.timings


def local_identity(config: AttestedTLSConfig) -> Identity | None:
    """Return the configured identity, or a generated one; None for per-connection identities."""
    if config.certificate_chain is not None and config.private_key is not None:
        return Identity(config.certificate_chain, config.private_key)
    if config.binding is Binding.CERT and config.role.attests:
        return None
    return generate_identity()


def client_identity(config: AttestedTLSConfig, info: AttestationInfo) -> Identity | None:
    """Return the identity a TLS client presents or signs its authenticator with.

    None when it needs none: a client that does not attest and has no configured
    certificate sends no certificate, so generating one would be wasted work.
    """
    if config.certificate_chain is not None and config.private_key is not None:
        return Identity(config.certificate_chain, config.private_key)
    if not config.role.attests:
        return None
    if config.binding is Binding.CERT:
        return cert_binding_identity(config, info)
    return generate_identity()


def client_presents(config: AttestedTLSConfig) -> bool:
    """Tell whether a client puts its identity into the TLS handshake, rather than only
    into an authenticator."""
    return config.certificate_chain is not None or (
        config.binding is Binding.CERT and config.role.attests
    )


_client_contexts: dict[tuple[Any, ...], SSL.Context] = {}
_CLIENT_CONTEXT_CACHE_SIZE = 32


def client_context(config: AttestedTLSConfig, identity: Identity | None) -> SSL.Context:
    """Return a client context, shared by connections with the same TLS settings.

    Creating an SSL_CTX costs about as much as a tenth of a loopback handshake, so
    clients reuse one per (binding, role, cipher suites, CA file). A context is not
    shared when the identity has intermediates, because they go into the context.
    The CA file's modification time and size are part of the key, so a replaced file
    is loaded again.
    """
    if identity is not None and len(identity.chain) > 1:
        context = make_context(config, is_server=False)
        add_chain(context, identity)
        return context
    ca_state: tuple[str, int, int] | None = None
    if config.trusted_ca_file is not None:
        try:
            status = os.stat(config.trusted_ca_file)
        except OSError:
            return make_context(config, is_server=False)  # raises with the file's error
        ca_state = (str(config.trusted_ca_file), status.st_mtime_ns, status.st_size)
    key = (config.binding, config.role.appraises, config.tls13_ciphersuites, ca_state)
    cached = _client_contexts.get(key)
    if cached is not None:
        return cached
    context = make_context(config, is_server=False)
    if len(_client_contexts) >= _CLIENT_CONTEXT_CACHE_SIZE:
        _client_contexts.clear()
    _client_contexts[key] = context
    return context


def cert_binding_identity(config: AttestedTLSConfig, info: AttestationInfo) -> Identity:
    """Generate the cert binding's per-connection key and certificate with evidence."""
    from cryptography.hazmat.primitives.asymmetric import ec

    assert config.attester is not None
    started = time.perf_counter()
    key = ec.generate_private_key(ec.SECP256R1())
    binder = cert_binding_binder(key)
    info.timings["authenticator_build"] += time.perf_counter() - started
    started = time.perf_counter()
    cmw = config.attester.evidence(binder)
    info.timings["evidence"] += time.perf_counter() - started
    started = time.perf_counter()
    identity = generate_identity("attestnet-cert-binding", cmw, key=key)
    info.timings["authenticator_build"] += time.perf_counter() - started
    return identity


def _accept_any_certificate(
    connection: SSL.Connection, certificate: Any, errnum: int, depth: int, ok: int
) -> bool:
    # The peer is authenticated by its attestation, not by a CA.
    return True


def make_context(config: AttestedTLSConfig, *, is_server: bool) -> SSL.Context:
    """Return a TLS 1.3-only context without tickets or a session cache."""
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.set_max_proto_version(SSL.TLS1_3_VERSION)
    context.set_options(SSL.OP_NO_TICKET)
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    if config.tls13_ciphersuites is not None:
        context.set_tls13_ciphersuites(config.tls13_ciphersuites.encode())

    needs_peer_certificate = config.binding is Binding.CERT and config.role.appraises
    if config.trusted_ca_file is not None:
        context.load_verify_locations(str(config.trusted_ca_file))
        mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if is_server else 0)
        context.set_verify(mode)
    elif needs_peer_certificate:
        mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if is_server else 0)
        context.set_verify(mode, _accept_any_certificate)
    else:
        context.set_verify(SSL.VERIFY_NONE)
    return context


def use_identity(connection: SSL.Connection | SSL.Context, identity: Identity) -> None:
    connection.use_certificate(identity.chain[0])
    connection.use_privatekey(identity.key)


def add_chain(context: SSL.Context, identity: Identity) -> None:
    for certificate in identity.chain[1:]:
        context.add_extra_chain_cert(certificate)


def exporter_for(connection: SSL.Connection) -> Exporter:
    def export(label: bytes, context_value: bytes, length: int) -> bytes:
        return bytes(connection.export_keying_material(label, length, context_value))

    return export


def authenticator_hash(connection: SSL.Connection) -> hashes.HashAlgorithm:
    """Return the hash of the negotiated TLS 1.3 cipher suite (the authenticator hash)."""
    name = connection.get_cipher_name() or ""
    if name.endswith("SHA384"):
        return hashes.SHA384()
    if name.endswith("SHA256"):
        return hashes.SHA256()
    raise VerificationError(
        "tls.version", "cipher suite has no known TLS 1.3 hash", actual=name or "none"
    )


def check_handshake(connection: SSL.Connection) -> None:
    """Check 1: TLS 1.3 and a full handshake."""
    version = connection.get_protocol_version_name()
    if version != "TLSv1.3":
        raise VerificationError(
            "tls.version", "connection is not TLS 1.3", expected="TLSv1.3", actual=version
        )
    # NOTE: pyOpenSSL has no public SSL_session_reused. Resumption is ruled out by
    # construction: both contexts disable tickets and the session cache, and clients
    # never call set_session.


def _certificate_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def new_session(
    connection: SSL.Connection,
    config: AttestedTLSConfig,
    identity: Identity | None,
    *,
    is_server: bool,
    connection_id: str,
) -> AttestationSession:
    peer = connection.get_peer_certificate(as_cryptography=True)
    chain = identity.chain_der if identity else ()
    return AttestationSession(
        is_server=is_server,
        requests_attestation=config.role.appraises,
        offers_attestation=config.role.attests,
        exporter=exporter_for(connection),
        hash_algorithm=authenticator_hash(connection),
        attester=config.attester,
        appraiser=config.appraiser,
        certificate_chain=chain,
        private_key=identity.key if identity else None,
        peer_handshake_certificate=_certificate_der(peer) if peer is not None else None,
        exporter_label=config.exporter_label,
        exporter_length=config.exporter_length,
        cmw_extension_type=config.cmw_extension_type,
        max_frame_size=config.max_frame_size,
        connection_id=connection_id,
    )


def appraise_cert_binding(
    connection: SSL.Connection, config: AttestedTLSConfig, info: AttestationInfo
) -> None:
    """Appraise the CMW in the peer's TLS certificate (the `cert` binding)."""
    assert config.appraiser is not None
    peer = connection.get_peer_certificate(as_cryptography=True)
    if peer is None:
        raise VerificationError(
            "attestation.offered", "peer sent no certificate, so it did not attest"
        )
    cmw = read_cmw_extension(peer)
    binder = cert_binding_binder(peer)
    started = time.perf_counter()
    info.peer_result = config.appraiser.appraise(cmw, binder=binder, at=config.clock())
    info.timings["appraisal"] += time.perf_counter() - started
    info.peer_certificate = peer
    info.peer_tik = spki_der(peer.public_key())


def finish_session_info(
    info: AttestationInfo, session: AttestationSession, exchange_seconds: float
) -> None:
    for phase, seconds in session.timings.items():
        if phase != "tls_handshake":
            info.timings[phase] += seconds
    local = sum(v for k, v in session.timings.items() if k not in ("tls_handshake", "transfer"))
    info.timings["transfer"] = max(0.0, exchange_seconds - local)
    info.peer_result = session.peer_result
    info.peer_certificate = session.peer_certificate
    info.peer_tik = session.peer_tik
