"""Entity Attestation Tokens (EAT, RFC 9711) as CWTs signed with COSE_Sign1.

COSE signing and verification go through the `cwt` library. Claims are CBOR maps
with integer keys; this module names the standard ones and leaves profile-specific
claims to the caller. Time claims are checked against an explicit time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from cwt import COSE, COSEKey
from cwt.cose_key_interface import COSEKeyInterface
from cwt.exceptions import CWTError

from attestnet.errors import MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence.cmw import decode_cbor_strict

__all__ = [
    "CLAIM_EAT_PROFILE",
    "CLAIM_EXP",
    "CLAIM_IAT",
    "CLAIM_NBF",
    "CLAIM_NONCE",
    "CLAIM_UEID",
    "EatToken",
    "cose_key_for_public",
    "decode_unverified",
    "sign_eat",
    "verify_eat",
]

CLAIM_ISS = 1
CLAIM_EXP = 4
CLAIM_NBF = 5
CLAIM_IAT = 6
CLAIM_NONCE = 10
CLAIM_UEID = 256
CLAIM_DBGSTAT = 263
CLAIM_EAT_PROFILE = 265
CLAIM_SWNAME = 270
CLAIM_SWVERSION = 271

_FORMAT = "EAT"
_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_COSE_ALGORITHM_NAMES = {-7: "ES256", -35: "ES384", -36: "ES512"}


@dataclass(frozen=True)
class EatToken:
    """A verified EAT: its claims and the COSE algorithm that signed it."""

    claims: dict[int | str, Any]
    algorithm: str


def _algorithm_for(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    try:
        return _ALGORITHMS[key.curve.name]
    except KeyError:
        raise VerificationError(
            "signature",
            "unsupported EC curve for EAT",
            expected="P-256, P-384 or P-521",
            actual=key.curve.name,
        ) from None


def cose_key_for_public(key: PublicKeyTypes, kid: bytes | None = None) -> COSEKeyInterface:
    """Return the `cwt` key object for an EC public key.

    Converting a key costs about half of an ECDSA verification here, and a relying
    party sees the same platform keys on every connection, so conversions are cached.
    """
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationError(
            "signature", "EAT verification key must be an EC key", actual=type(key).__name__
        )
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return _cose_key_from_pem(pem, _algorithm_for(key), kid or b"")


@functools.lru_cache(maxsize=256)
def _cose_key_from_pem(pem: bytes, algorithm: str, kid: bytes) -> COSEKeyInterface:
    return COSEKey.from_pem(pem, alg=algorithm, kid=kid)


def cose_key_for_private(
    key: ec.EllipticCurvePrivateKey, kid: bytes | None = None
) -> COSEKeyInterface:
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return COSEKey.from_pem(pem, alg=_algorithm_for(key), kid=kid or b"")


_SIGNER = COSE.new(alg_auto_inclusion=True, kid_auto_inclusion=True)
_VERIFIER = COSE.new()


def sign_eat(claims: dict[int | str, Any], key: COSEKeyInterface) -> bytes:
    """Encode `claims` as a tagged COSE_Sign1 CWT signed with `key`."""
    return bytes(_SIGNER.encode_and_sign(cbor2.dumps(claims), key))


def _parse(token: bytes) -> tuple[dict[int | str, Any], bytes]:
    """Return the claims and the payload bytes of a COSE_Sign1 EAT, unverified."""
    item = decode_cbor_strict(token, _FORMAT)
    if isinstance(item, cbor2.CBORTag) and item.tag in (18, 61):
        item = item.value
        if isinstance(item, cbor2.CBORTag) and item.tag == 18:
            item = item.value
    if not (isinstance(item, list) and len(item) == 4 and isinstance(item[2], bytes)):
        raise MalformedEvidence(
            _FORMAT, "not a COSE_Sign1 array [protected, unprotected, payload, signature]"
        )
    claims = decode_cbor_strict(item[2], _FORMAT)
    if not isinstance(claims, dict):
        raise MalformedEvidence(_FORMAT, "payload is not a claims map")
    return claims, item[2]


def decode_unverified(token: bytes) -> dict[int | str, Any]:
    """Return the claims of a COSE_Sign1 EAT without verifying it (for format detection)."""
    return _parse(token)[0]


def verify_eat(token: bytes, key: COSEKeyInterface, at: datetime) -> EatToken:
    """Verify the COSE_Sign1 signature and the exp/nbf claims at time `at`.

    Raises MalformedEvidence for bytes that are not a COSE_Sign1 CWT,
    SignatureError when the signature does not verify with `key`, and
    VerificationError when `at` lies outside the token's exp/nbf window.
    """
    claims, parsed_payload = _parse(token)
    try:
        payload = _VERIFIER.decode(token, key)
    except (CWTError, ValueError) as exc:
        raise SignatureError("signature", f"EAT signature does not verify: {exc}") from None
    # The claims come from our own strict parse, so they must be the bytes cwt verified.
    if payload != parsed_payload:
        raise SignatureError("signature", "verified payload differs from the parsed payload")

    timestamp = at.astimezone(UTC).timestamp()
    exp = claims.get(CLAIM_EXP)
    if isinstance(exp, int | float) and timestamp > exp:
        raise VerificationError(
            "token validity",
            "EAT has expired",
            claim="exp",
            expected=f">= {at.isoformat()}",
            actual=datetime.fromtimestamp(exp, UTC).isoformat(),
        )
    nbf = claims.get(CLAIM_NBF)
    if isinstance(nbf, int | float) and timestamp < nbf:
        raise VerificationError(
            "token validity",
            "EAT is not valid yet",
            claim="nbf",
            expected=f"<= {at.isoformat()}",
            actual=datetime.fromtimestamp(nbf, UTC).isoformat(),
        )
    return EatToken(claims, _COSE_ALGORITHM_NAMES.get(key.alg or 0, str(key.alg)))
