"""TLS identities: generated self-signed certificates, and the `cert` binding's id-pe-cmw.

The `cert` binding (RA-TLS style) puts the evidence CMW into an X.509 extension
(id-pe-cmw, 1.3.6.1.5.5.7.1.35) of a per-connection self-signed certificate, with
binder = SHA-256(SPKI_DER). The binder depends on the key only, not on the connection,
so such evidence can be replayed by anyone holding the key and the certificate, and a
relay that forwards the handshake to the real attester is not detected (diversion).
It is kept as the benchmark baseline and for interoperability.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attestnet.errors import VerificationError
from attestnet.tls.authenticator import spki_der
from attestnet.tls.config import TIKPrivateKey
from attestnet.tls.errors import MalformedMessage

__all__ = [
    "ID_PE_CMW",
    "Identity",
    "cert_binding_binder",
    "decode_cmw_extension",
    "encode_cmw_extension",
    "generate_identity",
    "read_cmw_extension",
]

ID_PE_CMW = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.35")

_OCTET_STRING = 0x04
_UTF8_STRING = 0x0C


@dataclass(frozen=True)
class Identity:
    """A certificate chain (end-entity first) and the end-entity's private key."""

    chain: tuple[x509.Certificate, ...]
    key: TIKPrivateKey

    @functools.cached_property
    def chain_der(self) -> tuple[bytes, ...]:
        """The chain in DER, encoded once for every connection that uses this identity."""
        return tuple(c.public_bytes(serialization.Encoding.DER) for c in self.chain)


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def encode_cmw_extension(cmw: bytes) -> bytes:
    """DER of the id-pe-cmw value: CHOICE { json UTF8String, cbor OCTET STRING }.

    A CMW that starts with '[' or '{' is JSON; anything else is CBOR.
    """
    tag = _UTF8_STRING if cmw[:1] in (b"[", b"{") else _OCTET_STRING
    return bytes([tag]) + _der_length(len(cmw)) + cmw


def decode_cmw_extension(value: bytes) -> bytes:
    if len(value) < 2 or value[0] not in (_OCTET_STRING, _UTF8_STRING):
        raise MalformedMessage("id-pe-cmw: value is not a DER OCTET STRING or UTF8String")
    first = value[1]
    offset = 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if size == 0 or size > 4 or len(value) < 2 + size:
            raise MalformedMessage("id-pe-cmw: invalid DER length")
        length = int.from_bytes(value[2 : 2 + size], "big")
        offset += size
        # DER uses the shortest length form: long form only from 128, no leading zeros.
        if length < 0x80 or value[2] == 0:
            raise MalformedMessage("id-pe-cmw: DER length is not in its shortest form")
    if offset + length != len(value):
        raise MalformedMessage(
            f"id-pe-cmw: DER length {length} does not match {len(value) - offset} content bytes"
        )
    content = value[offset:]
    is_json = content[:1] in (b"[", b"{")
    if value[0] == _UTF8_STRING:
        if not is_json:
            raise MalformedMessage("id-pe-cmw: a UTF8String must carry a JSON CMW")
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("id-pe-cmw: UTF8String is not valid UTF-8") from None
    elif is_json:
        raise MalformedMessage("id-pe-cmw: a JSON CMW must be a UTF8String, not an OCTET STRING")
    return content


def generate_identity(
    common_name: str = "attestnet",
    cmw: bytes | None = None,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Identity:
    """Generate an EC P-256 key and a self-signed certificate, valid for one day.

    With `cmw`, the certificate carries it in a non-critical id-pe-cmw extension.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if cmw is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ID_PE_CMW, encode_cmw_extension(cmw)), critical=False
        )
    certificate = builder.sign(key, hashes.SHA256())
    return Identity((certificate,), key)


def cert_binding_binder(certificate_or_key: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    """Return SHA-256(SPKI_DER), the evidence nonce of the `cert` binding."""
    if isinstance(certificate_or_key, x509.Certificate):
        public_key = certificate_or_key.public_key()
    else:
        public_key = certificate_or_key.public_key()
    return hashlib.sha256(spki_der(public_key)).digest()


def read_cmw_extension(certificate: x509.Certificate) -> bytes:
    """Return the CMW in the certificate's id-pe-cmw extension, or raise VerificationError."""
    try:
        extension = certificate.extensions.get_extension_for_oid(ID_PE_CMW)
    except x509.ExtensionNotFound:
        raise VerificationError(
            "attestation.offered",
            "peer certificate has no id-pe-cmw extension (the peer did not attest)",
            expected=ID_PE_CMW.dotted_string,
        ) from None
    value = extension.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise MalformedMessage("id-pe-cmw: unexpected parsed extension type")
    return decode_cmw_extension(value.value)
