"""Check 7: EARs that this verifier issues are appraised by the EAR verifier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.appraisal import Policy, Verifier
from attestnet.appraisal.ear import EarIssuer
from attestnet.errors import VerificationError
from attestnet.evidence.model import TrustAnchors

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())


def issue(status: str, vector: dict[str, int], at: datetime = NOW) -> bytes:
    submod = {
        "ear.status": status,
        "ear.trustworthiness-vector": vector,
        "ear.appraisal-policy-id": "p",
    }
    token = EarIssuer(KEY).issue({"dpu": submod}, at=at, lifetime_seconds=300)
    return token.encode()


def ear_verifier() -> Verifier:
    policy = Policy(
        id="results",
        allowed=frozenset({"ear"}),
        anchors={"ear": TrustAnchors(public_keys=(KEY.public_key(),))},
    )
    return Verifier(policy)


def test_affirming_result_accepted() -> None:
    token = issue("affirming", {"executables": 2, "hardware": 2})
    result = ear_verifier().appraise(token, binder=None, at=NOW, format="ear")
    assert "7. attestation result: dpu is affirming" in result.checks


def test_warning_result_rejected() -> None:
    token = issue("warning", {"executables": 33})
    with pytest.raises(VerificationError) as failure:
        ear_verifier().appraise(token, binder=None, at=NOW, format="ear")
    assert failure.value.check == "attestation result"
    assert failure.value.actual == "warning"


def test_expired_result_rejected() -> None:
    token = issue("affirming", {"executables": 2})
    with pytest.raises(VerificationError) as failure:
        ear_verifier().appraise(token, binder=None, at=NOW + timedelta(hours=1), format="ear")
    assert "exp" in str(failure.value)


def test_result_from_untrusted_issuer_rejected() -> None:
    token = issue("affirming", {"executables": 2})
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    policy = Policy(
        id="results",
        allowed=frozenset({"ear"}),
        anchors={"ear": TrustAnchors(public_keys=(other,))},
    )
    with pytest.raises(VerificationError) as failure:
        Verifier(policy).appraise(token, binder=None, at=NOW, format="ear")
    assert "signature" in failure.value.check


def test_result_bound_to_binder() -> None:
    binder = bytes(range(32))
    submod = {
        "ear.status": "affirming",
        "ear.trustworthiness-vector": {"executables": 2},
        "ear.appraisal-policy-id": "p",
    }
    token = EarIssuer(KEY).issue({"dpu": submod}, at=NOW, nonce=binder).encode()
    result = ear_verifier().appraise(token, binder=binder, at=NOW, format="ear")
    assert "3. binder: evidence nonce equals this connection's binder" in result.checks
    with pytest.raises(VerificationError) as failure:
        ear_verifier().appraise(token, binder=bytes(32), at=NOW, format="ear")
    assert failure.value.check == "binder"
