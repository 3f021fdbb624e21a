"""Errors of the attested TLS layer, each carrying the TLS alert it maps to.

Broken framing and unexpected messages raise `AttestationProtocolError` subclasses.
Failed checks (TLS version, authenticator context, CertificateVerify, Finished, the
appraisal) raise `attestnet.errors.VerificationError` or its subclasses, whose `check`
names the failed check. Both close the connection.
"""

from __future__ import annotations

from enum import IntEnum

from attestnet.errors import ProtocolError, VerificationError

__all__ = [
    "AlertDescription",
    "AttestationProtocolError",
    "AttestationTimeout",
    "FrameTooLarge",
    "MalformedMessage",
    "PeerAborted",
    "UnexpectedMessage",
    "UnsupportedExtension",
    "alert_for",
]


class AlertDescription(IntEnum):
    """TLS AlertDescription values (RFC 8446, section 6) used by this layer."""

    close_notify = 0
    unexpected_message = 10
    record_overflow = 22
    handshake_failure = 40
    bad_certificate = 42
    illegal_parameter = 47
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    user_canceled = 90
    unsupported_extension = 110
    certificate_required = 116


class AttestationProtocolError(ProtocolError):
    """The peer broke the attestation protocol; `alert` is the TLS alert that fits."""

    alert: AlertDescription = AlertDescription.internal_error

    def __init__(self, message: str, *, alert: AlertDescription | None = None) -> None:
        super().__init__(message)
        if alert is not None:
            self.alert = alert


class MalformedMessage(AttestationProtocolError):
    """A frame or an RFC 9261 message cannot be decoded (truncated, trailing bytes, bad length)."""

    alert = AlertDescription.decode_error


class FrameTooLarge(AttestationProtocolError):
    """A frame announces a body longer than the configured maximum frame size."""

    alert = AlertDescription.record_overflow


class UnexpectedMessage(AttestationProtocolError):
    """A frame or message arrived that the current state does not allow.

    This includes application data sent before attestation completed.
    """

    alert = AlertDescription.unexpected_message


class UnsupportedExtension(AttestationProtocolError):
    """An authenticator carries an extension that the request did not offer."""

    alert = AlertDescription.unsupported_extension


class AttestationTimeout(AttestationProtocolError):
    """The TLS handshake or the attestation exchange did not finish in time."""

    alert = AlertDescription.user_canceled


class PeerAborted(AttestationProtocolError):
    """The peer closed the attestation with an error frame or closed the connection.

    `alert` is the alert the peer sent and `reason` its text (empty when the peer
    closed the connection without an error frame).
    """

    def __init__(self, alert: AlertDescription | int, reason: str) -> None:
        try:
            alert = AlertDescription(alert)
        except ValueError:
            alert = AlertDescription.internal_error
        super().__init__(f"peer aborted attestation ({alert.name}): {reason}", alert=alert)
        self.reason = reason


_CHECK_ALERTS: dict[str, AlertDescription] = {
    "tls.version": AlertDescription.protocol_version,
    "tls.full_handshake": AlertDescription.handshake_failure,
    "attestation.offered": AlertDescription.insufficient_security,
    "authenticator.context": AlertDescription.illegal_parameter,
    "authenticator.certificate": AlertDescription.bad_certificate,
    "authenticator.signature_scheme": AlertDescription.illegal_parameter,
    "authenticator.certificate_verify": AlertDescription.decrypt_error,
    "authenticator.finished": AlertDescription.decrypt_error,
    "authenticator.cmw_attestation": AlertDescription.certificate_required,
}


def alert_for(error: BaseException) -> AlertDescription:
    """Return the TLS alert to send for `error` in an error frame."""
    if isinstance(error, AttestationProtocolError):
        return error.alert
    if isinstance(error, VerificationError):
        return _CHECK_ALERTS.get(error.check, AlertDescription.bad_certificate)
    return AlertDescription.internal_error
