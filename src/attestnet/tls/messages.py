"""Encode and decode the RFC 9261 messages that carry attestation.

Every message is a TLS 1.3 handshake message, `msg_type(1) || length(uint24) || body`,
without record-layer framing (RFC 9261, sections 4 and 5.2):

- authenticator request: CertificateRequest (type 13) when the TLS server requests,
  ClientCertificateRequest (type 17) when the TLS client requests. Both are
  `certificate_request_context<0..255> || extensions<2..2^16-1>`.
- authenticator: Certificate (11) || CertificateVerify (15) || Finished (20), with the
  bodies of RFC 8446, sections 4.4.2 to 4.4.4.

Decoders reject truncated input and trailing bytes with `MalformedMessage`.
"""

from __future__ import annotations

from dataclasses import dataclass

from attestnet.tls.errors import MalformedMessage

__all__ = [
    "CERTIFICATE",
    "CERTIFICATE_REQUEST",
    "CERTIFICATE_VERIFY",
    "CLIENT_CERTIFICATE_REQUEST",
    "EXTENSION_SIGNATURE_ALGORITHMS",
    "FINISHED",
    "AuthenticatorMessages",
    "AuthenticatorRequest",
    "CertificateEntry",
    "CertificateMessage",
    "CertificateVerify",
    "Extension",
    "Reader",
    "decode_authenticator",
    "decode_authenticator_request",
    "decode_certificate",
    "decode_certificate_verify",
    "decode_cmw_attestation",
    "decode_signature_algorithms",
    "encode_authenticator_request",
    "encode_certificate",
    "encode_certificate_verify",
    "encode_cmw_attestation",
    "encode_extensions",
    "encode_handshake",
    "encode_signature_algorithms",
    "split_handshake_messages",
]

# HandshakeType values (RFC 8446, section 4; 17 is registered by RFC 9261).
CERTIFICATE = 11
CERTIFICATE_REQUEST = 13
CERTIFICATE_VERIFY = 15
CLIENT_CERTIFICATE_REQUEST = 17
FINISHED = 20

EXTENSION_SIGNATURE_ALGORITHMS = 13

_HANDSHAKE_NAMES = {
    CERTIFICATE: "Certificate",
    CERTIFICATE_REQUEST: "CertificateRequest",
    CERTIFICATE_VERIFY: "CertificateVerify",
    CLIENT_CERTIFICATE_REQUEST: "ClientCertificateRequest",
    FINISHED: "Finished",
}


