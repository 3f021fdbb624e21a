"""Certificate path validation at an explicit time, for hardware-issued chains.

The chains that TEE vendors issue (AMD ARK/ASK/VCEK with RSA-PSS, Intel PCK, TPM
EK and AK certificates, AWS Nitro) are short and have a known shape, so this
module builds the path itself and checks every link: issuer name, signature,
validity at the verification time, the CA flag of each issuer, and revocation
where CRLs are given. It does not use the web-PKI policy of
`cryptography.x509.verification`, which rejects certificates that real hardware
issues (RSA-PSS roots without key usage, TPM EK certificates with empty subjects).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attestnet.errors import ChainError, SignatureError
from attestnet.evidence.model import Collateral, TrustAnchors
from attestnet.evidence.signatures import Scheme, verify_signature

__all__ = [
    "check_validity",
    "clear_signature_cache",
    "public_key_der",
    "verify_chain",
    "verify_crl",
    "verify_signed_by",
]

_MAX_DEPTH = 8


def public_key_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def check_validity(cert: x509.Certificate, at: datetime, role: str = "certificate") -> None:
    """Raise ChainError unless `at` lies within the certificate's validity period."""
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    if at < not_before:
        raise ChainError(
            "certificate validity",
            f"{role} {cert.subject.rfc4514_string()!r} is not valid yet",
            claim="notBefore",
            expected=f"<= {at.isoformat()}",
            actual=not_before.isoformat(),
        )
    if at > not_after:
        raise ChainError(
            "certificate validity",
            f"{role} {cert.subject.rfc4514_string()!r} has expired",
            claim="notAfter",
            expected=f">= {at.isoformat()}",
            actual=not_after.isoformat(),
        )


# Certificate signatures that verified, keyed by the SHA-256 of the signed bytes,
# the signature and the issuer key. A signature over fixed bytes stays valid, so a
# relying party that sees the same AK or VCEK chain on every connection checks
# each link once; validity times and revocation are still checked every time.
_VERIFIED_SIGNATURES: OrderedDict[bytes, None] = OrderedDict()
_CACHE_SIZE = 1024


def clear_signature_cache() -> None:
    """Forget verified certificate signatures (the format benchmark measures cold runs)."""
    _VERIFIED_SIGNATURES.clear()


def _cache_key(cert: x509.Certificate, issuer_key: PublicKeyTypes) -> bytes:
    digest = hashlib.sha256(cert.tbs_certificate_bytes)
    digest.update(cert.signature)
    digest.update(public_key_der(issuer_key))
    return digest.digest()


def verify_signed_by(cert: x509.Certificate, issuer_key: PublicKeyTypes) -> None:
    """Raise SignatureError unless `issuer_key` signed `cert` (RSA, RSA-PSS, ECDSA, EdDSA)."""
    key = _cache_key(cert, issuer_key)
    if key in _VERIFIED_SIGNATURES:
        _VERIFIED_SIGNATURES.move_to_end(key)
        return
    scheme: Scheme
    if isinstance(issuer_key, rsa.RSAPublicKey):
        is_pss = isinstance(cert.signature_algorithm_parameters, padding.PSS)
        scheme = "rsa-pss" if is_pss else "rsa-pkcs1"
    elif isinstance(issuer_key, ec.EllipticCurvePublicKey):
        scheme = "ecdsa-der"
    elif isinstance(issuer_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        scheme = "eddsa"
    else:
        raise SignatureError(
            "certificate signature", f"unsupported issuer key type {type(issuer_key).__name__}"
        )
    try:
        verify_signature(
            issuer_key,
            cert.signature,
            cert.tbs_certificate_bytes,
            scheme=scheme,
            hash_algorithm=cert.signature_hash_algorithm,
            check="certificate signature",
            what="certificate",
        )
    except SignatureError:
        raise SignatureError(
            "certificate signature",
            f"signature of certificate {cert.subject.rfc4514_string()!r} does not verify "
            "with the issuer key",
        ) from None
    _VERIFIED_SIGNATURES[key] = None
    if len(_VERIFIED_SIGNATURES) > _CACHE_SIZE:
        _VERIFIED_SIGNATURES.popitem(last=False)


def verify_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate, at: datetime) -> None:
    """Raise unless `issuer` signed `crl` and the CRL is current at `at`."""
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise SignatureError(
            "crl signature",
            f"CRL of {crl.issuer.rfc4514_string()!r} does not verify with its issuer key",
        )
    next_update = crl.next_update_utc
    if crl.last_update_utc > at or (next_update is not None and next_update < at):
        raise ChainError(
            "crl validity",
            f"CRL of {crl.issuer.rfc4514_string()!r} is not current",
            claim="thisUpdate..nextUpdate",
            expected=f"contains {at.isoformat()}",
            actual=f"{crl.last_update_utc.isoformat()}..{next_update}",
        )


