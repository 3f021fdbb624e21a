"""Certificate loading and path validation at an explicit time, for hardware-issued chains.

The chains that TEE vendors issue (AMD ARK/ASK/VCEK with RSA-PSS, Intel PCK, TPM
EK and AK certificates, AWS Nitro) are short and have a known shape, so this
module builds the path itself and checks every link: issuer name, signature,
validity at the verification time, the CA flag of each issuer, and revocation
where CRLs are given. It does not use the web-PKI policy of
`cryptography.x509.verification`, which rejects certificates that real hardware
issues (RSA-PSS roots without key usage, TPM EK certificates with empty subjects).

`cryptography` decodes names, extensions, keys and algorithms only when they are
first read, so a corrupt field in a certificate that loaded fine raises ValueError,
UnsupportedAlgorithm and others from deep inside path validation. Every certificate
that format modules take from evidence goes through `load_certificate` or
`load_pem_certificates`, which decode those fields at once and raise
MalformedEvidence; `verify_chain` checks the anchors and collateral it is given the
same way, so it raises only ChainError, SignatureError or MalformedEvidence.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning

from attestnet.errors import ChainError, MalformedEvidence, SignatureError
from attestnet.evidence.model import Collateral, TrustAnchors
from attestnet.evidence.signatures import Scheme, verify_signature

__all__ = [
    "CERTIFICATE_ERRORS",
    "check_certificate_fields",
    "check_chain_inputs",
    "check_crl_fields",
    "check_validity",
    "clear_signature_cache",
    "crl_issuer",
    "describe_path",
    "load_certificate",
    "load_pem_certificates",
    "public_key_der",
    "subject_text",
    "tolerated_certificate_warnings",
    "verify_chain",
    "verify_crl",
    "verify_signed_by",
]

_MAX_DEPTH = 8

_T = TypeVar("_T")
_V = TypeVar("_V")

# Exceptions that cryptography 50 raises while decoding a corrupt certificate or CRL
# field (found by fuzzing the format parsers).
CERTIFICATE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


@contextmanager
def tolerated_certificate_warnings() -> Iterator[None]:
    """Silence cryptography's warnings about two defects that real hardware chains have.

    AMD's KDS issues VCEK and VLEK certificates with serial number 0, which RFC 5280
    forbids. cryptography warns (CryptographyDeprecationWarning) on loading such a
    certificate and on every read of `serial_number`. Google's TPM EK/AK
    intermediate CA has a 79-character common name
    ("tpm_ek_v1_cloud_host-signer-0-2020-10-22T14:02:08-07:00 K:1, 2:..."), longer
    than the 64 characters X.520 allows, and cryptography warns (UserWarning) the
    first time such a name is read. Both chains are genuine, so they are accepted.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="Parsed a serial number which wasn't positive",
            category=CryptographyDeprecationWarning,
        )
        warnings.filterwarnings(
            "ignore", message="Attribute's length must be", category=UserWarning
        )
        yield


# A Name as a comparable value: equal exactly when cryptography's Name.__eq__ returns True
# (each RDN a set of (OID, value) pairs, string types ignored), but built only once.
_NameKey = tuple[frozenset[tuple[x509.ObjectIdentifier, object]], ...]


def _name_key(name: x509.Name) -> _NameKey:
    return tuple(frozenset((a.oid, a.value) for a in rdn) for rdn in name.rdns)


@dataclass(frozen=True)
class _CertificateFields:
    """The certificate fields that path validation reads on every verification."""

    serial_number: int
    signed: bytes  # tbsCertificate, which cryptography encodes again on every read
    subject: _NameKey
    issuer: _NameKey


def _decode_fields(cert: x509.Certificate) -> _CertificateFields:
    """Read every lazily decoded field that verification or claims use.

    cryptography caches the decoded subject, issuer, extensions and public key on
    the certificate object, so later reads neither fail nor warn. The serial number
    warns on every read when it is 0, so it is kept here.
    """
    with tolerated_certificate_warnings():
        serial: int = cert.serial_number
        _ = (cert.version, cert.extensions)
        subject, issuer = _name_key(cert.subject), _name_key(cert.issuer)
    _ = (cert.signature_hash_algorithm, cert.signature_algorithm_parameters)
    _ = (cert.not_valid_before_utc, cert.not_valid_after_utc)
    cert.public_key()
    return _CertificateFields(serial, cert.tbs_certificate_bytes, subject, issuer)


