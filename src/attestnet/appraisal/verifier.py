"""The in-process verifier: the relying party's numbered checks and the EAR verdict.

`Verifier.appraise` runs the relying party's checks on evidence, in this order,
and stops at the first failure with a VerificationError naming the check, the
claim, the expected and the actual value:

0. format: the evidence is a known format that the policy allows (``sim`` only
   when listed explicitly).
4. signature: the evidence signature chains to a trust anchor of the policy, and
   every certificate and collateral is valid at the verification time.
3. binder: the evidence nonce equals the binder of this connection. It runs after
   the signature check because a nonce read from unverified evidence proves nothing.
5. measurements: every reference value of the policy is matched, the TCB meets
   the policy minimum, and debug is off unless allowed.
6. instance identity: the instance id is one the policy pins, where it pins any.

Checks 1 and 2 (TLS 1.3, the authenticator) belong to the TLS layer. Check 7
applies to attestation results, so it runs only when the evidence is an EAR.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.appraisal.ear import EarIssuer, status_for
from attestnet.appraisal.policy import Policy
from attestnet.errors import VerificationError
from attestnet.evidence import registry
from attestnet.evidence.ear import tier_of
from attestnet.evidence.model import VerifiedEvidence

__all__ = ["AppraisalResult", "Verifier"]

logger = logging.getLogger(__name__)

# AR4SI values used here (draft-ietf-rats-ar4si).
_AFFIRMING = 2
_HARDWARE_UNSAFE_SIMULATED = 32  # warning tier: not genuine hardware
_NO_CLAIM = 0


@dataclass
class AppraisalResult:
    """A passed appraisal: the verified evidence, the checks and the signed EAR."""

    format: str
    status: str
    trust_vector: dict[str, int]
    evidence: VerifiedEvidence
    checks: list[str]
    policy_id: str
    _sign_ear: Callable[[], str] | None = field(default=None, repr=False)
    _ear: str | None = field(default=None, repr=False)

    @property
    def ear(self) -> str | None:
        """The signed EAR JWT, or None when the verifier has no EAR key.

        It is signed on first access: a relying party that acts on the result in
        process (attested TLS) does not pay for a signature it never reads.
        """
        if self._ear is None and self._sign_ear is not None:
            self._ear = self._sign_ear()
        return self._ear


class _Checklist:
    """Records passed checks so that a failure can report the whole list."""

    def __init__(self) -> None:
        self.passed: list[str] = []

    def ok(self, text: str) -> None:
        self.passed.append(text)

    def fail(self, error: VerificationError) -> VerificationError:
        error.checks_passed = list(self.passed)
        return error


@dataclass
class Verifier:
    """Appraise evidence under one policy and sign the verdict as an EAR.

    `ear_key` signs attestation results; without one, results carry no EAR token
    (the relying party uses the returned result object directly).
    """

    policy: Policy
    ear_key: ec.EllipticCurvePrivateKey | None = None
    ear_lifetime_seconds: int | None = 300

    def __post_init__(self) -> None:
        self._issuer = EarIssuer(self.ear_key) if self.ear_key is not None else None

    def appraise(
        self,
        evidence: bytes,
        *,
        binder: bytes | None,
        at: datetime,
        format: str | None = None,
    ) -> AppraisalResult:
        """Appraise `evidence` (a CMW record or bare evidence) at time `at`.

        `binder` is the value the evidence nonce must equal; None skips check 3 and is
        only for evidence that is not tied to a connection (the `verify` command).
        """
        checklist = _Checklist()
        try:
            return self._appraise(evidence, binder, at, format, checklist)
        except VerificationError as error:
            raise checklist.fail(error) from None

    def _appraise(
        self,
        data: bytes,
        binder: bytes | None,
        at: datetime,
        format: str | None,
        checklist: _Checklist,
    ) -> AppraisalResult:
        policy = self.policy

        # 0. format
        if format is None:
            format, payload = registry.detect(data)
        else:
            unwrapped_format, payload = registry.unwrap(data)
            if unwrapped_format not in (None, format):
                raise VerificationError(
                    "format",
                    "CMW media type names another format",
                    expected=format,
                    actual=unwrapped_format,
                )
        if format not in policy.allowed:
            raise VerificationError(
                "format",
                f"evidence format is not allowed by policy {policy.id!r}",
                claim="format",
                expected=sorted(policy.allowed),
                actual=format,
            )
        checklist.ok(f"0. format: {format} is allowed by policy {policy.id!r}")

        # 4. signature and chain
        module = registry.load(format)
        verified = module.verify(
            payload,
            anchors=policy.anchors[format],
            at=at,
            collateral=policy.collateral.get(format),
        )
        for check in verified.checks:
            checklist.ok(f"4. {check.name}: {check.detail}")

        # 7. attestation results
        if format == "ear":
            self._check_attestation_result(verified, checklist)

        # 3. binder
        if binder is not None:
            if not nonce_matches(format, binder, verified.nonce):
                raise VerificationError(
                    "binder",
                    "evidence is not bound to this connection (replay, relay or key substitution)",
                    claim="nonce",
                    expected=binder,
                    actual=verified.nonce,
                )
            checklist.ok("3. binder: evidence nonce equals this connection's binder")

        # 5. measurements, TCB, debug
        vector = {name: _NO_CLAIM for name in ("instance-identity", "hardware", "executables")}
        self._check_measurements(format, verified, checklist)
        if not policy.unsafe_skip_reference_values and format != "ear":
            vector["executables"] = _AFFIRMING
            vector["configuration"] = _AFFIRMING
        self._check_tcb_and_debug(format, verified, checklist)

        # 6. instance identity
        pinned = policy.instance_ids.get(format)
        if pinned:
            if verified.instance_id not in pinned:
                raise VerificationError(
                    "instance identity",
                    "instance is not the one the policy pins",
                    claim="instance_id",
                    expected=sorted(p.hex() for p in pinned),
                    actual=verified.instance_id,
                )
            checklist.ok(f"6. instance identity: {verified.instance_id.hex()} is pinned")
            vector["instance-identity"] = _AFFIRMING

        if format == "ear":
            # An attestation result passes on the trust its issuer appraised and adds
            # none: this verifier saw no hardware or measurements of its own.
            vector = _worst_claims(verified.claims)
        else:
            vector["hardware"] = _HARDWARE_UNSAFE_SIMULATED if verified.simulated else _AFFIRMING
        status = status_for(vector)
        result = AppraisalResult(
            format=format,
            status=status,
            trust_vector=vector,
            evidence=verified,
            checks=checklist.passed,
            policy_id=policy.id,
        )
        issuer = self._issuer
        if issuer is not None:
            submod = {
                "ear.status": status,
                "ear.trustworthiness-vector": dict(vector),
                "ear.appraisal-policy-id": policy.id,
            }
            lifetime = self.ear_lifetime_seconds
            result._sign_ear = lambda: issuer.issue(
                {format: submod}, at=at, nonce=binder, lifetime_seconds=lifetime
            )
        logger.debug("appraisal of %s evidence passed with status %s", format, status)
        return result

    def _check_attestation_result(self, verified: VerifiedEvidence, checklist: _Checklist) -> None:
        """Check 7: every appraisal in the EAR is affirming, with no warning in its vector.

        Signature (the issuer key is a trust anchor) and iat/exp were checked with
        the signature in check 4.
        """
        submods = verified.claims.get("submods")
        if not isinstance(submods, dict) or not submods:
            raise VerificationError("attestation result", "EAR has no submods", claim="submods")
        for name, appraisal in sorted(submods.items()):
            status = appraisal.get("ear.status") if isinstance(appraisal, dict) else None
            if status != "affirming":
                raise VerificationError(
                    "attestation result",
                    "appraisal is not affirming",
                    claim=f"submods.{name}.ear.status",
                    expected="affirming",
                    actual=status,
                )
            vector = appraisal.get("ear.trustworthiness-vector") or {}
            for claim, value in sorted(vector.items()):
                if isinstance(value, int) and tier_of(value) not in ("none", "affirming"):
                    raise VerificationError(
                        "attestation result",
                        "trust vector claim is in the warning or contraindicated tier",
                        claim=f"submods.{name}.{claim}",
                        expected="the none or affirming tier",
                        actual=value,
                    )
            checklist.ok(f"7. attestation result: {name} is affirming")

    def _check_measurements(
        self, format: str, verified: VerifiedEvidence, checklist: _Checklist
    ) -> None:
        if self.policy.unsafe_skip_reference_values:
            logger.warning("measurements of %s evidence not appraised (unsafe policy)", format)
            checklist.ok("5. measurements: NOT APPRAISED (policy skips reference values)")
            return
        for name, accepted in sorted(self.policy.reference_values.get(format, {}).items()):
            actual = verified.measurements.get(name)
            if actual not in accepted:
                raise VerificationError(
                    "measurements",
                    "measurement does not match any reference value",
                    claim=name,
                    expected=" or ".join(sorted(v.hex() for v in accepted)),
                    actual=actual if actual is not None else "absent",
                )
            checklist.ok(f"5. measurements: {name} matches a reference value")

    def _check_tcb_and_debug(
        self, format: str, verified: VerifiedEvidence, checklist: _Checklist
    ) -> None:
        for component, minimum in sorted(self.policy.min_tcb.get(format, {}).items()):
            level = verified.tcb.get(component)
            if level is None or level < minimum:
                raise VerificationError(
                    "tcb",
                    "TCB component is below the policy minimum",
                    claim=component,
                    expected=f">= {minimum}",
                    actual=level,
                )
            checklist.ok(f"5. tcb: {component} {level} >= {minimum}")
        tcb_status = verified.claims.get("tcb_status")
        if tcb_status is not None:
            if tcb_status not in self.policy.tcb_status_allowed:
                raise VerificationError(
                    "tcb",
                    "TCB status is not one the policy accepts",
                    claim="tcb_status",
                    expected=" or ".join(sorted(self.policy.tcb_status_allowed)),
                    actual=tcb_status,
                )
            checklist.ok(f"5. tcb: status {tcb_status} is accepted")
        if verified.debug and not self.policy.debug_allowed:
            raise VerificationError(
                "debug",
                "debug is enabled but the policy does not allow it",
                claim="debug",
                expected=False,
                actual=True,
            )
        if verified.debug:
            checklist.ok("5. debug: enabled, which the policy allows")
        elif verified.debug is False:
            checklist.ok("5. debug: disabled")


# Formats whose nonce field has a fixed size (REPORTDATA, 64 bytes): a shorter nonce
# such as a 32-byte binder is carried at its start, followed by zero bytes.
FIXED_SIZE_NONCE_FORMATS = frozenset({"sev-snp", "dcap"})


def nonce_matches(format: str, expected: bytes, actual: bytes | None) -> bool:
    """Return whether evidence of `format` carries the nonce `expected`."""
    if actual is None:
        return False
    if actual == expected:
        return True
    if format == "ear":
        # JSON EATs carry eat_nonce as text; EarIssuer writes binary nonces as
        # unpadded base64url, and the EAR verifier returns that text's bytes.
        return actual == base64.urlsafe_b64encode(expected).rstrip(b"=")
    padding = len(actual) - len(expected)
    return (
        format in FIXED_SIZE_NONCE_FORMATS and padding > 0 and actual == expected + bytes(padding)
    )


def _worst_claims(claims: dict[str, Any]) -> dict[str, int]:
    """Merge the trust vectors of an EAR's submods, keeping each claim's worst value.

    A larger magnitude is a worse AR4SI tier (2..31 affirming, 32..95 warning, 96 and
    up contraindicated, negative values mirroring them).
    """
    merged: dict[str, int] = {}
    submods = claims.get("submods")
    for appraisal in submods.values() if isinstance(submods, dict) else ():
        if not isinstance(appraisal, dict):
            continue
        vector = appraisal.get("ear.trustworthiness-vector") or {}
        for claim, value in vector.items():
            if not isinstance(value, int):
                continue
            if claim not in merged or abs(value) > abs(merged[claim]):
                merged[claim] = value
    return merged
