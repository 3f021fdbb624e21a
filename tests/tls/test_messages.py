"""RFC 9261 message codec, frames and the sans-IO session wired in memory."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from attestnet.errors import ConfigError
from attestnet.tls import AttestedTLSConfig, Binding, MalformedMessage, Role, generate_identity
from attestnet.tls.authenticator import make_authenticator_request
from attestnet.tls.errors import FrameTooLarge
from attestnet.tls.frames import FrameBuffer, FrameType, encode_frame
from attestnet.tls.identity import decode_cmw_extension, encode_cmw_extension
from attestnet.tls.messages import (
    CERTIFICATE_REQUEST,
    CertificateEntry,
    CertificateMessage,
    Extension,
    decode_authenticator,
    decode_authenticator_request,
    decode_certificate,
    encode_certificate,
)
from attestnet.tls.session import AttestationSession, ReceiveState
from tests.tls.conftest import SignatureAppraiser, SigningAttester

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_request_round_trip() -> None:
    request, encoded = make_authenticator_request(CERTIFICATE_REQUEST, b"c" * 32, 0xFFCA)
    assert decode_authenticator_request(encoded) == request
    assert encoded[0] == CERTIFICATE_REQUEST
    assert int.from_bytes(encoded[1:4], "big") == len(encoded) - 4


def test_request_trailing_bytes_rejected() -> None:
    _, encoded = make_authenticator_request(CERTIFICATE_REQUEST, b"c" * 32, 0xFFCA)
    with pytest.raises(MalformedMessage):
        decode_authenticator_request(encoded + b"\x00")


def test_request_duplicate_extension_rejected() -> None:
    body = bytes([1, 0x41]) + (8).to_bytes(2, "big") + bytes([0xFF, 0xCA, 0, 0]) * 2
    message = bytes([CERTIFICATE_REQUEST]) + len(body).to_bytes(3, "big") + body
    with pytest.raises(MalformedMessage, match="twice"):
        decode_authenticator_request(message)


def test_certificate_round_trip() -> None:
    message = CertificateMessage(
        b"ctx", (CertificateEntry(b"\x30\x00", (Extension(0xFFCA, b"\x00\x01x"),)),)
    )
    encoded = encode_certificate(message)
    assert decode_certificate(encoded[4:]) == message


def test_authenticator_wrong_message_order_rejected() -> None:
    certificate = encode_certificate(CertificateMessage(b"", ()))
    with pytest.raises(MalformedMessage, match="expected Certificate"):
        decode_authenticator(certificate + certificate)


def test_frame_buffer_waits_for_whole_frame() -> None:
    buffer = FrameBuffer(1024)
    frame = encode_frame(FrameType.HELLO, b"\x01\x03")
    buffer.feed(frame[:3])
    assert buffer.next_frame() is None
    buffer.feed(frame[3:])
    parsed = buffer.next_frame()
    assert parsed is not None
    assert parsed.type is FrameType.HELLO
    assert parsed.body == b"\x01\x03"


def test_frame_buffer_rejects_oversized_header() -> None:
    buffer = FrameBuffer(1024)
    buffer.feed(bytes([FrameType.AUTHENTICATOR, 0, 4, 1]))
    with pytest.raises(FrameTooLarge):
        buffer.next_frame()


@pytest.mark.parametrize("cmw", [b"\x82\x01\x02", b'["application/eat+jwt","x"]', b"x" * 300])
def test_cmw_extension_round_trip(cmw: bytes) -> None:
    assert decode_cmw_extension(encode_cmw_extension(cmw)) == cmw


def _exporter(secret: bytes):  # type: ignore[no-untyped-def]
    """A keyed stand-in for the TLS exporter of one connection, shared by both sides."""

    def export(label: bytes, context: bytes, length: int) -> bytes:
        return hmac.new(secret, label + b"|" + context, hashlib.sha512).digest()[:length]

    return export


def _session(is_server: bool, role: Role, exporter, attester, appraiser) -> AttestationSession:  # type: ignore[no-untyped-def]
    identity = generate_identity("mem")
    return AttestationSession(
        is_server=is_server,
        requests_attestation=role.appraises,
        offers_attestation=role.attests,
        exporter=exporter,
        hash_algorithm=hashes.SHA256(),
        attester=attester if role.attests else None,
        appraiser=appraiser if role.appraises else None,
        certificate_chain=(identity.chain[0].public_bytes(serialization.Encoding.DER),),
        private_key=identity.key,
        exporter_label=b"Attestation",
        exporter_length=32,
        cmw_extension_type=0xFFCA,
        max_frame_size=1 << 16,
    )


def test_sessions_in_memory_mutual(
    attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    exporter = _exporter(b"shared connection secret")
    server = _session(True, Role.MUTUAL, exporter, attester, appraiser)
    client = _session(False, Role.MUTUAL, exporter, attester, appraiser)
    server.start()
    client.start()
    for _ in range(4):
        client.receive_data(server.data_to_send(), NOW)
        server.receive_data(client.data_to_send(), NOW)
    assert server.complete
    assert client.complete
    assert server.peer_result is not None
    assert client.peer_result is not None
    assert server.state is ReceiveState.APPLICATION_DATA


def test_sessions_with_different_exporters_fail(
    attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    server = _session(True, Role.ATTESTER, _exporter(b"one"), attester, appraiser)
    client = _session(False, Role.RELYING_PARTY, _exporter(b"two"), attester, appraiser)
    server.start()
    client.start()
    server.receive_data(client.data_to_send(), NOW)
    with pytest.raises(Exception) as caught:
        client.receive_data(server.data_to_send(), NOW)
    assert getattr(caught.value, "check", None) == "authenticator.certificate_verify"
    assert client.state is ReceiveState.FAILED
    assert client.data_to_send()[0] == FrameType.ERROR


def test_config_requires_attester_for_attesting_role() -> None:
    with pytest.raises(ConfigError, match="attester"):
        AttestedTLSConfig(role=Role.ATTESTER, insecure_unauthenticated_peer=True)


def test_config_none_binding_needs_explicit_insecure() -> None:
    with pytest.raises(ConfigError, match="insecure_unauthenticated_peer"):
        AttestedTLSConfig(binding=Binding.NONE)


def test_pure_attester_ready_before_peer_done(
    attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    exporter = _exporter(b"shared connection secret")
    server = _session(True, Role.ATTESTER, exporter, attester, appraiser)
    client = _session(False, Role.RELYING_PARTY, exporter, attester, appraiser)
    server.start()
    client.start()
    server.receive_data(client.data_to_send(), NOW)
    # The attester has sent its authenticator and DONE: it may send, although the
    # relying party's verdict (its DONE) has not arrived.
    assert server.ready
    assert not server.complete
    client.receive_data(server.data_to_send() + b"early application data", NOW)
    # The relying party became ready only by appraising, and hands the early data over
    # only now.
    assert client.ready
    assert client.complete
    assert client.peer_result is not None
    assert client.take_application_data() == b"early application data"
    assert server.take_application_data() == b""
    server.receive_data(client.data_to_send() + b"reply", NOW)
    assert server.complete
    assert server.take_application_data() == b"reply"


def test_relying_party_not_ready_before_appraisal(
    attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    exporter = _exporter(b"shared connection secret")
    server = _session(True, Role.ATTESTER, exporter, attester, appraiser)
    client = _session(False, Role.RELYING_PARTY, exporter, attester, appraiser)
    server.start()
    client.start()
    server.receive_data(client.data_to_send(), NOW)
    outgoing = server.data_to_send()
    authenticator_end = len(outgoing) - 4  # the DONE frame is 4 bytes
    client.receive_data(outgoing[:authenticator_end], NOW)
    assert client.peer_result is not None
    # Appraised, and its DONE queued, but the peer's DONE is still missing.
    assert not client.ready
    assert client.take_application_data() == b""
    client.receive_data(outgoing[authenticator_end:], NOW)
    assert client.ready


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\x04\x81\x05" + b"\x82\x01\x02\x03\x04", "shortest form"),
        (b"\x04\x82\x00\x05" + b"\x82\x01\x02\x03\x04", "shortest form"),
        (b"\x0c\x03\x82\x01\x02", "must carry a JSON CMW"),
        (b"\x04\x02[]", "must be a UTF8String"),
        (b"\x0c\x03[\xff]", "not valid UTF-8"),
        (b"\x04\x06\x82\x01", "does not match"),
    ],
)
def test_cmw_extension_rejects_non_der(value: bytes, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        decode_cmw_extension(value)
