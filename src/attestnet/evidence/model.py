"""Typed results shared by every evidence verifier.

A verifier in this package parses bytes, checks signatures and certificate chains
against given trust anchors at a given time, and returns a `VerifiedEvidence`.
It applies no policy: reference values, nonces expected by a relying party and
pinned identities are checked by `attestnet.appraisal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = ["Check", "Collateral", "TrustAnchors", "VerifiedEvidence"]


@dataclass(frozen=True)
class Check:
    """One verification step that passed, kept for reports such as `attestnet verify`."""

    name: str
    detail: str


@dataclass(frozen=True)
class TrustAnchors:
    """Certificates and bare public keys that a verifier accepts as roots of trust."""

    certificates: tuple[x509.Certificate, ...] = ()
    public_keys: tuple[PublicKeyTypes, ...] = ()
    symmetric_keys: tuple[bytes, ...] = field(default=(), repr=False)
    """Secret keys for MAC-protected evidence (PSA COSE_Mac0); never logged."""

    def is_empty(self) -> bool:
        return not self.certificates and not self.public_keys and not self.symmetric_keys

    def merged(self, other: TrustAnchors) -> TrustAnchors:
        return TrustAnchors(
            self.certificates + other.certificates,
            self.public_keys + other.public_keys,
            self.symmetric_keys + other.symmetric_keys,
        )


@dataclass(frozen=True)
class Collateral:
    """Material that helps verification but is not trusted by itself.

    Intermediate certificates and CRLs still have to chain to a trust anchor;
    `documents` contains parsed JSON collateral (TDX TCB info, QE identity, ...) by
    the name of the file or key it came from.
    """

    certificates: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    documents: tuple[tuple[str, Any], ...] = ()

    def merged(self, other: Collateral) -> Collateral:
        return Collateral(
            self.certificates + other.certificates,
            self.crls + other.crls,
            self.documents + other.documents,
        )


@dataclass
class VerifiedEvidence:
    """Evidence whose signatures and chains verified at `verified_at`.

    `measurements` maps a stable name (``"pcr/sha256/7"``, ``"snp/measurement"``,
    ``"sim/code"`` ...) to its value, which is what reference values are matched
    against. `nonce` is the freshness value the evidence carries (eat_nonce, TPM
    extraData, REPORTDATA ...), or None where the format has none.
    """

    format: str
    verified_at: datetime
    claims: dict[str, Any]
    measurements: dict[str, bytes] = field(default_factory=dict)
    nonce: bytes | None = None
    instance_id: bytes | None = None
    tcb: dict[str, int] = field(default_factory=dict)
    debug: bool | None = None
    simulated: bool = False
    signer: PublicKeyTypes | None = None
    checks: list[Check] = field(default_factory=list)

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, detail))
