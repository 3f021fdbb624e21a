"""Evidence of the `sim` software TEE simulator: an EAT signed by its platform key.

The simulator stands in for a hardware root of trust in development and tests.
Its token carries the standard EAT claims nonce (10), ueid (256), iat (6),
eat_profile (265), swname (270) and swversion (271), plus two private claims:

- ``-75000`` measurements: a map ``{"code": SHA-256, "config": SHA-256}`` of the
  agent's installed code and its configuration;
- ``-75001`` simulated: always ``true``, so no relying party can mistake it for
  hardware evidence.

The trust anchor is the platform public key (or a certificate holding it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.errors import MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence import eat
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.x509chain import check_chain_inputs, check_validity, public_key_der

__all__ = [
    "CLAIM_MEASUREMENTS",
    "CLAIM_SIMULATED",
    "FORMAT",
    "MEDIA_TYPE",
    "PROFILE",
    "looks_like",
    "platform_key_id",
    "verify",
]

FORMAT = "sim"
PROFILE = "tag:attestnet.dev,2026:sim/v1"
MEDIA_TYPE = 'application/eat+cwt; eat_profile="tag:attestnet.dev,2026:sim/v1"'
CLAIM_MEASUREMENTS = -75000
CLAIM_SIMULATED = -75001
_UEID_TYPE_RAND = b"\x01"


def platform_key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """Return the UEID of a simulated platform: type RAND (0x01) || SHA-256(SPKI)."""
    return _UEID_TYPE_RAND + sha256(public_key_der(key)).digest()


def looks_like(data: bytes) -> bool:
    try:
        claims = eat.decode_unverified(data)
    except MalformedEvidence:
        return False
    return claims.get(eat.CLAIM_EAT_PROFILE) == PROFILE


def _candidate_keys(anchors: TrustAnchors, at: datetime) -> list[ec.EllipticCurvePublicKey]:
    keys = [k for k in anchors.public_keys if isinstance(k, ec.EllipticCurvePublicKey)]
    if anchors.certificates:
        check_chain_inputs(anchors, format=FORMAT)
    for cert in anchors.certificates:
        key = cert.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            check_validity(cert, at, "platform certificate")
            keys.append(key)
    return keys


def _required(claims: dict[int | str, Any], key: int, kind: type, name: str) -> Any:
    value = claims.get(key)
    if not isinstance(value, kind):
        raise MalformedEvidence(FORMAT, f"claim {name} ({key}) missing or not {kind.__name__}")
    return value


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify a sim token's signature with a platform key from `anchors`."""
    claims = eat.decode_unverified(data)
    if claims.get(eat.CLAIM_EAT_PROFILE) != PROFILE:
        raise MalformedEvidence(FORMAT, f"eat_profile is not {PROFILE!r}")

    ueid = _required(claims, eat.CLAIM_UEID, bytes, "ueid")
    keys = _candidate_keys(anchors, at)
    signer = next((k for k in keys if platform_key_id(k) == ueid), None)
    if signer is None:
        raise SignatureError(
            "signature",
            "no trust anchor is the platform key named by the token's UEID",
            claim="ueid",
            actual=ueid,
        )
    token = eat.verify_eat(data, eat.cose_key_for_public(signer), at)

    nonce = _required(claims, eat.CLAIM_NONCE, bytes, "eat_nonce")
    measurements = _required(claims, CLAIM_MEASUREMENTS, dict, "measurements")
    if claims.get(CLAIM_SIMULATED) is not True:
        raise VerificationError(
            "evidence type",
            "sim token does not declare itself simulated",
            claim="simulated",
            expected=True,
            actual=claims.get(CLAIM_SIMULATED),
        )
    for name in ("code", "config"):
        if not isinstance(measurements.get(name), bytes):
            raise MalformedEvidence(FORMAT, f"measurement {name!r} missing or not bytes")

    iat = claims.get(eat.CLAIM_IAT)
    evidence = VerifiedEvidence(
        format=FORMAT,
        verified_at=at,
        claims={
            "eat_profile": PROFILE,
            "ueid": ueid.hex(),
            "eat_nonce": nonce.hex(),
            "iat": datetime.fromtimestamp(iat, UTC).isoformat() if isinstance(iat, int) else None,
            "swname": claims.get(eat.CLAIM_SWNAME),
            "swversion": claims.get(eat.CLAIM_SWVERSION),
            "measurements": {k: v.hex() for k, v in measurements.items() if isinstance(v, bytes)},
            "simulated": True,
        },
        measurements={f"sim/{name}": measurements[name] for name in ("code", "config")},
        nonce=nonce,
        instance_id=ueid,
        simulated=True,
        signer=signer,
    )
    evidence.passed("signature", f"COSE_Sign1 {token.algorithm} by the platform key")
    return evidence