def _find_issuer(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != cert.issuer:
            continue
        try:
            verify_signed_by(cert, candidate.public_key())
        except SignatureError:
            continue
        return candidate
    return None


def _check_is_ca(cert: x509.Certificate) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise ChainError(
            "certificate chain",
            f"issuer {cert.subject.rfc4514_string()!r} has no basicConstraints extension",
            claim="basicConstraints.cA",
            expected=True,
            actual="absent",
        ) from None
    if not constraints.ca:
        raise ChainError(
            "certificate chain",
            f"issuer {cert.subject.rfc4514_string()!r} is not a CA",
            claim="basicConstraints.cA",
            expected=True,
            actual=False,
        )


def _check_not_revoked(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    crls: Sequence[x509.CertificateRevocationList],
    at: datetime,
) -> None:
    for crl in crls:
        if crl.issuer != issuer.subject:
            continue
        verify_crl(crl, issuer, at)
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise ChainError(
                "certificate revocation",
                f"certificate {cert.subject.rfc4514_string()!r} is revoked",
                claim="serialNumber",
                actual=hex(cert.serial_number),
            )


def verify_chain(
    leaf: x509.Certificate,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
    intermediates: Sequence[x509.Certificate] = (),
) -> list[x509.Certificate]:
    """Validate the path from `leaf` to a trust anchor at time `at`.

    Intermediates come from `intermediates` and from `collateral`; CRLs from
    `collateral` are applied to every link whose issuer they name. Returns the path
    from the leaf up to and including the anchor certificate (a bare anchor public
    key adds no element). Raises ChainError or SignatureError naming the failed link.
    """
    collateral = collateral or Collateral()
    pool = list(intermediates) + list(collateral.certificates)
    path = [leaf]
    current = leaf
    for _ in range(_MAX_DEPTH):
        check_validity(current, at, "leaf certificate" if current is leaf else "certificate")

        anchor = _find_issuer(current, anchors.certificates)
        if anchor is not None:
            check_validity(anchor, at, "trust anchor")
            _check_not_revoked(current, anchor, collateral.crls, at)
            if anchor.fingerprint(hashes.SHA256()) != current.fingerprint(hashes.SHA256()):
                path.append(anchor)
            return path

        for key in anchors.public_keys:
            try:
                verify_signed_by(current, key)
            except SignatureError:
                continue
            return path

        issuer = _find_issuer(current, [c for c in pool if c not in path])
        if issuer is None:
            raise ChainError(
                "certificate chain",
                f"no trusted issuer found for {current.subject.rfc4514_string()!r}",
                claim="issuer",
                expected="a configured trust anchor or a given intermediate",
                actual=current.issuer.rfc4514_string(),
            )
        _check_is_ca(issuer)
        _check_not_revoked(current, issuer, collateral.crls, at)
        path.append(issuer)
        current = issuer
    raise ChainError("certificate chain", f"chain is longer than {_MAX_DEPTH} certificates")
