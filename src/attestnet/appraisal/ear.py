"""EAT Attestation Results (EAR): issue the verifier's verdict as a signed JWT.

Claims follow the EAR draft (draft-ietf-rats-ear) with AR4SI trustworthiness
vectors (draft-ietf-rats-ar4si): one submodule per appraised piece of evidence,
each with ``ear.status``, ``ear.trustworthiness-vector`` and
``ear.appraisal-policy-id``.

AR4SI tiers by value (`attestnet.evidence.ear.tier_of`): 0 and 1 no claim,
2..31 affirming, 32..95 warning, 96..127 contraindicated, with negative values
mirroring them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

import attestnet
from attestnet.appraisal.corim_match import status_of
from attestnet.evidence.ear import EAR_PROFILES, TRUST_CLAIMS

__all__ = [
    "EAR_PROFILE",
    "TRUST_CLAIMS",
    "EarIssuer",
    "status_for",
]

EAR_PROFILE = EAR_PROFILES[0]
_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def status_for(vector: Mapping[str, int]) -> str:
    """Return the EAR status of a trust vector: the worst AR4SI tier among its claims."""
    return status_of(dict(vector))


@dataclass
class EarIssuer:
    """Signs attestation results with the verifier's EC key."""

    key: ec.EllipticCurvePrivateKey
    verifier_build: str = f"attestnet {attestnet.__version__}"

    def issue(
        self,
        submods: Mapping[str, Mapping[str, Any]],
        *,
        at: datetime,
        nonce: bytes | None = None,
        lifetime_seconds: int | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "eat_profile": EAR_PROFILE,
            "iat": int(at.timestamp()),
            "ear.verifier-id": {"developer": "attestnet", "build": self.verifier_build},
            "submods": dict(submods),
        }
        if nonce is not None:
            claims["eat_nonce"] = base64.urlsafe_b64encode(nonce).rstrip(b"=").decode()
        if lifetime_seconds is not None:
            claims["exp"] = claims["iat"] + lifetime_seconds
        return jwt.encode(claims, self.key, algorithm=_ALGORITHMS[self.key.curve.name])