@dataclass(frozen=True)
class _CrlFields:
    """The decoded fields of a CRL; cryptography decodes the issuer again on every read."""

    issuer: x509.Name
    issuer_key: _NameKey
    last_update: datetime
    next_update: datetime | None
    signed: bytes


# Objects whose fields decoded, by id() and holding the object so that the id cannot
# be reused while it is stored: certificates with their serial number (which warns on
# every read when it is 0) and CRLs with their fields. Format modules load the same
# device and CA certificates on every verification, and anchors live as long as the
# verifier.
_CERTIFICATES: dict[int, tuple[x509.Certificate, _CertificateFields]] = {}
_CRLS: dict[int, tuple[x509.CertificateRevocationList, _CrlFields]] = {}
_MAX_REMEMBERED = 512


def _remember(memo: dict[int, tuple[_T, _V]], item: _T, value: _V) -> None:
    if len(memo) >= _MAX_REMEMBERED:
        memo.clear()
    memo[id(item)] = (item, value)


def check_certificate_fields(cert: x509.Certificate, *, format: str, what: str) -> None:
    """Decode the fields of a loaded certificate; raise MalformedEvidence if one is corrupt."""
    _fields(cert, format, what)


def _fields(
    cert: x509.Certificate, format: str = "x509", what: str = "certificate"
) -> _CertificateFields:
    known = _CERTIFICATES.get(id(cert))
    if known is not None and known[0] is cert:
        return known[1]
    try:
        fields = _decode_fields(cert)
    except CERTIFICATE_ERRORS as exc:
        raise MalformedEvidence(format, f"{what} has an invalid field: {exc}") from None
    _remember(_CERTIFICATES, cert, fields)
    return fields


def check_crl_fields(crl: x509.CertificateRevocationList, *, format: str, what: str) -> None:
    """Decode the fields of a CRL that revocation checks read; raise MalformedEvidence."""
    _crl_fields(crl, format, what)


def crl_issuer(crl: x509.CertificateRevocationList) -> x509.Name:
    """Return the issuer of a CRL, decoded once per CRL object."""
    return _crl_fields(crl, "crl", "CRL").issuer


def _crl_fields(crl: x509.CertificateRevocationList, format: str, what: str) -> _CrlFields:
    known = _CRLS.get(id(crl))
    if known is not None and known[0] is crl:
        return known[1]
    try:
        issuer = crl.issuer
        fields = _CrlFields(
            issuer,
            _name_key(issuer),
            crl.last_update_utc,
            crl.next_update_utc,
            crl.tbs_certlist_bytes,
        )
        _ = (crl.extensions, crl.signature_hash_algorithm, crl.signature_algorithm_parameters)
    except CERTIFICATE_ERRORS as exc:
        raise MalformedEvidence(format, f"{what} has an invalid field: {exc}") from None
    _remember(_CRLS, crl, fields)
    return fields


# Parsed certificates by their encoding. A relying party receives the same VCEK, PCK
# or AK chain on every connection. A Certificate is immutable and does not depend on
# the verification time or the anchors, so caching it skips only the decoding: the
# validity, revocation and signature checks still run on every verification.
@lru_cache(maxsize=256)
def _parse_der(der: bytes) -> x509.Certificate:
    with tolerated_certificate_warnings():
        cert = x509.load_der_x509_certificate(der)
    _remember(_CERTIFICATES, cert, _decode_fields(cert))
    return cert


@lru_cache(maxsize=128)
def _parse_pem(pem: bytes) -> tuple[x509.Certificate, ...]:
    with tolerated_certificate_warnings():
        certs = tuple(x509.load_pem_x509_certificates(pem))
    for cert in certs:
        _remember(_CERTIFICATES, cert, _decode_fields(cert))
    return certs


