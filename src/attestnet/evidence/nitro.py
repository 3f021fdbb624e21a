"""AWS Nitro Enclaves attestation documents.

A document is a COSE_Sign1 (RFC 9052; CBOR tag 18 or untagged) signed with ES384
by an enclave-specific leaf certificate that the document carries, together with
the issuing CA bundle (root first, then the intermediates). The payload is a CBOR
map; its fields and limits follow AWS's "Nitro Enclaves Attestation Process"
(aws-nitro-enclaves-nsm-api, docs/attestation_process.md). Input is the raw CBOR
or its base64 text.

Only a configured trust anchor (the AWS Nitro Enclaves Root-G1 certificate) ends a
chain: the root inside `cabundle` is treated as one more untrusted certificate.

`verify_ratls_certificate` verifies the attested-TLS certificates of Evervault
Cages, which carry a hex-encoded document in the first label of a DNS
subjectAltName and bind the TLS key by setting the document's user_data to the
certificate's SubjectPublicKeyInfo (DER).
"""

from __future__ import annotations

import base64
import binascii
import logging
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.errors import MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence.cbor import decode_strict
from attestnet.evidence.cose import CoseMessage, parse_cose
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.signatures import verify_signature
from attestnet.evidence.x509chain import (
    check_certificate_fields,
    check_validity,
    describe_path,
    load_certificate,
    public_key_der,
    subject_text,
    verify_chain,
)

__all__ = [
    "FORMAT",
    "AttestationDocument",
    "SignedDocument",
    "check_tls_key_binding",
    "extract_document",
    "looks_like",
    "parse",
    "verify",
    "verify_ratls_certificate",
]

logger = logging.getLogger(__name__)

FORMAT = "nitro"

_COSE_HEADER_CRIT = 2
_COSE_ALG_ES384 = -35
_ES384_SIGNATURE_SIZE = 96

# Field limits from the AWS syntactic validation rules.
_REQUIRED_FIELDS = ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
_OPTIONAL_FIELDS = ("public_key", "user_data", "nonce")
_MAX_CERTIFICATE_SIZE = 1024
_MAX_PUBLIC_KEY_SIZE = 1024
_MAX_USER_DATA_SIZE = 512
_MAX_NONCE_SIZE = 512
_MAX_PCRS = 32
# The spec allows any uint64; Python's datetime ends at 9999-12-31T23:59:59.999Z.
_MAX_TIMESTAMP = 253402300799999
_PCR_SIZES = (32, 48, 64)
_DIGESTS = ("SHA384",)
# PCRs 0, 1 and 2 (enclave image, kernel and bootstrap, application) read as zeros
# when an enclave runs in debug mode.
_DEBUG_ZERO_PCRS = (0, 1, 2)

_BASE64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/=-_")


@dataclass(frozen=True)
class AttestationDocument:
    """The payload of a Nitro attestation document. `timestamp` is in ms since the epoch."""

    module_id: str
    digest: str
    timestamp: int
    pcrs: dict[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None

    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp / 1000, UTC)


@dataclass(frozen=True)
class SignedDocument:
    """The COSE_Sign1 around an attestation document, with its decoded payload."""

    message: CoseMessage
    document: AttestationDocument

    @property
    def protected(self) -> bytes:
        return self.message.protected_bytes

    @property
    def unprotected(self) -> dict[Any, Any]:
        return dict(self.message.unprotected)

    @property
    def payload(self) -> bytes:
        return self.message.payload

    @property
    def signature(self) -> bytes:
        return self.message.signature

    @property
    def algorithm(self) -> int:
        return self.message.algorithm.id

    def to_be_signed(self) -> bytes:
        """Return the COSE Sig_structure: ["Signature1", protected, external_aad, payload]."""
        return self.message.to_be_signed()


def _malformed(detail: str) -> MalformedEvidence:
    return MalformedEvidence(FORMAT, detail)


def _cbor_decode(data: bytes, what: str) -> Any:
    """Decode exactly one CBOR item; raise MalformedEvidence on errors or trailing bytes."""
    return decode_strict(data, FORMAT, what)