class Reader:
    """Cursor over TLS presentation-language data; every read checks the remaining length."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._offset = 0
        self._what = what

    def _take(self, count: int) -> bytes:
        end = self._offset + count
        if end > len(self._data):
            raise MalformedMessage(
                f"{self._what}: truncated at offset {self._offset}: "
                f"need {count} bytes, {len(self._data) - self._offset} left"
            )
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self._take(size), "big")

    def vector(self, length_size: int, minimum: int = 0) -> bytes:
        length = self.uint(length_size)
        if length < minimum:
            raise MalformedMessage(
                f"{self._what}: vector at offset {self._offset - length_size} has length "
                f"{length}, minimum {minimum}"
            )
        return self._take(length)

    def remaining(self) -> int:
        return len(self._data) - self._offset

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise MalformedMessage(
                f"{self._what}: {len(self._data) - self._offset} trailing bytes "
                f"at offset {self._offset}"
            )


def _vector(data: bytes, length_size: int) -> bytes:
    if len(data) >= 1 << (8 * length_size):
        raise ValueError(f"vector of {len(data)} bytes does not fit a {length_size}-byte length")
    return len(data).to_bytes(length_size, "big") + data


@dataclass(frozen=True)
class Extension:
    """One TLS extension: `extension_type(2) || extension_data<0..2^16-1>`."""

    type: int
    data: bytes


def encode_extensions(extensions: tuple[Extension, ...]) -> bytes:
    body = b"".join(e.type.to_bytes(2, "big") + _vector(e.data, 2) for e in extensions)
    return _vector(body, 2)


def _decode_extensions(reader: Reader, what: str, minimum: int) -> tuple[Extension, ...]:
    inner = Reader(reader.vector(2, minimum), what)
    extensions: list[Extension] = []
    seen: set[int] = set()
    while inner.remaining():
        extension_type = inner.uint(2)
        data = inner.vector(2)
        if extension_type in seen:
            raise MalformedMessage(f"{what}: extension {extension_type} appears twice")
        seen.add(extension_type)
        extensions.append(Extension(extension_type, data))
    return tuple(extensions)


def encode_handshake(msg_type: int, body: bytes) -> bytes:
    """Frame `body` as a handshake message: type(1) || length(uint24) || body."""
    return bytes([msg_type]) + _vector(body, 3)


def split_handshake_messages(data: bytes, what: str) -> list[tuple[int, bytes, bytes]]:
    """Split concatenated handshake messages into (type, body, whole message) tuples."""
    reader = Reader(data, what)
    messages: list[tuple[int, bytes, bytes]] = []
    while reader.remaining():
        start = len(data) - reader.remaining()
        msg_type = reader.uint(1)
        body = reader.vector(3)
        messages.append((msg_type, body, data[start : start + 4 + len(body)]))
    return messages


@dataclass(frozen=True)
class AuthenticatorRequest:
    """A CertificateRequest or ClientCertificateRequest used as an authenticator request."""

    msg_type: int
    context: bytes
    extensions: tuple[Extension, ...]

    def extension(self, extension_type: int) -> Extension | None:
        return next((e for e in self.extensions if e.type == extension_type), None)


def encode_authenticator_request(request: AuthenticatorRequest) -> bytes:
    body = _vector(request.context, 1) + encode_extensions(request.extensions)
    return encode_handshake(request.msg_type, body)


def decode_authenticator_request(data: bytes) -> AuthenticatorRequest:
    messages = split_handshake_messages(data, "authenticator request")
    if len(messages) != 1:
        raise MalformedMessage(
            f"authenticator request: expected one handshake message, got {len(messages)}"
        )
    msg_type, body, _ = messages[0]
    if msg_type not in (CERTIFICATE_REQUEST, CLIENT_CERTIFICATE_REQUEST):
        raise MalformedMessage(
            f"authenticator request: handshake type {msg_type} is not CertificateRequest (13) "
            "or ClientCertificateRequest (17)"
        )
    reader = Reader(body, _HANDSHAKE_NAMES[msg_type])
    context = reader.vector(1)
    extensions = _decode_extensions(reader, _HANDSHAKE_NAMES[msg_type], minimum=2)
    reader.finish()
    return AuthenticatorRequest(msg_type, context, extensions)


def encode_signature_algorithms(schemes: tuple[int, ...]) -> Extension:
    body = b"".join(s.to_bytes(2, "big") for s in schemes)
    return Extension(EXTENSION_SIGNATURE_ALGORITHMS, _vector(body, 2))


def decode_signature_algorithms(extension: Extension) -> tuple[int, ...]:
    reader = Reader(extension.data, "signature_algorithms")
    inner = Reader(reader.vector(2, minimum=2), "signature_algorithms")
    reader.finish()
    if inner.remaining() % 2:
        raise MalformedMessage("signature_algorithms: odd list length")
    schemes: list[int] = []
    while inner.remaining():
        schemes.append(inner.uint(2))
    return tuple(schemes)


def encode_cmw_attestation(cmw: bytes) -> bytes:
    """Encode the extension_data of cmw_attestation: `cmw_data<1..2^16-1>`."""
    if not 1 <= len(cmw) <= 0xFFFF:
        raise ValueError(f"CMW of {len(cmw)} bytes does not fit cmw_attestation (1 to 65535 bytes)")
    return _vector(cmw, 2)


def decode_cmw_attestation(data: bytes) -> bytes:
    reader = Reader(data, "cmw_attestation")
    cmw = reader.vector(2, minimum=1)
    reader.finish()
    return cmw


@dataclass(frozen=True)
class CertificateEntry:
    """One CertificateEntry: DER certificate and its extensions (RFC 8446, 4.4.2)."""

    cert_data: bytes
    extensions: tuple[Extension, ...]


@dataclass(frozen=True)
class CertificateMessage:
    context: bytes
    entries: tuple[CertificateEntry, ...]


def encode_certificate(message: CertificateMessage) -> bytes:
    entries = b"".join(
        _vector(entry.cert_data, 3) + encode_extensions(entry.extensions)
        for entry in message.entries
    )
    return encode_handshake(CERTIFICATE, _vector(message.context, 1) + _vector(entries, 3))


def decode_certificate(body: bytes) -> CertificateMessage:
    reader = Reader(body, "Certificate")
    context = reader.vector(1)
    inner = Reader(reader.vector(3), "Certificate.certificate_list")
    reader.finish()
    entries: list[CertificateEntry] = []
    while inner.remaining():
        cert_data = inner.vector(3, minimum=1)
        extensions = _decode_extensions(inner, "CertificateEntry", minimum=0)
        entries.append(CertificateEntry(cert_data, extensions))
    return CertificateMessage(context, tuple(entries))


@dataclass(frozen=True)
class CertificateVerify:
    algorithm: int
    signature: bytes


def encode_certificate_verify(message: CertificateVerify) -> bytes:
    body = message.algorithm.to_bytes(2, "big") + _vector(message.signature, 2)
    return encode_handshake(CERTIFICATE_VERIFY, body)


def decode_certificate_verify(body: bytes) -> CertificateVerify:
    reader = Reader(body, "CertificateVerify")
    algorithm = reader.uint(2)
    signature = reader.vector(2, minimum=1)
    reader.finish()
    return CertificateVerify(algorithm, signature)


@dataclass(frozen=True)
class AuthenticatorMessages:
    """A decoded authenticator, with each message's encoding kept for the transcript.

    `certificate_verify` and `finished` are None in an empty authenticator (a refusal).
    """

    certificate: CertificateMessage
    certificate_bytes: bytes
    certificate_verify: CertificateVerify | None
    certificate_verify_bytes: bytes
    finished: bytes


def decode_authenticator(data: bytes) -> AuthenticatorMessages:
    """Decode Certificate || CertificateVerify || Finished, or an empty authenticator.

    An empty authenticator (RFC 9261, section 6) is a lone Finished message; it is
    returned with an empty Certificate message so that the caller can verify it.
    """
    messages = split_handshake_messages(data, "authenticator")
    types = [m[0] for m in messages]
    if types == [FINISHED]:
        empty = CertificateMessage(b"", ())
        return AuthenticatorMessages(empty, b"", None, b"", messages[0][1])
    if types != [CERTIFICATE, CERTIFICATE_VERIFY, FINISHED]:
        names = [_HANDSHAKE_NAMES.get(t, str(t)) for t in types]
        raise MalformedMessage(
            "authenticator: expected Certificate, CertificateVerify, Finished; got "
            + ", ".join(names)
        )
    (_, cert_body, cert_bytes), (_, verify_body, verify_bytes), (_, finished, _) = messages
    return AuthenticatorMessages(
        decode_certificate(cert_body),
        cert_bytes,
        decode_certificate_verify(verify_body),
        verify_bytes,
        finished,
    )
