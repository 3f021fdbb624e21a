"""The sans-IO state machine of the expat binding: bytes in, bytes out, no sockets.

Each side's stream, after the TLS handshake, is
`HELLO, [AUTHENTICATOR_REQUEST], [AUTHENTICATOR], DONE, application data...`:
the request is sent when this side appraises the peer, the authenticator when the
peer requested one. A side sends DONE once it has appraised the peer (if it asked)
and sent its authenticator (if asked).

`ready` is set once the adapter may return the connection, so that the application
can send: a side that appraises its peer waits until it has sent DONE and read the
peer's DONE; a side that only attests needs nothing more from the peer and is ready
once it has sent DONE, which saves the round trip of the peer's DONE. Application
data from the peer is handed over only once `complete` (this side's DONE sent and
the peer's DONE read); a pure attester reads the peer's DONE (or ERROR) with its
first application read. `ReceiveState` is named after the frame expected next.

The adapter passes the TLS connection's exporter, the authenticator hash of the
negotiated cipher suite and, when the peer is the TLS server (or sent a client
certificate), the peer's handshake certificate, which the authenticator's end-entity
certificate must equal.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from datetime import datetime
from enum import Enum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from attestnet.errors import VerificationError
from attestnet.tls.authenticator import (
    Exporter,
    build_authenticator,
    compute_binder,
    make_authenticator_request,
    spki_der,
    verify_authenticator,
)
from attestnet.tls.config import Appraiser, Attester, TIKPrivateKey
from attestnet.tls.errors import (
    PeerAborted,
    UnexpectedMessage,
    alert_for,
)
from attestnet.tls.frames import (
    PROTOCOL_VERSION,
    FrameBuffer,
    FrameType,
    Hello,
    decode_error,
    decode_hello,
    encode_error,
    encode_frame,
    encode_hello,
)
from attestnet.tls.messages import (
    CERTIFICATE_REQUEST,
    CLIENT_CERTIFICATE_REQUEST,
    AuthenticatorRequest,
    decode_authenticator,
    decode_authenticator_request,
)

__all__ = ["TIMING_PHASES", "AttestationSession", "ReceiveState"]

logger = logging.getLogger(__name__)

TIMING_PHASES = (
    "tls_handshake",
    "evidence",
    "authenticator_build",
    "transfer",
    "signature_verification",
    "appraisal",
)


class ReceiveState(Enum):
    EXPECT_HELLO = "expect_hello"
    EXPECT_AUTHENTICATOR_REQUEST = "expect_authenticator_request"
    EXPECT_AUTHENTICATOR = "expect_authenticator"
    EXPECT_DONE = "expect_done"
    APPLICATION_DATA = "application_data"
    FAILED = "failed"


class AttestationSession:
    """One side of the expat attestation exchange on one TLS connection."""

    def __init__(
        self,
        *,
        is_server: bool,
        requests_attestation: bool,
        offers_attestation: bool,
        exporter: Exporter,
        hash_algorithm: hashes.HashAlgorithm,
        attester: Attester | None = None,
        appraiser: Appraiser[Any] | None = None,
        certificate_chain: tuple[bytes, ...] = (),
        private_key: TIKPrivateKey | None = None,
        peer_handshake_certificate: bytes | None = None,
        exporter_label: bytes,
        exporter_length: int,
        cmw_extension_type: int,
        max_frame_size: int,
        connection_id: str = "-",
    ) -> None:
        if offers_attestation and (
            attester is None or private_key is None or not certificate_chain
        ):
            raise ValueError("offering attestation needs an attester, a certificate chain and key")
        if requests_attestation and appraiser is None:
            raise ValueError("requesting attestation needs an appraiser")
        self._is_server = is_server
        self._requests = requests_attestation
        self._offers = offers_attestation
        self._exporter = exporter
        self._hash = hash_algorithm
        self._attester = attester
        self._appraiser = appraiser
        self._chain = certificate_chain
        self._key = private_key
        self._peer_handshake_certificate = peer_handshake_certificate
        self._label = exporter_label
        self._length = exporter_length
        self._cmw_type = cmw_extension_type
        self._max_frame_size = max_frame_size
        self._log = _ConnectionLog(logger, {"connection_id": connection_id})

        self._frames = FrameBuffer(max_frame_size)
        self._outgoing = bytearray()
        self._application_data = bytearray()
        self.state = ReceiveState.EXPECT_HELLO
        self._peer_hello: Hello | None = None
        self._request: AuthenticatorRequest | None = None
        self._request_bytes = b""
        self._authenticator_sent = False
        self._peer_appraised = False
        self._done_sent = False
        self._started = False

        self.peer_result: object | None = None
        self.peer_certificate: x509.Certificate | None = None
        self.peer_tik: bytes | None = None
        self.timings: dict[str, float] = dict.fromkeys(TIMING_PHASES, 0.0)

    # -- public interface -------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """This side has sent its DONE and read the peer's: the exchange is over."""
        return self._done_sent and self.state is ReceiveState.APPLICATION_DATA

    @property
    def ready(self) -> bool:
        """The application may send: this side sent DONE and, if it appraises the peer,
        the peer's DONE has been read too."""
        if not self._done_sent or self.state is ReceiveState.FAILED:
            return False
        return self.state is ReceiveState.APPLICATION_DATA or not self._requests

    def start(self) -> None:
        """Queue this side's HELLO and, when it appraises the peer, its request."""
        if self._started:
            return
        self._started = True
        hello = Hello(PROTOCOL_VERSION, self._requests, self._offers)
        self._send(FrameType.HELLO, encode_hello(hello))
        if self._requests:
            msg_type = CERTIFICATE_REQUEST if self._is_server else CLIENT_CERTIFICATE_REQUEST
            context = secrets.token_bytes(32)
            self._request, self._request_bytes = make_authenticator_request(
                msg_type, context, self._cmw_type
            )
            self._send(FrameType.AUTHENTICATOR_REQUEST, self._request_bytes)
        self._log.debug("attestation started: requests=%s offers=%s", self._requests, self._offers)

    def data_to_send(self) -> bytes:
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data: bytes, now: datetime) -> None:
        """Process bytes read from TLS. Raise on any failure, after queueing an ERROR frame.

        `now` is the appraisal time passed to the appraiser.
        """
        if self.state is ReceiveState.FAILED:
            raise UnexpectedMessage("attestation session has already failed")
        if self.state is ReceiveState.APPLICATION_DATA:
            self._buffer_application_data(data)
            return
        try:
            self._frames.feed(data)
            self._process_frames(now)
        except PeerAborted:
            self.state = ReceiveState.FAILED
            raise
        except Exception as error:
            self.fail(error)
            raise

    def fail(self, error: BaseException) -> None:
        """Queue an ERROR frame for `error` and stop the session.

        After this side's DONE every byte it sends is application data, so from then
        on no ERROR frame is queued: the adapter closes the connection instead.
        """
        if self.state is ReceiveState.FAILED:
            return
        self.state = ReceiveState.FAILED
        alert = alert_for(error)
        self._log.warning("attestation failed (%s): %s", alert.name, error)
        if not self._done_sent:
            reason = _reason_for_peer(error)
            self._outgoing += encode_frame(FrameType.ERROR, encode_error(alert, reason))

    def take_application_data(self) -> bytes:
        """Return application data that arrived after the peer's DONE, once complete."""
        if not self.complete:
            return b""
        data = bytes(self._application_data)
        self._application_data.clear()
        return data

    # -- frame handling ---------------------------------------------------------------

    def _send(self, frame_type: FrameType, body: bytes) -> None:
        self._outgoing += encode_frame(frame_type, body)

    def _buffer_application_data(self, data: bytes) -> None:
        self._application_data += data
        if not self.complete and len(self._application_data) > self._max_frame_size:
            raise UnexpectedMessage(
                f"peer sent more than {self._max_frame_size} bytes of application data "
                "before attestation completed"
            )

    def _process_frames(self, now: datetime) -> None:
        while self.state is not ReceiveState.APPLICATION_DATA:
            frame = self._frames.next_frame()
            if frame is None:
                return
            if frame.type is FrameType.ERROR:
                alert, reason = decode_error(frame.body)
                raise PeerAborted(alert, reason)
            expected = {
                ReceiveState.EXPECT_HELLO: FrameType.HELLO,
                ReceiveState.EXPECT_AUTHENTICATOR_REQUEST: FrameType.AUTHENTICATOR_REQUEST,
                ReceiveState.EXPECT_AUTHENTICATOR: FrameType.AUTHENTICATOR,
                ReceiveState.EXPECT_DONE: FrameType.DONE,
            }[self.state]
            if frame.type is not expected:
                raise UnexpectedMessage(
                    f"received {frame.type.name} frame while expecting {expected.name}"
                )
            if frame.type is FrameType.HELLO:
                self._on_hello(decode_hello(frame.body))
            elif frame.type is FrameType.AUTHENTICATOR_REQUEST:
                self._on_request(frame.body)
            elif frame.type is FrameType.AUTHENTICATOR:
                self._on_authenticator(frame.body, now)
            else:
                if frame.body:
                    raise UnexpectedMessage(f"DONE frame has a {len(frame.body)}-byte body")
                self.state = ReceiveState.APPLICATION_DATA
                self._log.debug("peer finished attestation")
            self._maybe_send_done()
        self._buffer_application_data(self._frames.take_rest())

    def _next_state_after_request(self) -> ReceiveState:
        return ReceiveState.EXPECT_AUTHENTICATOR if self._requests else ReceiveState.EXPECT_DONE

    def _on_hello(self, hello: Hello) -> None:
        if hello.version != PROTOCOL_VERSION:
            raise UnexpectedMessage(
                f"peer speaks attestation protocol version {hello.version}, "
                f"expected {PROTOCOL_VERSION}"
            )
        if self._requests and not hello.offers_attestation:
            raise VerificationError(
                "attestation.offered",
                "this side requires the peer's attestation but the peer does not offer it",
            )
        if hello.requests_attestation and not self._offers:
            raise VerificationError(
                "attestation.offered",
                "the peer requests attestation but this side is not configured to attest",
            )
        if not self._requests and not hello.requests_attestation:
            raise VerificationError(
                "attestation.offered", "neither side requests attestation on an expat connection"
            )
        self._peer_hello = hello
        if hello.requests_attestation:
            self.state = ReceiveState.EXPECT_AUTHENTICATOR_REQUEST
        else:
            self.state = self._next_state_after_request()

    def _on_request(self, body: bytes) -> None:
        request = decode_authenticator_request(body)
        expected_type = CLIENT_CERTIFICATE_REQUEST if self._is_server else CERTIFICATE_REQUEST
        if request.msg_type != expected_type:
            raise UnexpectedMessage(
                f"authenticator request has handshake type {request.msg_type}; a TLS "
                f"{'client' if self._is_server else 'server'} sends {expected_type}"
            )
        if len(request.context) < 16:
            raise VerificationError(
                "authenticator.context",
                "certificate_request_context is too short to be unpredictable",
                expected="at least 16 bytes",
                actual=f"{len(request.context)} bytes",
            )
        assert self._attester is not None and self._key is not None
        exported = self._exporter(self._label, request.context, self._length)
        binder = compute_binder(spki_der(self._key.public_key()), exported)

        started = time.perf_counter()
        cmw = self._attester.evidence(binder)
        self.timings["evidence"] += time.perf_counter() - started

        started = time.perf_counter()
        authenticator = build_authenticator(
            request=request,
            request_bytes=body,
            certificate_chain=self._chain,
            private_key=self._key,
            cmw=cmw,
            cmw_extension_type=self._cmw_type,
            exporter=self._exporter,
            sender_is_server=self._is_server,
            hash_algorithm=self._hash,
        )
        self.timings["authenticator_build"] += time.perf_counter() - started
        self._send(FrameType.AUTHENTICATOR, authenticator)
        self._authenticator_sent = True
        self._log.debug("sent authenticator with %d bytes of evidence", len(cmw))
        self.state = self._next_state_after_request()

    def _on_authenticator(self, body: bytes, now: datetime) -> None:
        assert self._request is not None and self._appraiser is not None
        started = time.perf_counter()
        verified = verify_authenticator(
            request=self._request,
            request_bytes=self._request_bytes,
            authenticator=decode_authenticator(body),
            cmw_extension_type=self._cmw_type,
            exporter=self._exporter,
            sender_is_server=not self._is_server,
            hash_algorithm=self._hash,
        )
        self.timings["signature_verification"] += time.perf_counter() - started
        if self._peer_handshake_certificate is not None and not hmac.compare_digest(
            verified.chain[0], self._peer_handshake_certificate
        ):
            raise VerificationError(
                "authenticator.certificate",
                "authenticator certificate is not the peer's TLS handshake certificate",
                expected=_fingerprint(self._peer_handshake_certificate),
                actual=_fingerprint(verified.chain[0]),
            )
        tik = spki_der(verified.certificate.public_key())
        exported = self._exporter(self._label, self._request.context, self._length)
        binder = compute_binder(tik, exported)

        started = time.perf_counter()
        result = self._appraiser.appraise(verified.cmw, binder=binder, at=now)
        self.timings["appraisal"] += time.perf_counter() - started
        self.peer_result = result
        self.peer_certificate = verified.certificate
        self.peer_tik = tik
        self._peer_appraised = True
        self._log.info("peer attestation appraised and accepted")
        self.state = ReceiveState.EXPECT_DONE

    def _maybe_send_done(self) -> None:
        if self._done_sent or self._peer_hello is None:
            return
        if self._requests and not self._peer_appraised:
            return
        if self._peer_hello.requests_attestation and not self._authenticator_sent:
            return
        self._send(FrameType.DONE, b"")
        self._done_sent = True


class _ConnectionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefix each message with the connection id."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['connection_id'] if self.extra else '-'}] {msg}", kwargs


def _fingerprint(der: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return "sha256:" + digest.finalize().hex()


def _reason_for_peer(error: BaseException) -> str:
    """Return what the peer may learn about a failure: the failed check's name only.

    The full message names expected values (reference values, pinned identities,
    the policy id), which are the relying party's policy and stay in its own log.
    """
    check = getattr(error, "check", None)
    if isinstance(check, str):
        return f"check failed: {check}"
    return f"attestation failed: {type(error).__name__}"
