"""Build and verify RFC 9261 exported authenticators that carry a `cmw_attestation` extension.

Key schedule (RFC 9261, section 5.1), with an empty exporter context and the length
of the authenticator hash, which is the hash of the negotiated TLS 1.3 cipher suite:

- Handshake Context = Exporter("EXPORTER-{client|server} authenticator handshake context")
- Finished MAC Key  = Exporter("EXPORTER-{client|server} authenticator finished key")

where client/server is the TLS role of the party that sends the authenticator.

CertificateVerify signs `0x20 * 64 || "Exported Authenticator" || 0x00 ||
Hash(Handshake Context || request || Certificate)`, and
`Finished = HMAC(Finished MAC Key, Hash(Handshake Context || request || Certificate ||
CertificateVerify))`.

The attestation binder (draft-fossati-seat-expat, with the label, length and extension
code point configurable) is `SHA-256(SPKI_DER(TIK) || Exporter(label,
certificate_request_context, length))`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from attestnet.errors import VerificationError
from attestnet.evidence.signatures import Scheme, verify_signature
from attestnet.tls.config import TIKPrivateKey
from attestnet.tls.errors import MalformedMessage, UnsupportedExtension
from attestnet.tls.messages import (
    EXTENSION_SIGNATURE_ALGORITHMS,
    FINISHED,
    AuthenticatorMessages,
    AuthenticatorRequest,
    CertificateEntry,
    CertificateMessage,
    CertificateVerify,
    Extension,
    decode_cmw_attestation,
    decode_signature_algorithms,
    encode_authenticator_request,
    encode_certificate,
    encode_certificate_verify,
    encode_cmw_attestation,
    encode_handshake,
    encode_signature_algorithms,
)

__all__ = [
    "SUPPORTED_SIGNATURE_SCHEMES",
    "Exporter",
    "VerifiedAuthenticator",
    "build_authenticator",
    "compute_binder",
    "make_authenticator_request",
    "spki_der",
    "verify_authenticator",
]

Exporter = Callable[[bytes, bytes, int], bytes]
"""TLS-Exporter(label, context_value, length) of one TLS 1.3 connection."""

CERTIFICATE_VERIFY_CONTEXT = b"Exported Authenticator"

# SignatureScheme code points (RFC 8446, section 4.2.3) that TLS 1.3 allows and this
# module signs and verifies.
ECDSA_SECP256R1_SHA256 = 0x0403
ECDSA_SECP384R1_SHA384 = 0x0503
ECDSA_SECP521R1_SHA512 = 0x0603
RSA_PSS_RSAE_SHA256 = 0x0804
RSA_PSS_RSAE_SHA384 = 0x0805
RSA_PSS_RSAE_SHA512 = 0x0806
ED25519 = 0x0807
ED448 = 0x0808

SUPPORTED_SIGNATURE_SCHEMES: tuple[int, ...] = (
    ECDSA_SECP256R1_SHA256,
    ECDSA_SECP384R1_SHA384,
    ECDSA_SECP521R1_SHA512,
    RSA_PSS_RSAE_SHA256,
    RSA_PSS_RSAE_SHA384,
    RSA_PSS_RSAE_SHA512,
    ED25519,
    ED448,
)

_ECDSA_SCHEMES: dict[int, tuple[type[ec.EllipticCurve], hashes.HashAlgorithm]] = {
    ECDSA_SECP256R1_SHA256: (ec.SECP256R1, hashes.SHA256()),
    ECDSA_SECP384R1_SHA384: (ec.SECP384R1, hashes.SHA384()),
    ECDSA_SECP521R1_SHA512: (ec.SECP521R1, hashes.SHA512()),
}
_RSA_PSS_SCHEMES: dict[int, hashes.HashAlgorithm] = {
    RSA_PSS_RSAE_SHA256: hashes.SHA256(),
    RSA_PSS_RSAE_SHA384: hashes.SHA384(),
    RSA_PSS_RSAE_SHA512: hashes.SHA512(),
}


def _exporter_labels(sender_is_server: bool) -> tuple[bytes, bytes]:
    side = b"server" if sender_is_server else b"client"
    return (
        b"EXPORTER-" + side + b" authenticator handshake context",
        b"EXPORTER-" + side + b" authenticator finished key",
    )


def spki_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def compute_binder(tik_spki_der: bytes, exported: bytes) -> bytes:
    """Return SHA-256(SPKI_DER(TIK) || exported), the evidence nonce of the expat binding."""
    return hashlib.sha256(tik_spki_der + exported).digest()


def make_authenticator_request(
    msg_type: int, context: bytes, cmw_extension_type: int
) -> tuple[AuthenticatorRequest, bytes]:
    """Return a request offering the supported schemes and an empty cmw_attestation."""
    request = AuthenticatorRequest(
        msg_type,
        context,
        (
            encode_signature_algorithms(SUPPORTED_SIGNATURE_SCHEMES),
            Extension(cmw_extension_type, b""),
        ),
    )
    return request, encode_authenticator_request(request)


def _scheme_for_key(key: TIKPrivateKey, offered: tuple[int, ...]) -> int:
    candidates: list[int] = []
    if isinstance(key, ec.EllipticCurvePrivateKey):
        candidates = [s for s, (curve, _) in _ECDSA_SCHEMES.items() if isinstance(key.curve, curve)]
    elif isinstance(key, rsa.RSAPrivateKey):
        candidates = list(_RSA_PSS_SCHEMES)
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        candidates = [ED25519]
    elif isinstance(key, ed448.Ed448PrivateKey):
        candidates = [ED448]
    for scheme in candidates:
        if scheme in offered:
            return scheme
    raise VerificationError(
        "authenticator.signature_scheme",
        "the TIK's key type matches no signature scheme in the authenticator request",
        expected=[f"0x{s:04x}" for s in offered],
        actual=type(key).__name__,
    )


def _sign(key: TIKPrivateKey, scheme: int, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_ECDSA_SCHEMES[scheme][1]))
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = _RSA_PSS_SCHEMES[scheme]
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
        return key.sign(data, pss, algorithm)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(data)
    raise VerificationError(
        "authenticator.signature_scheme", "unsupported TIK key type", actual=type(key).__name__
    )


def _signed_content(transcript_hash: bytes) -> bytes:
    return b"\x20" * 64 + CERTIFICATE_VERIFY_CONTEXT + b"\x00" + transcript_hash


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def build_authenticator(
    *,
    request: AuthenticatorRequest,
    request_bytes: bytes,
    certificate_chain: tuple[bytes, ...],
    private_key: TIKPrivateKey,
    cmw: bytes,
    cmw_extension_type: int,
    exporter: Exporter,
    sender_is_server: bool,
    hash_algorithm: hashes.HashAlgorithm,
) -> bytes:
    """Return Certificate || CertificateVerify || Finished in response to `request`.

    `certificate_chain` is DER, end-entity first; `cmw` goes into the first entry's
    cmw_attestation extension.
    """
    signature_algorithms = request.extension(EXTENSION_SIGNATURE_ALGORITHMS)
    if signature_algorithms is None:
        raise MalformedMessage("authenticator request has no signature_algorithms extension")
    if request.extension(cmw_extension_type) is None:
        raise UnsupportedExtension(
            f"authenticator request does not offer cmw_attestation (type {cmw_extension_type})"
        )
    scheme = _scheme_for_key(private_key, decode_signature_algorithms(signature_algorithms))

    context_label, finished_label = _exporter_labels(sender_is_server)
    size = hash_algorithm.digest_size
    handshake_context = exporter(context_label, b"", size)
    finished_key = exporter(finished_label, b"", size)

    entries = [
        CertificateEntry(
            certificate_chain[0],
            (Extension(cmw_extension_type, encode_cmw_attestation(cmw)),),
        )
    ]
    entries.extend(CertificateEntry(der, ()) for der in certificate_chain[1:])
    certificate = encode_certificate(CertificateMessage(request.context, tuple(entries)))

    transcript = handshake_context + request_bytes + certificate
    signature = _sign(private_key, scheme, _signed_content(_hash(hash_algorithm, transcript)))
    certificate_verify = encode_certificate_verify(CertificateVerify(scheme, signature))

    transcript += certificate_verify
    finished = hmac.new(
        finished_key, _hash(hash_algorithm, transcript), hash_algorithm.name
    ).digest()
    return certificate + certificate_verify + encode_handshake(FINISHED, finished)


@dataclass(frozen=True)
class VerifiedAuthenticator:
    """An authenticator whose context, CertificateVerify and Finished verified."""

    certificate: x509.Certificate
    chain: tuple[bytes, ...]
    cmw: bytes


def _verify_scheme(key: PublicKeyTypes, scheme: int, signature: bytes, data: bytes) -> None:
    kind: Scheme
    algorithm: hashes.HashAlgorithm | None
    if scheme in _ECDSA_SCHEMES:
        curve, algorithm = _ECDSA_SCHEMES[scheme]
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, curve):
            raise VerificationError(
                "authenticator.signature_scheme",
                "CertificateVerify scheme does not match the certificate key",
                expected=curve.name,
                actual=type(key).__name__,
            )
        kind = "ecdsa-der"
    elif scheme in _RSA_PSS_SCHEMES:
        kind, algorithm = "rsa-pss-digest-salt", _RSA_PSS_SCHEMES[scheme]
    elif scheme in (ED25519, ED448):
        expected_type = ed25519.Ed25519PublicKey if scheme == ED25519 else ed448.Ed448PublicKey
        if not isinstance(key, expected_type):
            raise VerificationError(
                "authenticator.signature_scheme",
                "CertificateVerify scheme does not match the certificate key",
                expected=expected_type.__name__,
                actual=type(key).__name__,
            )
        kind, algorithm = "eddsa", None
    else:
        raise VerificationError(
            "authenticator.signature_scheme",
            "CertificateVerify uses an unsupported signature scheme",
            actual=f"0x{scheme:04x}",
        )
    verify_signature(
        key,
        signature,
        data,
        scheme=kind,
        hash_algorithm=algorithm,
        check="authenticator.certificate_verify",
        what="CertificateVerify by the TIK",
    )


def verify_authenticator(
    *,
    request: AuthenticatorRequest,
    request_bytes: bytes,
    authenticator: AuthenticatorMessages,
    cmw_extension_type: int,
    exporter: Exporter,
    sender_is_server: bool,
    hash_algorithm: hashes.HashAlgorithm,
) -> VerifiedAuthenticator:
    """Verify an authenticator against the request this side sent.

    Checks, in order: the context echoes the request's, and the certificate list is not
    empty. cmw_attestation is in the first entry only, and no entry carries an extension
    the request did not offer. CertificateVerify verifies under the end-entity key with
    an offered scheme. Finished matches, compared in constant time.
    """
    certificate = authenticator.certificate
    if authenticator.certificate_verify is None:
        raise VerificationError(
            "authenticator.certificate",
            "peer sent an empty authenticator (it refused to attest)",
        )
    if not hmac.compare_digest(certificate.context, request.context):
        raise VerificationError(
            "authenticator.context",
            "certificate_request_context does not echo this request's context",
            expected=request.context,
            actual=certificate.context,
        )
    if not certificate.entries:
        raise VerificationError("authenticator.certificate", "certificate_list is empty")

    offered = {e.type for e in request.extensions}
    cmw: bytes | None = None
    for index, entry in enumerate(certificate.entries):
        for extension in entry.extensions:
            if extension.type not in offered or extension.type == EXTENSION_SIGNATURE_ALGORITHMS:
                raise UnsupportedExtension(
                    f"CertificateEntry {index} carries extension {extension.type}, "
                    "which the authenticator request did not offer"
                )
            if extension.type == cmw_extension_type:
                if index != 0:
                    raise MalformedMessage(
                        f"cmw_attestation in CertificateEntry {index}; allowed only in the first"
                    )
                cmw = decode_cmw_attestation(extension.data)
    if cmw is None:
        raise VerificationError(
            "authenticator.cmw_attestation",
            "the end-entity CertificateEntry has no cmw_attestation extension",
            expected=f"extension type {cmw_extension_type}",
        )

    try:
        end_entity = x509.load_der_x509_certificate(certificate.entries[0].cert_data)
        public_key = end_entity.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedMessage(f"end-entity certificate is not valid DER X.509: {exc}") from None

    offered_schemes = decode_signature_algorithms(
        request.extension(EXTENSION_SIGNATURE_ALGORITHMS)
        or Extension(EXTENSION_SIGNATURE_ALGORITHMS, b"")
    )
    certificate_verify = authenticator.certificate_verify
    if certificate_verify.algorithm not in offered_schemes:
        raise VerificationError(
            "authenticator.signature_scheme",
            "CertificateVerify uses a scheme the request did not offer",
            expected=[f"0x{s:04x}" for s in offered_schemes],
            actual=f"0x{certificate_verify.algorithm:04x}",
        )

    context_label, finished_label = _exporter_labels(sender_is_server)
    size = hash_algorithm.digest_size
    handshake_context = exporter(context_label, b"", size)
    finished_key = exporter(finished_label, b"", size)

    transcript = handshake_context + request_bytes + authenticator.certificate_bytes
    _verify_scheme(
        public_key,
        certificate_verify.algorithm,
        certificate_verify.signature,
        _signed_content(_hash(hash_algorithm, transcript)),
    )

    transcript += authenticator.certificate_verify_bytes
    verify_signature(
        finished_key,
        authenticator.finished,
        _hash(hash_algorithm, transcript),
        scheme="hmac",
        hash_algorithm=hash_algorithm,
        check="authenticator.finished",
        what="authenticator Finished",
    )
    chain = tuple(entry.cert_data for entry in certificate.entries)
    return VerifiedAuthenticator(end_entity, chain, cmw)