def load_certificate(data: bytes, *, format: str, what: str) -> x509.Certificate:
    """Load one DER or PEM certificate and decode all its fields.

    Raises MalformedEvidence naming `format` and `what` when the bytes are not a
    certificate or a field is corrupt. Serial number 0 and over-long name
    attributes are accepted (see `tolerated_certificate_warnings`).
    """
    data = bytes(data)
    if data.lstrip().startswith(b"-----BEGIN"):
        certs = load_pem_certificates(data, format=format, what=what)
        if len(certs) != 1:
            raise MalformedEvidence(
                format, f"{what} contains {len(certs)} certificates, expected one"
            )
        return certs[0]
    try:
        return _parse_der(data)
    except CERTIFICATE_ERRORS as exc:
        raise MalformedEvidence(format, f"{what} is not a DER certificate: {exc}") from None


def load_pem_certificates(data: bytes, *, format: str, what: str) -> tuple[x509.Certificate, ...]:
    """Load every certificate of a PEM bundle, in order, and decode all their fields."""
    try:
        return _parse_pem(bytes(data))
    except CERTIFICATE_ERRORS as exc:
        raise MalformedEvidence(format, f"{what} is not a PEM certificate: {exc}") from None


def check_chain_inputs(
    anchors: TrustAnchors,
    collateral: Collateral | None = None,
    intermediates: Iterable[x509.Certificate] = (),
    *,
    format: str = "x509",
) -> None:
    """Decode every certificate and CRL that path validation may read.

    A corrupt intermediate, collateral certificate or CRL raises MalformedEvidence
    naming `format`. A corrupt trust anchor raises ChainError, because the anchors
    are configuration and no evidence can chain to them.
    """
    for index, anchor in enumerate(anchors.certificates):
        try:
            check_certificate_fields(anchor, format=format, what=f"trust anchor {index}")
        except MalformedEvidence as exc:
            raise ChainError(
                "trust anchor",
                f"{exc.detail}; replace the trust anchor file",
                claim="anchors.certificates",
                actual=f"certificate {index}",
            ) from None
    for index, cert in enumerate(intermediates):
        check_certificate_fields(cert, format=format, what=f"intermediate certificate {index}")
    if collateral is not None:
        for index, cert in enumerate(collateral.certificates):
            check_certificate_fields(cert, format=format, what=f"collateral certificate {index}")
        for index, crl in enumerate(collateral.crls):
            check_crl_fields(crl, format=format, what=f"collateral CRL {index}")


# DER SubjectPublicKeyInfo by key object. `Certificate.public_key()` returns the
# same object on every call, so the key of a cached or anchor certificate is
# encoded once.
_KEY_DER: dict[int, tuple[PublicKeyTypes, bytes]] = {}


def public_key_der(key: PublicKeyTypes) -> bytes:
    """Return the DER SubjectPublicKeyInfo of `key`."""
    known = _KEY_DER.get(id(key))
    if known is not None and known[0] is key:
        return known[1]
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if len(_KEY_DER) >= _MAX_REMEMBERED:
        _KEY_DER.clear()
    _KEY_DER[id(key)] = (key, der)
    return der


_SUBJECTS: dict[int, tuple[x509.Certificate, str]] = {}


def subject_text(cert: x509.Certificate) -> str:
    """Return the RFC 4514 subject of `cert`, or "(empty subject)", for messages."""
    known = _SUBJECTS.get(id(cert))
    if known is not None and known[0] is cert:
        return known[1]
    text = cert.subject.rfc4514_string() or "(empty subject)"
    if len(_SUBJECTS) >= _MAX_REMEMBERED:
        _SUBJECTS.clear()
    _SUBJECTS[id(cert)] = (cert, text)
    return text


def describe_path(path: Sequence[x509.Certificate]) -> str:
    """Return the subjects of a validated path, leaf first, joined by " -> "."""
    return " -> ".join(subject_text(cert) for cert in path)


