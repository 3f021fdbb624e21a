"""A small real attester and appraiser for the TLS tests, and helpers to run both sides.

The test attester signs CBOR `{"nonce": binder, "measurement": ...}` with an ECDSA
P-256 key generated at run time and wraps it in a CBOR CMW record
`[media type, [payload, signature]]`. The test appraiser verifies the signature and
that the nonce equals the binder the TLS layer recomputed.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.errors import SignatureError, VerificationError
from attestnet.tls import AttestedTLSConfig, Binding, Role
from attestnet.tls.blocking import AttestedConnection, AttestedServer, listen

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
class TestResult:
    measurement: bytes
    at: datetime


class SignatureAppraiser:
    """Verifies the test evidence: signature by the platform key, nonce == binder."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self.public_key = public_key

    def appraise(self, evidence: bytes, *, binder: bytes, at: datetime) -> TestResult:
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
        return TestResult(claims["measurement"], at)


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
