"""Exception types shared by every layer of attestnet.

Malformed input and failed verification are different exceptions, so a caller can
tell "these bytes are not evidence" from "this evidence is not trustworthy".
Verification functions return a result or raise; they never return a bool.
"""

from __future__ import annotations

__all__ = [
    "AttestnetError",
    "ChainError",
    "ConfigError",
    "MalformedEvidence",
    "PolicyError",
    "ProtocolError",
    "SignatureError",
    "UnknownFormat",
    "VerificationError",
]


class AttestnetError(Exception):
    """Base class of every error that attestnet raises on purpose."""


class ConfigError(AttestnetError):
    """A configuration value, file or command-line argument is invalid."""


class PolicyError(ConfigError):
    """An appraisal policy file is invalid (not a failed check: see VerificationError)."""


class MalformedEvidence(AttestnetError):
    """Bytes that cannot be parsed as the evidence format they claim to be.

    `format` names the format the parser expected and `detail` says what was wrong,
    including the offset or field where one is known.
    """

    def __init__(self, format: str, detail: str) -> None:
        super().__init__(f"malformed {format}: {detail}")
        self.format = format
        self.detail = detail


class UnknownFormat(MalformedEvidence):
    """The evidence format cannot be detected from the bytes."""

    def __init__(self, detail: str) -> None:
        super().__init__("evidence", detail)


class VerificationError(AttestnetError):
    """A verification or appraisal check failed.

    Every instance names the check that failed, the claim it looked at, and the
    expected and actual values, so a log line or CLI message is enough to act on.
    """

    def __init__(
        self,
        check: str,
        message: str,
        *,
        claim: str | None = None,
        expected: object = None,
        actual: object = None,
    ) -> None:
        parts = [f"{check}: {message}"]
        if claim is not None:
            parts.append(f"claim {claim}")
        if expected is not None:
            parts.append(f"expected {_show(expected)}")
        if actual is not None:
            parts.append(f"actual {_show(actual)}")
        super().__init__("; ".join(parts))
        self.check = check
        self.claim = claim
        self.expected = expected
        self.actual = actual
        # Checks that passed before this one, filled in by the appraisal so that a
        # report can show the whole checklist up to the failure.
        self.checks_passed: list[str] = []


class SignatureError(VerificationError):
    """A signature or MAC over evidence, a certificate or collateral does not verify."""


class ChainError(VerificationError):
    """A certificate chain does not lead to a trust anchor, or a link is not valid."""


class ProtocolError(AttestnetError):
    """The attested TLS peer broke the protocol: bad framing, wrong message, bad state."""


def _show(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)
