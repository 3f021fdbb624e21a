"""Every check of the expat binding rejects with its specific error, on real sockets.

Misbehaving peers are `RawPeer`s: real pyOpenSSL TLS 1.3 endpoints that build frames
and authenticators with the library's own encoders and then deviate on purpose.
"""

from __future__ import annotations

import hashlib
import select
import socket
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.errors import SignatureError, VerificationError
from attestnet.tls import (
    DEFAULT_CMW_EXTENSION_TYPE,
    AlertDescription,
    AttestationTimeout,
    Binding,
    FrameTooLarge,
    MalformedMessage,
    PeerAborted,
    Role,
    UnexpectedMessage,
    connect,
)
from attestnet.tls.authenticator import make_authenticator_request, spki_der
from attestnet.tls.frames import FrameType, encode_error
from attestnet.tls.messages import CLIENT_CERTIFICATE_REQUEST
from tests.tls.conftest import (
    RawPeer,
    ReplayingAttester,
    SignatureAppraiser,
    SigningAttester,
    WrongNonceAttester,
    echo_once,
    hello,
    make_config,
    run_in_thread,
)

# -- evidence bound to the wrong thing ------------------------------------------------


def test_replayed_evidence_rejected(
    serve: Any, attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    first = serve(make_config(Role.ATTESTER, attester, appraiser))
    with connect(*first.server.address, make_config(Role.RELYING_PARTY, attester, appraiser)):
        first.result().close()
    recorded = attester.produced[0]

    replaying = make_config(Role.ATTESTER, ReplayingAttester(recorded), appraiser)
    second = serve(replaying, echo_once)
    with pytest.raises(VerificationError) as caught:
        connect(*second.server.address, make_config(Role.RELYING_PARTY, attester, appraiser))
    assert caught.value.check == "binder"
    assert caught.value.claim == "nonce"
    assert isinstance(second.error(), PeerAborted)


def test_wrong_nonce_rejected(
    serve: Any, platform_key: ec.EllipticCurvePrivateKey, appraiser: SignatureAppraiser
) -> None:
    server = serve(make_config(Role.RELYING_PARTY, None, appraiser), echo_once)
    client_config = make_config(Role.ATTESTER, WrongNonceAttester(platform_key), None)
    # A pure attester returns once its authenticator is out; the rejection arrives
    # with its first read.
    client = connect(*server.server.address, client_config)
    with pytest.raises(PeerAborted) as caught:
        client.recv()
    assert caught.value.alert is AlertDescription.bad_certificate
    error = server.error()
    assert isinstance(error, VerificationError)
    assert error.check == "binder"


def test_evidence_signed_by_other_platform_rejected(
    serve: Any, appraiser: SignatureAppraiser
) -> None:
    rogue = SigningAttester(ec.generate_private_key(ec.SECP256R1()))
    server = serve(make_config(Role.ATTESTER, rogue, None), echo_once)
    with pytest.raises(SignatureError) as caught:
        connect(*server.server.address, make_config(Role.RELYING_PARTY, None, appraiser))
    assert caught.value.check == "evidence.signature"


def _serve_raw_attester(raw_listener: socket.socket, respond: Any) -> Any:
    """Accept one client as a raw TLS server that reads HELLO + request and calls `respond`."""

    def run() -> int:
        peer = RawPeer.accept(raw_listener)
        try:
            assert peer.read_frame().type is FrameType.HELLO
            request = peer.read_frame()
            assert request.type is FrameType.AUTHENTICATOR_REQUEST
            peer.send_frame(FrameType.HELLO, hello(requests=False, offers=True))
            respond(peer, request.body)
            return peer.read_error_alert()
        finally:
            peer.close()

    return run_in_thread(run)


def test_key_substitution_rejected(
    raw_listener: socket.socket, attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())

    def respond(peer: RawPeer, request_body: bytes) -> None:
        from attestnet.tls.messages import decode_authenticator_request

        context = decode_authenticator_request(request_body).context
        exported = peer.exporter(b"Attestation", context, 32)
        substituted = hashlib.sha256(spki_der(other_key.public_key()) + exported).digest()
        cmw = attester.sign(substituted)
        peer.send_frame(
            FrameType.AUTHENTICATOR,
            peer.authenticator_for(request_body, cmw, sender_is_server=True),
        )
        peer.send_frame(FrameType.DONE, b"")

    raw = _serve_raw_attester(raw_listener, respond)
    with pytest.raises(VerificationError) as caught:
        connect(*raw_listener.getsockname(), make_config(Role.RELYING_PARTY, None, appraiser))
    assert caught.value.check == "binder"
    assert raw.result(timeout=10) == AlertDescription.bad_certificate


@pytest.mark.parametrize(
    ("message_index", "check", "alert"),
    [
        pytest.param(
            1, "authenticator.certificate_verify", AlertDescription.decrypt_error, id="cv"
        ),
        pytest.param(2, "authenticator.finished", AlertDescription.decrypt_error, id="finished"),
    ],
)
def test_tampered_authenticator_rejected(
    raw_listener: socket.socket,
    attester: SigningAttester,
    appraiser: SignatureAppraiser,
    message_index: int,
    check: str,
    alert: AlertDescription,
) -> None:
    from attestnet.tls.messages import split_handshake_messages

    def respond(peer: RawPeer, request_body: bytes) -> None:
        from attestnet.tls.authenticator import compute_binder
        from attestnet.tls.messages import decode_authenticator_request

        context = decode_authenticator_request(request_body).context
        tik = spki_der(peer.identity.key.public_key())
        cmw = attester.sign(compute_binder(tik, peer.exporter(b"Attestation", context, 32)))
        authenticator = peer.authenticator_for(request_body, cmw, sender_is_server=True)
        messages = split_handshake_messages(authenticator, "test")
        target = bytearray(messages[message_index][2])
        target[-1] ^= 0x01  # the last signature or MAC byte
        parts = [m[2] for m in messages]
        parts[message_index] = bytes(target)
        peer.send_frame(FrameType.AUTHENTICATOR, b"".join(parts))
        peer.send_frame(FrameType.DONE, b"")

    raw = _serve_raw_attester(raw_listener, respond)
    with pytest.raises(SignatureError) as caught:
        connect(*raw_listener.getsockname(), make_config(Role.RELYING_PARTY, None, appraiser))
    assert caught.value.check == check
    assert raw.result(timeout=10) == alert


def test_authenticator_with_foreign_certificate_rejected(
    raw_listener: socket.socket, attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    from attestnet.tls.identity import generate_identity

    def respond(peer: RawPeer, request_body: bytes) -> None:
        from attestnet.tls.authenticator import compute_binder
        from attestnet.tls.messages import decode_authenticator_request

        peer.identity = generate_identity("not-the-handshake-key")
        context = decode_authenticator_request(request_body).context
        tik = spki_der(peer.identity.key.public_key())
        cmw = attester.sign(compute_binder(tik, peer.exporter(b"Attestation", context, 32)))
        authenticator = peer.authenticator_for(request_body, cmw, sender_is_server=True)
        peer.send_frame(FrameType.AUTHENTICATOR, authenticator)

    raw = _serve_raw_attester(raw_listener, respond)
    with pytest.raises(VerificationError) as caught:
        connect(*raw_listener.getsockname(), make_config(Role.RELYING_PARTY, None, appraiser))
    assert caught.value.check == "authenticator.certificate"
    assert raw.result(timeout=10) == AlertDescription.bad_certificate


# -- relays (a man in the middle with two TLS sessions) --------------------------------


def _relay(listener: socket.socket, upstream: tuple[str, int], frames: int) -> Any:
    """Terminate one TLS session, open another to `upstream`, forward frames both ways."""

    def run() -> None:
        downstream = RawPeer.accept(listener)
        upstream_peer = RawPeer.connect(upstream)
        deadline = time.monotonic() + 10
        try:
            forwarded = 0
            while forwarded < frames and time.monotonic() < deadline:
                moved = False
                for source, target in ((downstream, upstream_peer), (upstream_peer, downstream)):
                    frame = source.poll_frame()
                    if frame is None:
                        continue
                    target.send_frame(frame.type, frame.body)
                    forwarded += 1
                    moved = True
                    if frame.type is FrameType.ERROR:
                        return
                if not moved:
                    select.select([downstream.sock, upstream_peer.sock], [], [], 0.05)
        finally:
            downstream.close()
            upstream_peer.close()

    return run_in_thread(run)


def test_relay_to_attesting_server_rejected(
    serve: Any,
    raw_listener: socket.socket,
    attester: SigningAttester,
    appraiser: SignatureAppraiser,
) -> None:
    genuine = serve(make_config(Role.ATTESTER, attester, None), echo_once)
    _relay(raw_listener, genuine.server.address, frames=4)
    with pytest.raises(SignatureError) as caught:
        connect(*raw_listener.getsockname(), make_config(Role.RELYING_PARTY, None, appraiser))
    # The genuine server signed its own connection's handshake context, so the
    # signature fails before the certificate is compared with the relay's.
    assert caught.value.check == "authenticator.certificate_verify"


def test_relay_of_attesting_client_rejected(
    serve: Any,
    raw_listener: socket.socket,
    attester: SigningAttester,
    appraiser: SignatureAppraiser,
) -> None:
    verifier_side = serve(make_config(Role.RELYING_PARTY, None, appraiser), echo_once)
    _relay(raw_listener, verifier_side.server.address, frames=5)
    client = connect(*raw_listener.getsockname(), make_config(Role.ATTESTER, attester, None))
    with pytest.raises(PeerAborted):
        client.recv()
    error = verifier_side.error()
    assert isinstance(error, SignatureError)
    assert error.check == "authenticator.certificate_verify"


# -- downgrade: a peer that does not attest ---------------------------------------------


def test_relying_party_against_relying_party_rejected(
    serve: Any, appraiser: SignatureAppraiser
) -> None:
    server = serve(make_config(Role.RELYING_PARTY, None, appraiser), echo_once)
    with pytest.raises(VerificationError) as caught:
        connect(*server.server.address, make_config(Role.RELYING_PARTY, None, appraiser))
    assert caught.value.check == "attestation.offered"


def test_expat_against_plain_server_that_speaks_first(
    serve: Any, appraiser: SignatureAppraiser
) -> None:
    def banner(connection: Any) -> None:
        connection.sendall(b"220 plain TLS server ready\r\n")
        connection.recv()
        connection.close()

    plain = serve(make_config(Role.RELYING_PARTY, None, None, Binding.NONE), banner)
    with pytest.raises(UnexpectedMessage):
        connect(*plain.server.address, make_config(Role.RELYING_PARTY, None, appraiser))
    plain.error()


def test_expat_against_cert_binding_server_times_out(
    serve: Any, attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    server = serve(make_config(Role.ATTESTER, attester, None, Binding.CERT))
    config = make_config(Role.RELYING_PARTY, None, appraiser, handshake_timeout=0.5)
    with pytest.raises(AttestationTimeout):
        connect(*server.server.address, config)
    server.result().close()


def test_cert_binding_peer_without_evidence_rejected(
    serve: Any, appraiser: SignatureAppraiser
) -> None:
    plain = serve(make_config(Role.RELYING_PARTY, None, None, Binding.NONE), echo_once)
    with pytest.raises(VerificationError) as caught:
        connect(
            *plain.server.address, make_config(Role.RELYING_PARTY, None, appraiser, Binding.CERT)
        )
    assert caught.value.check == "attestation.offered"
    plain.error()


# -- framing ----------------------------------------------------------------------------


def _raw_client_against_attester(serve: Any, attester: SigningAttester) -> tuple[RawPeer, Any]:
    server = serve(make_config(Role.ATTESTER, attester, None), echo_once)
    peer = RawPeer.connect(server.server.address)
    assert peer.read_frame().type is FrameType.HELLO
    return peer, server


def test_malformed_hello_rejected(serve: Any, attester: SigningAttester) -> None:
    peer, server = _raw_client_against_attester(serve, attester)
    peer.send_frame(FrameType.HELLO, b"\x01\x01\x00")
    assert peer.read_error_alert() == AlertDescription.decode_error
    assert isinstance(server.error(), MalformedMessage)
    peer.close()


def test_truncated_request_rejected(serve: Any, attester: SigningAttester) -> None:
    peer, server = _raw_client_against_attester(serve, attester)
    peer.send_frame(FrameType.HELLO, hello(requests=True, offers=False))
    # ClientCertificateRequest announcing 40 body bytes but carrying 3.
    peer.send_frame(FrameType.AUTHENTICATOR_REQUEST, bytes([17, 0, 0, 40, 32, 1, 2]))
    assert peer.read_error_alert() == AlertDescription.decode_error
    error = server.error()
    assert isinstance(error, MalformedMessage)
    assert "truncated" in str(error)
    peer.close()


def test_frame_cut_by_close_rejected(serve: Any, attester: SigningAttester) -> None:
    peer, server = _raw_client_against_attester(serve, attester)
    peer.send(bytes([FrameType.HELLO, 0, 0, 2, 1]))
    peer.close()
    assert isinstance(server.error(), PeerAborted)


def test_oversized_frame_rejected(serve: Any, attester: SigningAttester) -> None:
    peer, server = _raw_client_against_attester(serve, attester)
    peer.send(bytes([FrameType.AUTHENTICATOR_REQUEST, 0xFF, 0xFF, 0xFF]))
    assert peer.read_error_alert() == AlertDescription.record_overflow
    assert isinstance(server.error(), FrameTooLarge)
    peer.close()


def test_frame_out_of_order_rejected(serve: Any, attester: SigningAttester) -> None:
    peer, server = _raw_client_against_attester(serve, attester)
    peer.send_frame(FrameType.DONE, b"")
    assert peer.read_error_alert() == AlertDescription.unexpected_message
    assert isinstance(server.error(), UnexpectedMessage)
    peer.close()


def test_application_data_before_attestation_rejected(
    serve: Any, appraiser: SignatureAppraiser
) -> None:
    server = serve(make_config(Role.RELYING_PARTY, None, appraiser), echo_once)
    peer = RawPeer.connect(server.server.address)
    peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert peer.read_error_alert() == AlertDescription.unexpected_message
    error = server.error()
    assert isinstance(error, UnexpectedMessage)
    assert "application data" in str(error)
    peer.close()


def test_application_data_not_delivered_when_appraisal_fails(
    serve: Any, platform_key: ec.EllipticCurvePrivateKey, appraiser: SignatureAppraiser
) -> None:
    delivered: list[bytes] = []

    def record(connection: Any) -> None:
        delivered.append(connection.recv())

    server = serve(make_config(Role.RELYING_PARTY, None, appraiser), record)
    peer = RawPeer.connect(server.server.address)
    assert peer.read_frame().type is FrameType.HELLO
    request = peer.read_frame()
    peer.send_frame(FrameType.HELLO, hello(requests=False, offers=True))
    cmw = SigningAttester(platform_key).sign(b"\x00" * 32)
    peer.send_frame(
        FrameType.AUTHENTICATOR, peer.authenticator_for(request.body, cmw, sender_is_server=False)
    )
    peer.send_frame(FrameType.DONE, b"")
    peer.send(b"secret application bytes")
    assert peer.read_error_alert() == AlertDescription.bad_certificate
    assert isinstance(server.error(), VerificationError)
    assert delivered == []
    peer.close()


# -- asyncio adapter --------------------------------------------------------------------


async def test_asyncio_client_rejects_wrong_nonce(
    serve: Any, platform_key: ec.EllipticCurvePrivateKey, appraiser: SignatureAppraiser
) -> None:
    from attestnet.tls.aio import open_connection

    server = serve(make_config(Role.ATTESTER, WrongNonceAttester(platform_key), None))
    host, port = server.server.address
    with pytest.raises(VerificationError) as caught:
        await open_connection(host, port, make_config(Role.RELYING_PARTY, None, appraiser))
    assert caught.value.check == "binder"


async def test_asyncio_server_rejects_early_application_data(
    appraiser: SignatureAppraiser,
) -> None:
    import asyncio

    from attestnet.tls.aio import start_server

    failures: list[BaseException] = []
    handled: list[Any] = []

    async def handler(connection: Any) -> None:
        handled.append(connection)

    config = make_config(Role.RELYING_PARTY, None, appraiser)
    server = await start_server(handler, "127.0.0.1", 0, config, on_failure=failures.append)
    port = server.sockets[0].getsockname()[1]
    try:

        def misbehave() -> int:
            peer = RawPeer.connect(("127.0.0.1", port))
            try:
                peer.send(b"GET / HTTP/1.1\r\n\r\n")
                return peer.read_error_alert()
            finally:
                peer.close()

        alert = await asyncio.to_thread(misbehave)
        assert alert == AlertDescription.unexpected_message
        for _ in range(100):  # the server reports after it has closed the connection
            if failures:
                break
            await asyncio.sleep(0.01)
        assert len(failures) == 1
        assert isinstance(failures[0], UnexpectedMessage)
        assert handled == []
    finally:
        server.close()
        await server.wait_closed()


# -- a pure attester sends before the relying party's DONE --------------------------------


def _raw_relying_party(serve: Any, attester: SigningAttester, handler: Any) -> tuple[RawPeer, Any]:
    """Connect a raw relying party to an attesting server; return it after it read the
    server's HELLO, authenticator and DONE, without having sent its own DONE."""
    server = serve(make_config(Role.ATTESTER, attester, None), handler)
    peer = RawPeer.connect(server.server.address)
    peer.send_frame(FrameType.HELLO, hello(requests=True, offers=False))
    request_body = make_authenticator_request(
        CLIENT_CERTIFICATE_REQUEST, b"r" * 32, DEFAULT_CMW_EXTENSION_TYPE
    )[1]
    peer.send_frame(FrameType.AUTHENTICATOR_REQUEST, request_body)
    assert [peer.read_frame().type for _ in range(3)] == [
        FrameType.HELLO,
        FrameType.AUTHENTICATOR,
        FrameType.DONE,
    ]
    return peer, server


def test_pure_attester_sends_application_data_before_peer_done(
    serve: Any, attester: SigningAttester
) -> None:
    def greet_then_echo(connection: Any) -> bytes:
        connection.sendall(b"greeting")
        received = connection.recv()
        connection.close()
        return bytes(received)

    peer, server = _raw_relying_party(serve, attester, greet_then_echo)
    # The greeting arrives although this relying party has not sent DONE: the attester
    # does not wait for it (one round trip less). Holding it back until the appraisal
    # passed is the relying party's job.
    assert peer.frames.take_rest() + peer.read_raw() == b"greeting"
    peer.send_frame(FrameType.DONE, b"")
    peer.send(b"request")
    assert server.result() == b"request"
    peer.close()


def test_pure_attester_read_raises_when_peer_rejects(serve: Any, attester: SigningAttester) -> None:
    def read(connection: Any) -> bytes:
        return bytes(connection.recv())

    peer, server = _raw_relying_party(serve, attester, read)
    peer.send_frame(FrameType.ERROR, encode_error(AlertDescription.bad_certificate, "no"))
    error = server.error()
    assert isinstance(error, PeerAborted)
    assert error.alert is AlertDescription.bad_certificate
    peer.close()


def test_pure_attester_rejects_frame_other_than_done_without_error_frame(
    serve: Any, attester: SigningAttester
) -> None:
    def read(connection: Any) -> bytes:
        return bytes(connection.recv())

    peer, server = _raw_relying_party(serve, attester, read)
    peer.send_frame(FrameType.HELLO, hello(requests=True, offers=False))
    error = server.error()
    assert isinstance(error, UnexpectedMessage)
    # After its DONE every byte the attester sends is application data, so it closes
    # instead of sending an ERROR frame.
    with pytest.raises(EOFError):
        peer.read_frame()
    peer.close()


def test_pure_attester_close_waits_for_peer_and_logs_rejection(
    serve: Any, attester: SigningAttester, caplog: pytest.LogCaptureFixture
) -> None:
    def close_at_once(connection: Any) -> None:
        connection.close()

    peer, server = _raw_relying_party(serve, attester, close_at_once)
    time.sleep(0.2)
    assert not server.future.done()  # close() waits for this side's verdict
    peer.send_frame(FrameType.ERROR, encode_error(AlertDescription.bad_certificate, "no"))
    server.result()
    assert "peer aborted attestation (bad_certificate)" in caplog.text
    peer.close()


def test_relying_party_drops_early_data_of_rejected_attester(
    serve: Any, platform_key: ec.EllipticCurvePrivateKey, appraiser: SignatureAppraiser
) -> None:
    def greet(connection: Any) -> None:
        connection.sendall(b"must never reach the relying party's application")
        with pytest.raises(PeerAborted):
            connection.recv()

    server = serve(make_config(Role.ATTESTER, WrongNonceAttester(platform_key), None), greet)
    with pytest.raises(VerificationError) as caught:
        connect(*server.server.address, make_config(Role.RELYING_PARTY, None, appraiser))
    assert caught.value.check == "binder"
    server.result()