def _decode_input(data: bytes) -> bytes:
    """Return the CBOR bytes: `data` itself, or its base64 decoding when it is base64 text."""
    if data[:1] in (b"\x84", b"\xd2"):
        return data
    text = data.strip()
    try:
        ascii_text = text.decode("ascii")
    except UnicodeDecodeError:
        raise _malformed("neither a CBOR COSE_Sign1 nor base64 text") from None
    compact = "".join(ascii_text.split())
    if not compact or not set(compact) <= _BASE64_ALPHABET:
        raise _malformed("neither a CBOR COSE_Sign1 nor base64 text")
    # Accept the URL-safe alphabet and missing padding as well as standard base64.
    body = compact.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(f"invalid base64: {exc}") from None


def _bytes_field(payload: dict[str, Any], name: str, minimum: int, maximum: int) -> bytes:
    value = payload[name]
    if not isinstance(value, bytes):
        raise _malformed(f"{name} must be a byte string, got {type(value).__name__}")
    if not minimum <= len(value) <= maximum:
        raise _malformed(f"{name} is {len(value)} bytes; allowed {minimum}..{maximum}")
    return value


def _optional_bytes(payload: dict[str, Any], name: str, maximum: int) -> bytes | None:
    # AWS's syntactic rules reject null field content, but real documents (Evervault's
    # GA document among them) carry public_key: null, so null is read as absent.
    if payload.get(name) is None:
        return None
    minimum = 1 if name == "public_key" else 0
    return _bytes_field(payload, name, minimum, maximum)


def _parse_pcrs(value: Any) -> dict[int, bytes]:
    if not isinstance(value, dict):
        raise _malformed(f"pcrs must be a map, got {type(value).__name__}")
    if not 1 <= len(value) <= _MAX_PCRS:
        raise _malformed(f"pcrs has {len(value)} entries; allowed 1..{_MAX_PCRS}")
    pcrs: dict[int, bytes] = {}
    for index, pcr in value.items():
        if type(index) is not int or not 0 <= index < _MAX_PCRS:
            raise _malformed(f"PCR index {index!r} is not an integer in 0..{_MAX_PCRS - 1}")
        if not isinstance(pcr, bytes) or len(pcr) not in _PCR_SIZES:
            size = len(pcr) if isinstance(pcr, bytes) else type(pcr).__name__
            raise _malformed(f"PCR {index} must be 32, 48 or 64 bytes, got {size}")
        pcrs[index] = pcr
    return dict(sorted(pcrs.items()))


def _parse_payload(payload_bytes: bytes) -> AttestationDocument:
    payload = _cbor_decode(payload_bytes, "COSE payload")
    if not isinstance(payload, dict):
        raise _malformed(f"payload must be a CBOR map, got {type(payload).__name__}")
    unknown = [k for k in payload if k not in _REQUIRED_FIELDS + _OPTIONAL_FIELDS]
    if unknown:
        raise _malformed(f"payload has unknown fields {unknown!r}")
    missing = [k for k in _REQUIRED_FIELDS if payload.get(k) is None]
    if missing:
        raise _malformed(f"payload is missing required fields {missing}")

    module_id = payload["module_id"]
    if not isinstance(module_id, str) or not module_id:
        raise _malformed("module_id must be a non-empty text string")
    digest = payload["digest"]
    if digest not in _DIGESTS:
        raise _malformed(f"digest {digest!r} is not one of {_DIGESTS}")
    timestamp = payload["timestamp"]
    if type(timestamp) is not int or not 0 < timestamp <= _MAX_TIMESTAMP:
        raise _malformed(f"timestamp {timestamp!r} is not in 1..{_MAX_TIMESTAMP} ms")

    cabundle = payload["cabundle"]
    if not isinstance(cabundle, list) or not cabundle:
        raise _malformed("cabundle must be a non-empty array")
    for i, entry in enumerate(cabundle):
        if not isinstance(entry, bytes) or not 1 <= len(entry) <= _MAX_CERTIFICATE_SIZE:
            raise _malformed(f"cabundle[{i}] must be 1..{_MAX_CERTIFICATE_SIZE} bytes")

    return AttestationDocument(
        module_id=module_id,
        digest=digest,
        timestamp=timestamp,
        pcrs=_parse_pcrs(payload["pcrs"]),
        certificate=_bytes_field(payload, "certificate", 1, _MAX_CERTIFICATE_SIZE),
        cabundle=tuple(cabundle),
        public_key=_optional_bytes(payload, "public_key", _MAX_PUBLIC_KEY_SIZE),
        user_data=_optional_bytes(payload, "user_data", _MAX_USER_DATA_SIZE),
        nonce=_optional_bytes(payload, "nonce", _MAX_NONCE_SIZE),
    )


