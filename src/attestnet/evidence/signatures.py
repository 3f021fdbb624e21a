"""One entry point for every signature and MAC check over evidence and certificates.

Format modules call `verify_signature` instead of calling `cryptography` directly,
so that a failure always raises SignatureError with the same shape, and so that the
benchmark can record the signature checks of a verification (`record_signatures`)
and time them alone against the whole verification.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestnet.errors import SignatureError

__all__ = [
    "Scheme",
    "SignatureCheck",
    "ecdsa_raw_to_der",
    "record_signatures",
    "replay",
    "verify_signature",
]

Scheme = Literal[
    "ecdsa-der", "ecdsa-raw", "rsa-pkcs1", "rsa-pss", "rsa-pss-digest-salt", "eddsa", "hmac"
]


@dataclass(frozen=True)
class SignatureCheck:
    """The inputs of one signature check, as recorded for the benchmark."""

    key: PublicKeyTypes | bytes
    signature: bytes
    data: bytes
    scheme: Scheme
    hash_algorithm: hashes.HashAlgorithm | None


_recorder: ContextVar[list[SignatureCheck] | None] = ContextVar("_recorder", default=None)


@contextmanager
def record_signatures() -> Iterator[list[SignatureCheck]]:
    """Collect every check that passed through `verify_signature` inside the block."""
    checks: list[SignatureCheck] = []
    token = _recorder.set(checks)
    try:
        yield checks
    finally:
        _recorder.reset(token)


def ecdsa_raw_to_der(signature: bytes) -> bytes:
    """Convert an r||s signature (COSE, TPM, SNP, DCAP) with equal halves to DER."""
    if not signature or len(signature) % 2:
        raise SignatureError(
            "signature encoding",
            "raw ECDSA signature must be r||s of equal length",
            actual=f"{len(signature)} bytes",
        )
    half = len(signature) // 2
    r = int.from_bytes(signature[:half], "big")
    s = int.from_bytes(signature[half:], "big")
    return encode_dss_signature(r, s)


def _verify(check: SignatureCheck) -> None:
    key, signature, data, scheme, hash_algorithm = (
        check.key,
        check.signature,
        check.data,
        check.scheme,
        check.hash_algorithm,
    )
    if scheme == "hmac":
        assert isinstance(key, bytes) and hash_algorithm is not None
        digest = hmac.new(key, data, hash_algorithm.name).digest()
        if not hmac.compare_digest(digest, signature):
            raise InvalidSignature
    elif scheme in ("ecdsa-der", "ecdsa-raw"):
        assert isinstance(key, ec.EllipticCurvePublicKey) and hash_algorithm is not None
        der = ecdsa_raw_to_der(signature) if scheme == "ecdsa-raw" else signature
        key.verify(der, data, ec.ECDSA(hash_algorithm))
    elif scheme == "rsa-pkcs1":
        assert isinstance(key, rsa.RSAPublicKey) and hash_algorithm is not None
        key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
    elif scheme in ("rsa-pss", "rsa-pss-digest-salt"):
        assert isinstance(key, rsa.RSAPublicKey) and hash_algorithm is not None
        salt = padding.PSS.AUTO if scheme == "rsa-pss" else hash_algorithm.digest_size
        pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=salt)
        key.verify(signature, data, pss, hash_algorithm)
    elif scheme == "eddsa":
        assert isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
        key.verify(signature, data)
    else:
        raise AssertionError(scheme)


_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "hmac": (bytes,),
    "ecdsa-der": (ec.EllipticCurvePublicKey,),
    "ecdsa-raw": (ec.EllipticCurvePublicKey,),
    "rsa-pkcs1": (rsa.RSAPublicKey,),
    "rsa-pss": (rsa.RSAPublicKey,),
    "rsa-pss-digest-salt": (rsa.RSAPublicKey,),
    "eddsa": (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey),
}


def verify_signature(
    key: PublicKeyTypes | bytes,
    signature: bytes,
    data: bytes,
    *,
    scheme: Scheme,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    check: str = "signature",
    what: str = "evidence",
) -> None:
    """Verify one signature or MAC; raise SignatureError naming `check` and `what`.

    `ecdsa-raw` takes r||s as COSE, TPM, SEV-SNP and DCAP encode it; `rsa-pss`
    accepts any salt length, as RFC 8017 verification allows, and
    `rsa-pss-digest-salt` only a salt as long as the digest, as TLS 1.3 requires.
    """
    if not isinstance(key, _KEY_TYPES[scheme]):
        raise SignatureError(
            check,
            f"{what}: key type does not match the signature scheme",
            expected=scheme,
            actual=type(key).__name__,
        )
    if scheme != "eddsa" and hash_algorithm is None:
        raise SignatureError(check, f"{what}: no hash algorithm given for {scheme}")
    entry = SignatureCheck(key, signature, data, scheme, hash_algorithm)
    try:
        _verify(entry)
    except (InvalidSignature, ValueError):
        raise SignatureError(check, f"{what}: signature does not verify") from None
    # Only checks that passed are recorded, so that `replay` can run them again;
    # trial checks against the wrong candidate key are path-building overhead.
    recorder = _recorder.get()
    if recorder is not None:
        recorder.append(entry)


def replay(checks: list[SignatureCheck]) -> None:
    """Run recorded checks again (the benchmark's signature-only cost)."""
    for entry in checks:
        _verify(entry)
