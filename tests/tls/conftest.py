"""A small real attester and appraiser for the TLS tests, and helpers to run both sides.

The test attester signs CBOR `{"nonce": binder, "measurement": ...}` with an ECDSA
P-256 key generated at run time and wraps it in a CBOR CMW record
`[media type, [payload, signature]]`. The test appraiser verifies the signature and
that the nonce equals the binder the TLS layer recomputed.
"""

from __future__ import annotations

import contextlib
import hmac
import select
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from attestnet.errors import SignatureError, VerificationError
from attestnet.tls import DEFAULT_CMW_EXTENSION_TYPE, AttestedTLSConfig, Binding, Role
from attestnet.tls.authenticator import build_authenticator
from attestnet.tls.blocking import AttestedConnection, AttestedServer, listen
from attestnet.tls.frames import (
    PROTOCOL_VERSION,
    Frame,
    FrameBuffer,
    FrameType,
    Hello,
    decode_error,
    encode_frame,
    encode_hello,
)
from attestnet.tls.identity import Identity, generate_identity
from attestnet.tls.messages import decode_authenticator_request

MEDIA_TYPE = "application/vnd.attestnet.test-evidence+cbor"


class SigningAttester:
    """Signs the binder with a platform key; records every evidence it produced."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, measurement: bytes = b"good") -> None:
        self.key = key
        self.measurement = measurement
        self.produced: list[bytes] = []

    def sign(self, nonce: bytes) -> bytes:
        payload = cbor2.dumps({"nonce": nonce, "measurement": self.measurement})
        signature = self.key.sign(payload, ec.ECDSA(hashes.SHA256()))
        return cbor2.dumps([MEDIA_TYPE, cbor2.dumps([payload, signature])])

    def evidence(self, binder: bytes) -> bytes:
        cmw = self.sign(binder)
        self.produced.append(cmw)
        return cmw


class ReplayingAttester:
    """Returns evidence recorded earlier, whatever binder it is asked for."""

    def __init__(self, recorded: bytes) -> None:
        self.recorded = recorded

    def evidence(self, binder: bytes) -> bytes:
        return self.recorded


class WrongNonceAttester(SigningAttester):
    """Signs a nonce other than the binder."""

    def evidence(self, binder: bytes) -> bytes:
        return self.sign(bytes(b ^ 0xFF for b in binder))


@dataclass(frozen=True)
class SampleResult:
    measurement: bytes
    at: datetime


class SignatureAppraiser:
    """Verifies the test evidence: signature by the platform key, nonce == binder."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self.public_key = public_key

    def appraise(self, evidence: bytes, *, binder: bytes, at: datetime) -> SampleResult:
        media_type, inner = cbor2.loads(evidence)
        assert media_type == MEDIA_TYPE
        payload, signature = cbor2.loads(inner)
        try:
            self.public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise SignatureError("evidence.signature", "test evidence signature") from None
        claims = cbor2.loads(payload)
        if not hmac.compare_digest(claims["nonce"], binder):
            raise VerificationError(
                "binder",
                "evidence nonce is not the binder of this connection",
                claim="nonce",
                expected=binder,
                actual=claims["nonce"],
            )
        return SampleResult(claims["measurement"], at)


@pytest.fixture(scope="session")
def platform_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def attester(platform_key: ec.EllipticCurvePrivateKey) -> SigningAttester:
    return SigningAttester(platform_key)


@pytest.fixture
def appraiser(platform_key: ec.EllipticCurvePrivateKey) -> SignatureAppraiser:
    return SignatureAppraiser(platform_key.public_key())


def make_config(
    role: Role,
    attester: Any,
    appraiser: Any,
    binding: Binding = Binding.EXPAT,
    **overrides: Any,
) -> AttestedTLSConfig:
    """Return a config for `role`, with unattested peers accepted (tests have no CA)."""
    config = AttestedTLSConfig(
        binding=binding,
        role=role,
        attester=attester if role.attests else None,
        appraiser=appraiser if role.appraises else None,
        insecure_unauthenticated_peer=True,
        handshake_timeout=5.0,
    )
    return replace(config, **overrides) if overrides else config


class ServerThread:
    """Runs `AttestedServer.accept` once in a thread and keeps its result or error."""

    def __init__(
        self, server: AttestedServer, handler: Callable[[AttestedConnection], Any] | None = None
    ) -> None:
        self.server = server
        self.future: Future[Any] = Future()
        self._handler = handler
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            connection = self.server.accept(timeout=10)
        except BaseException as error:
            self.future.set_exception(error)
            return
        try:
            if self._handler is not None:
                self.future.set_result(self._handler(connection))
            else:
                self.future.set_result(connection)
        except BaseException as error:
            self.future.set_exception(error)
            connection.close()

    def result(self) -> Any:
        return self.future.result(timeout=15)

    def error(self) -> BaseException | None:
        try:
            self.future.result(timeout=15)
        except BaseException as error:
            return error
        return None


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerThread]]:
    """Start a one-shot attested server on 127.0.0.1 with a free port."""
    servers: list[AttestedServer] = []

    def start(
        config: AttestedTLSConfig, handler: Callable[[AttestedConnection], Any] | None = None
    ) -> ServerThread:
        server = listen("127.0.0.1", 0, config)
        servers.append(server)
        return ServerThread(server, handler)

    yield start
    for server in servers:
        server.close()