def parse(data: bytes) -> SignedDocument:
    """Parse a document (raw CBOR or base64); raise MalformedEvidence if it is not one."""
    message = parse_cose(
        _cbor_decode(_decode_input(data), "COSE_Sign1"),
        FORMAT,
        kinds=("Sign1",),
        what="COSE_Sign1",
    )
    if _COSE_HEADER_CRIT in message.protected:
        raise _malformed(
            f"protected header lists critical parameters {message.protected[_COSE_HEADER_CRIT]!r}"
        )
    return SignedDocument(message=message, document=_parse_payload(message.payload))


def looks_like(data: bytes) -> bool:
    """Return True for a COSE_Sign1 (raw or base64) whose payload is a Nitro document."""
    try:
        parse(data)
    except MalformedEvidence:
        return False
    return True


def _load_certificate(der: bytes, what: str) -> x509.Certificate:
    return load_certificate(der, format=FORMAT, what=what)


def _claims(signed: SignedDocument, leaf: x509.Certificate) -> dict[str, Any]:
    doc = signed.document
    return {
        "module_id": doc.module_id,
        "digest": doc.digest,
        "timestamp": doc.timestamp,
        "time": doc.time().isoformat(),
        "pcrs": {str(index): value.hex() for index, value in doc.pcrs.items()},
        "certificate": leaf.subject.rfc4514_string(),
        "cabundle_size": len(doc.cabundle),
        "public_key": doc.public_key.hex() if doc.public_key is not None else None,
        "user_data": doc.user_data.hex() if doc.user_data is not None else None,
        "nonce": doc.nonce.hex() if doc.nonce is not None else None,
        "algorithm": signed.algorithm,
    }


