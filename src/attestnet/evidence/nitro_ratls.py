"""Attested-TLS certificates that carry an AWS Nitro attestation document.

Evervault Cages embed the document in a DNS subjectAltName of the TLS certificate
and bind it to the certificate's key through the document's user_data; see
`attestnet.evidence.nitro.verify_ratls_certificate` for the checks. This module
gives that certificate its own format name, so that detection and
`attestnet verify` handle it like any other evidence.
"""

from __future__ import annotations

from datetime import datetime

from attestnet.errors import MalformedEvidence
from attestnet.evidence import nitro
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.x509chain import load_certificate

__all__ = ["FORMAT", "looks_like", "verify"]

FORMAT = "nitro-ratls"
_DER_SEQUENCE = 0x30


def looks_like(data: bytes) -> bool:
    """Return True for a DER certificate whose subjectAltName carries a Nitro document."""
    if data[:1] != bytes([_DER_SEQUENCE]):
        return False
    try:
        certificate = load_certificate(data, format=FORMAT, what="certificate")
        nitro.extract_document(certificate)
    except MalformedEvidence:
        return False
    return True


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify the embedded document and its binding to the certificate's key at `at`."""
    evidence = nitro.verify_ratls_certificate(data, anchors=anchors, at=at, collateral=collateral)
    evidence.format = FORMAT
    return evidence
