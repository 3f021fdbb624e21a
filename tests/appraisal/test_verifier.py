from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.appraisal import Policy, Verifier
from attestnet.appraisal.verifier import nonce_matches
from attestnet.attesters.sim import SimAttester
from attestnet.errors import PolicyError, SignatureError, VerificationError
from attestnet.evidence.model import TrustAnchors

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
BINDER = bytes(range(32))


@pytest.fixture
def attester(tmp_path: Path) -> SimAttester:
    return SimAttester.from_files(tmp_path / "platform.pem", config=b"role = 'dpu'\n")


def sim_policy(attester: SimAttester, **overrides: object) -> Policy:
    settings: dict[str, object] = {
        "id": "test-sim",
        "allowed": frozenset({"sim"}),
        "anchors": {"sim": TrustAnchors(public_keys=(attester.platform_key.public_key(),))},
        "reference_values": {
            "sim": {name: frozenset({v}) for name, v in attester.reference_values().items()}
        },
    }
    settings.update(overrides)
    return Policy(**settings)  # type: ignore[arg-type]


def test_appraisal_passes_and_signs_ear(attester: SimAttester) -> None:
    ear_key = ec.generate_private_key(ec.SECP256R1())
    verifier = Verifier(sim_policy(attester), ear_key=ear_key)
    result = verifier.appraise(attester.evidence(BINDER), binder=BINDER, at=NOW)

    assert result.format == "sim"
    assert result.status == "warning"  # simulated hardware is never "affirming"
    assert result.trust_vector["executables"] == 2
    assert result.trust_vector["hardware"] == 32
    assert any(c.startswith("3. binder") for c in result.checks)
    assert result.ear is not None
    # The EAR's own expiry is checked below against NOW, not against the wall clock.
    claims = jwt.decode(
        result.ear, ear_key.public_key(), algorithms=["ES256"], options={"verify_exp": False}
    )
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] == claims["iat"] + 300
    submod = claims["submods"]["sim"]
    assert submod["ear.status"] == "warning"
    assert submod["ear.appraisal-policy-id"] == "test-sim"


def test_sim_rejected_when_not_allowed(attester: SimAttester) -> None:
    policy = Policy(id="tpm-only", allowed=frozenset(), unsafe_skip_reference_values=True)
    with pytest.raises(VerificationError) as failure:
        Verifier(policy).appraise(attester.evidence(BINDER), binder=BINDER, at=NOW)
    assert failure.value.check == "format"
    assert failure.value.actual == "sim"


def test_wrong_binder_rejected(attester: SimAttester) -> None:
    evidence = attester.evidence(b"\xee" * 32)
    with pytest.raises(VerificationError) as failure:
        Verifier(sim_policy(attester)).appraise(evidence, binder=BINDER, at=NOW)
    assert failure.value.check == "binder"
    assert failure.value.expected == BINDER
    assert failure.value.actual == b"\xee" * 32
    assert any("signature" in c for c in failure.value.checks_passed)


def test_changed_code_rejected(attester: SimAttester, tmp_path: Path) -> None:
    changed = SimAttester(attester.platform_key, b"\x00" * 32, attester.config_digest)
    with pytest.raises(VerificationError) as failure:
        Verifier(sim_policy(attester)).appraise(changed.evidence(BINDER), binder=BINDER, at=NOW)
    assert failure.value.check == "measurements"
    assert failure.value.claim == "sim/code"


def test_untrusted_platform_key_rejected(attester: SimAttester) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    policy = sim_policy(attester, anchors={"sim": TrustAnchors(public_keys=(other,))})
    with pytest.raises(SignatureError):
        Verifier(policy).appraise(attester.evidence(BINDER), binder=BINDER, at=NOW)


def test_pinned_instance_mismatch_rejected(attester: SimAttester) -> None:
    policy = sim_policy(attester, instance_ids={"sim": frozenset({b"\x01" + b"\x00" * 32})})
    with pytest.raises(VerificationError) as failure:
        Verifier(policy).appraise(attester.evidence(BINDER), binder=BINDER, at=NOW)
    assert failure.value.check == "instance identity"


def test_pinned_instance_match_affirms_identity(attester: SimAttester) -> None:
    policy = sim_policy(attester, instance_ids={"sim": frozenset({attester.ueid})})
    result = Verifier(policy).appraise(attester.evidence(BINDER), binder=BINDER, at=NOW)
    assert result.trust_vector["instance-identity"] == 2


def test_policy_without_reference_values_rejected(attester: SimAttester) -> None:
    with pytest.raises(PolicyError, match="no reference values"):
        sim_policy(attester, reference_values={})


def test_policy_without_anchor_rejected(attester: SimAttester) -> None:
    with pytest.raises(PolicyError, match="no trust anchors"):
        sim_policy(attester, anchors={})


def test_empty_pin_list_rejected(attester: SimAttester) -> None:
    with pytest.raises(PolicyError, match=r"instance_ids\.sim is empty"):
        sim_policy(attester, instance_ids={"sim": frozenset()})


@pytest.mark.parametrize(
    ("format", "actual", "expected"),
    [
        ("sev-snp", BINDER + bytes(32), True),  # 64-byte REPORTDATA, zero padded
        ("dcap", BINDER + bytes(32), True),
        ("sev-snp", BINDER + b"\x01" + bytes(31), False),
        ("psa", BINDER + bytes(32), False),  # variable-size nonces are never padded
        ("sev-snp", BINDER[:16], False),
        ("sim", BINDER, True),
        ("sim", None, False),
    ],
)
def test_nonce_matches(format: str, actual: bytes | None, expected: bool) -> None:
    assert nonce_matches(format, BINDER, actual) is expected