def _is_debug(pcrs: dict[int, bytes]) -> bool | None:
    if not all(index in pcrs for index in _DEBUG_ZERO_PCRS):
        return None
    return all(not any(pcrs[index]) for index in _DEBUG_ZERO_PCRS)


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify a document's certificate chain to `anchors` at `at` and its ES384 signature.

    `debug` is True when PCRs 0, 1 and 2 are all zero, as AWS reports them for an
    enclave started in debug mode. Raises MalformedEvidence, ChainError,
    SignatureError or VerificationError.
    """
    signed = parse(data)
    doc = signed.document
    leaf = _load_certificate(doc.certificate, "certificate")
    bundle = [_load_certificate(der, f"cabundle[{i}]") for i, der in enumerate(doc.cabundle)]

    evidence = VerifiedEvidence(format=FORMAT, verified_at=at, claims=_claims(signed, leaf))

    # The bundle goes in as untrusted intermediates, root included: only `anchors` ends
    # the path. verify_chain searches by issuer name and signature, so order does not matter.
    path = verify_chain(
        leaf, anchors, at, collateral, intermediates=list(reversed(bundle)), format=FORMAT
    )
    evidence.passed("certificate chain", describe_path(path))

    if signed.algorithm != _COSE_ALG_ES384:
        raise VerificationError(
            "document signature",
            "unsupported COSE algorithm",
            claim="alg",
            expected=f"{_COSE_ALG_ES384} (ES384)",
            actual=signed.algorithm,
        )
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise SignatureError(
            "document signature",
            "leaf certificate key is not ECDSA P-384",
            expected="secp384r1",
            actual=getattr(getattr(key, "curve", None), "name", type(key).__name__),
        )
    if len(signed.signature) != _ES384_SIGNATURE_SIZE:
        raise SignatureError(
            "document signature",
            "ES384 signature must be r||s of 48 bytes each",
            expected=f"{_ES384_SIGNATURE_SIZE} bytes",
            actual=f"{len(signed.signature)} bytes",
        )
    verify_signature(
        key,
        signed.signature,
        signed.to_be_signed(),
        scheme="ecdsa-raw",
        hash_algorithm=hashes.SHA384(),
        check="document signature",
        what=f"Nitro attestation document of {doc.module_id}",
    )
    evidence.passed("document signature", f"ES384 by {subject_text(leaf)}")

    evidence.measurements = {f"nitro/pcr/{index}": value for index, value in doc.pcrs.items()}
    evidence.nonce = doc.nonce
    evidence.instance_id = doc.module_id.encode()
    evidence.debug = _is_debug(doc.pcrs)
    evidence.signer = key
    return evidence


def check_tls_key_binding(
    evidence: VerifiedEvidence, certificate: x509.Certificate | bytes
) -> None:
    """Raise VerificationError unless the verified document's user_data is the TLS key.

    Evervault Cages bind a TLS certificate to a document by setting user_data to the
    certificate's SubjectPublicKeyInfo (DER). Appends a passed check to `evidence`.
    """
    if isinstance(certificate, bytes):
        certificate = _load_certificate(certificate, "TLS certificate")
    else:
        check_certificate_fields(certificate, format=FORMAT, what="TLS certificate")
    spki = public_key_der(certificate.public_key())
    user_data_hex = evidence.claims.get("user_data")
    user_data = bytes.fromhex(user_data_hex) if isinstance(user_data_hex, str) else None
    if user_data != spki:
        raise VerificationError(
            "tls key binding",
            "the document's user_data is not the TLS certificate's SubjectPublicKeyInfo",
            claim="user_data",
            expected=spki,
            actual=user_data if user_data is not None else "absent",
        )
    evidence.passed(
        "tls key binding",
        f"user_data equals the SubjectPublicKeyInfo of {subject_text(certificate)}",
    )


def _is_hex(text: str) -> bool:
    return len(text) % 2 == 0 and bool(text) and all(c in string.hexdigits for c in text)


def extract_document(certificate: x509.Certificate) -> bytes:
    """Return the attestation document embedded in an attested-TLS certificate.

    Evervault Cages put it hex-encoded before the first dot of a DNS subjectAltName
    ("<hex>.<cage>.<app>.cages.evervault.com"). Raises MalformedEvidence when no
    DNS name carries a document.
    """
    check_certificate_fields(certificate, format=FORMAT, what="attested TLS certificate")
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise _malformed("certificate has no subjectAltName carrying a document") from None
    for name in sorted(names.value.get_values_for_type(x509.DNSName), key=len, reverse=True):
        label = name.split(".", 1)[0]
        if _is_hex(label):
            candidate = bytes.fromhex(label)
            if looks_like(candidate):
                return candidate
    raise _malformed("no DNS subjectAltName of the certificate carries a hex-encoded document")


def verify_ratls_certificate(
    cert_der: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify an attested-TLS certificate that carries a Nitro document (Evervault Cages).

    Checks the certificate's own validity at `at`, verifies the embedded document as
    `verify` does, and checks that its user_data is the certificate's
    SubjectPublicKeyInfo. The certificate's issuer is not checked: the document, not
    the issuing CA, vouches for the key.
    """
    certificate = _load_certificate(cert_der, "attested TLS certificate")
    document = extract_document(certificate)
    check_validity(certificate, at, "attested TLS certificate")
    evidence = verify(document, anchors=anchors, at=at, collateral=collateral)
    check_tls_key_binding(evidence, certificate)
    return evidence