def check_validity(cert: x509.Certificate, at: datetime, role: str = "certificate") -> None:
    """Raise ChainError unless `at` lies within the certificate's validity period."""
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    if at < not_before:
        raise ChainError(
            "certificate validity",
            f"{role} {subject_text(cert)!r} is not valid yet",
            claim="notBefore",
            expected=f"<= {at.isoformat()}",
            actual=not_before.isoformat(),
        )
    if at > not_after:
        raise ChainError(
            "certificate validity",
            f"{role} {subject_text(cert)!r} has expired",
            claim="notAfter",
            expected=f">= {at.isoformat()}",
            actual=not_after.isoformat(),
        )


# Certificate and CRL signatures that verified, keyed by the SHA-256 of the signed
# bytes, the signature and the issuer key. A signature over fixed bytes stays valid,
# so a relying party that receives the same AK or VCEK chain on every connection
# checks each link once. Validity times and revocation are still checked every time.
_VERIFIED_SIGNATURES: OrderedDict[bytes, None] = OrderedDict()
_CACHE_SIZE = 1024


def clear_signature_cache() -> None:
    """Forget verified certificate and CRL signatures (the benchmark measures cold runs)."""
    _VERIFIED_SIGNATURES.clear()


def _scheme_for(issuer_key: PublicKeyTypes, parameters: object, check: str) -> Scheme:
    if isinstance(issuer_key, rsa.RSAPublicKey):
        return "rsa-pss" if isinstance(parameters, padding.PSS) else "rsa-pkcs1"
    if isinstance(issuer_key, ec.EllipticCurvePublicKey):
        return "ecdsa-der"
    if isinstance(issuer_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "eddsa"
    raise SignatureError(check, f"unsupported issuer key type {type(issuer_key).__name__}")


def _verify_cached(
    issuer_key: PublicKeyTypes,
    signature: bytes,
    signed: bytes,
    parameters: object,
    hash_algorithm: hashes.HashAlgorithm | None,
    check: str,
    what: str,
) -> None:
    digest = hashlib.sha256(signed)
    digest.update(signature)
    digest.update(public_key_der(issuer_key))
    key = digest.digest()
    if key in _VERIFIED_SIGNATURES:
        _VERIFIED_SIGNATURES.move_to_end(key)
        return
    verify_signature(
        issuer_key,
        signature,
        signed,
        scheme=_scheme_for(issuer_key, parameters, check),
        hash_algorithm=hash_algorithm,
        check=check,
        what=what,
    )
    _VERIFIED_SIGNATURES[key] = None
    if len(_VERIFIED_SIGNATURES) > _CACHE_SIZE:
        _VERIFIED_SIGNATURES.popitem(last=False)


def verify_signed_by(cert: x509.Certificate, issuer_key: PublicKeyTypes) -> None:
    """Raise SignatureError unless `issuer_key` signed `cert` (RSA, RSA-PSS, ECDSA, EdDSA)."""
    try:
        _verify_cached(
            issuer_key,
            cert.signature,
            _fields(cert).signed,
            cert.signature_algorithm_parameters,
            cert.signature_hash_algorithm,
            "certificate signature",
            "certificate",
        )
    except SignatureError:
        raise SignatureError(
            "certificate signature",
            f"signature of certificate {subject_text(cert)!r} does not verify with the issuer key",
        ) from None


def verify_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate, at: datetime) -> None:
    """Raise unless `issuer` signed `crl` and the CRL is current at `at`.

    A CRL with a corrupt field raises MalformedEvidence.
    """
    fields = _crl_fields(crl, "crl", "CRL")
    try:
        _verify_cached(
            issuer.public_key(),
            crl.signature,
            fields.signed,
            crl.signature_algorithm_parameters,
            crl.signature_hash_algorithm,
            "crl signature",
            "CRL",
        )
    except SignatureError:
        raise SignatureError(
            "crl signature",
            f"CRL of {fields.issuer.rfc4514_string()!r} does not verify with its issuer key",
        ) from None
    next_update = fields.next_update
    if fields.last_update > at or (next_update is not None and next_update < at):
        raise ChainError(
            "crl validity",
            f"CRL of {fields.issuer.rfc4514_string()!r} is not current",
            claim="thisUpdate..nextUpdate",
            expected=f"contains {at.isoformat()}",
            actual=f"{fields.last_update.isoformat()}.."
            + (next_update.isoformat() if next_update is not None else "(no nextUpdate)"),
        )