def echo_once(connection: AttestedConnection) -> AttestedConnection:
    """Read one chunk and send it back, then return the connection (still open)."""
    data = connection.recv(65536)
    connection.sendall(data)
    return connection


class RawPeer:
    """A hand-driven TLS 1.3 peer that speaks the frame protocol through the library's
    encoders, so a test can send what an honest peer never would."""

    def __init__(self, sock: socket.socket, connection: SSL.Connection, identity: Identity):
        self.sock = sock
        self.connection = connection
        self.identity = identity
        self.frames = FrameBuffer(1 << 24)

    @classmethod
    def connect(cls, address: tuple[str, int], identity: Identity | None = None) -> RawPeer:
        identity = identity or generate_identity("raw-client")
        context = _raw_context(identity)
        sock = socket.create_connection(address, timeout=5)
        connection = SSL.Connection(context, sock)
        connection.set_connect_state()
        _retry(sock, connection.do_handshake)
        return cls(sock, connection, identity)

    @classmethod
    def accept(cls, listener: socket.socket, identity: Identity | None = None) -> RawPeer:
        identity = identity or generate_identity("raw-server")
        client, _ = listener.accept()
        client.settimeout(5)
        connection = SSL.Connection(_raw_context(identity), client)
        connection.set_accept_state()
        _retry(client, connection.do_handshake)
        return cls(client, connection, identity)

    def exporter(self, label: bytes, context: bytes, length: int) -> bytes:
        return bytes(self.connection.export_keying_material(label, length, context))

    def send(self, data: bytes) -> None:
        offset = 0
        while offset < len(data):
            offset += _retry(self.sock, partial(self.connection.send, data[offset:]))

    def send_frame(self, frame_type: FrameType, body: bytes) -> None:
        self.send(encode_frame(frame_type, body))

    def read_frame(self) -> Frame:
        while True:
            frame = self.frames.next_frame()
            if frame is not None:
                return frame
            try:
                data = _retry(self.sock, lambda: self.connection.recv(65536))
            except (SSL.ZeroReturnError, SSL.SysCallError):
                raise EOFError("peer closed the connection") from None
            self.frames.feed(bytes(data))

    def read_raw(self) -> bytes:
        """Return the next bytes read from TLS, bypassing the frame buffer."""
        try:
            return bytes(_retry(self.sock, lambda: self.connection.recv(65536)))
        except (SSL.ZeroReturnError, SSL.SysCallError):
            raise EOFError("peer closed the connection") from None

    def poll_frame(self) -> Frame | None:
        """Return a frame if one is buffered or readable now, else None."""
        frame = self.frames.next_frame()
        if frame is not None:
            return frame
        if self.connection.pending() or select.select([self.sock], [], [], 0)[0]:
            try:
                self.frames.feed(bytes(self.connection.recv(65536)))
            except SSL.WantReadError:
                return None
            except (SSL.ZeroReturnError, SSL.SysCallError):
                raise EOFError("peer closed the connection") from None
            return self.frames.next_frame()
        return None

    def read_error_alert(self) -> int:
        """Read frames until an ERROR frame; return its alert code."""
        while True:
            frame = self.read_frame()
            if frame.type is FrameType.ERROR:
                return decode_error(frame.body)[0]

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        name = self.connection.get_cipher_name() or ""
        return hashes.SHA384() if name.endswith("SHA384") else hashes.SHA256()

    def authenticator_for(
        self, request_body: bytes, cmw: bytes, *, sender_is_server: bool
    ) -> bytes:
        request = decode_authenticator_request(request_body)
        return build_authenticator(
            request=request,
            request_bytes=request_body,
            certificate_chain=tuple(
                c.public_bytes(serialization.Encoding.DER) for c in self.identity.chain
            ),
            private_key=self.identity.key,
            cmw=cmw,
            cmw_extension_type=DEFAULT_CMW_EXTENSION_TYPE,
            exporter=self.exporter,
            sender_is_server=sender_is_server,
            hash_algorithm=self.hash_algorithm(),
        )

    def close(self) -> None:
        with contextlib.suppress(SSL.Error, OSError):
            self.connection.shutdown()
        self.sock.close()


def _retry(sock: socket.socket, operation: Callable[[], Any]) -> Any:
    """Run a pyOpenSSL call on a socket with a timeout, waiting up to 5 s per step."""
    while True:
        try:
            return operation()
        except SSL.WantReadError:
            ready = select.select([sock], [], [], 5)[0]
        except SSL.WantWriteError:
            ready = select.select([], [sock], [], 5)[1]
        if not ready:
            raise TimeoutError("raw peer timed out")


def _raw_context(identity: Identity) -> SSL.Context:
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.use_certificate(identity.chain[0])
    context.use_privatekey(identity.key)
    context.set_verify(SSL.VERIFY_NONE)
    return context


def hello(requests: bool, offers: bool) -> bytes:
    return encode_hello(Hello(PROTOCOL_VERSION, requests, offers))


@pytest.fixture
def raw_listener() -> Iterator[socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    yield listener
    listener.close()


def run_in_thread(function: Callable[[], Any]) -> Future[Any]:
    """Run `function` in a daemon thread; the future contains its result or exception."""
    future: Future[Any] = Future()

    def target() -> None:
        try:
            future.set_result(function())
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=target, daemon=True).start()
    return future