def _find_issuer(
    cert: x509.Certificate,
    candidates: Iterable[x509.Certificate],
    exclude: Sequence[x509.Certificate] = (),
) -> x509.Certificate | None:
    issuer_name = _fields(cert).issuer
    for candidate in candidates:
        if _fields(candidate).subject != issuer_name or candidate in exclude:
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
            f"issuer {subject_text(cert)!r} has no basicConstraints extension",
            claim="basicConstraints.cA",
            expected=True,
            actual="absent",
        ) from None
    if not constraints.ca:
        raise ChainError(
            "certificate chain",
            f"issuer {subject_text(cert)!r} is not a CA",
            claim="basicConstraints.cA",
            expected=True,
            actual=False,
        )


def _check_not_revoked(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    crls: Sequence[x509.CertificateRevocationList],
    at: datetime,
    format: str,
) -> None:
    for crl in crls:
        if _crl_fields(crl, format, "CRL").issuer_key != _fields(issuer).subject:
            continue
        verify_crl(crl, issuer, at)
        serial = _fields(cert).serial_number
        try:
            revoked = crl.get_revoked_certificate_by_serial_number(serial)
        except CERTIFICATE_ERRORS as exc:
            # The revoked entries of a CRL are decoded only when they are searched.
            raise MalformedEvidence(format, f"CRL has an invalid revoked entry: {exc}") from None
        if revoked is not None:
            raise ChainError(
                "certificate revocation",
                f"certificate {subject_text(cert)!r} is revoked",
                claim="serialNumber",
                actual=hex(serial),
            )


def verify_chain(
    leaf: x509.Certificate,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
    intermediates: Sequence[x509.Certificate] = (),
    *,
    format: str = "x509",
) -> list[x509.Certificate]:
    """Validate the path from `leaf` to a trust anchor at time `at`.

    Intermediates come from `intermediates` and from `collateral`; CRLs from
    `collateral` are applied to every link whose issuer they name. Returns the path
    from the leaf up to and including the anchor certificate (a bare anchor public
    key adds no element). Raises ChainError or SignatureError naming the failed link,
    and MalformedEvidence (naming `format`) for a corrupt leaf, intermediate,
    collateral certificate or CRL; a corrupt anchor raises ChainError.
    """
    collateral = collateral or Collateral()
    check_certificate_fields(leaf, format=format, what="leaf certificate")
    check_chain_inputs(anchors, collateral, intermediates, format=format)
    pool = [*intermediates, *collateral.certificates]
    path = [leaf]
    current = leaf
    for _ in range(_MAX_DEPTH):
        check_validity(current, at, "leaf certificate" if current is leaf else "certificate")

        anchor = _find_issuer(current, anchors.certificates)
        if anchor is not None:
            check_validity(anchor, at, "trust anchor")
            _check_not_revoked(current, anchor, collateral.crls, at, format)
            if anchor is not current and anchor != current:
                path.append(anchor)
            return path

        for key in anchors.public_keys:
            try:
                verify_signed_by(current, key)
            except SignatureError:
                continue
            return path

        issuer = _find_issuer(current, pool, exclude=path)
        if issuer is None:
            raise ChainError(
                "certificate chain",
                f"no trusted issuer found for {subject_text(current)!r}",
                claim="issuer",
                expected="a configured trust anchor or a given intermediate",
                actual=current.issuer.rfc4514_string(),
            )
        _check_is_ca(issuer)
        _check_not_revoked(current, issuer, collateral.crls, at, format)
        path.append(issuer)
        current = issuer
    raise ChainError("certificate chain", f"chain is longer than {_MAX_DEPTH} certificates")
