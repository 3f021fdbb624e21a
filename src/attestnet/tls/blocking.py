"""Blocking adapter: attested TLS over sockets with a socket-backed pyOpenSSL Connection.

The socket is non-blocking, with waits through `select`, until the handshake and the
attestation exchange are done within `config.handshake_timeout`. After that it is
blocking, so application data moves at pyOpenSSL's socket speed.

A side that only attests returns as soon as it has sent its authenticator and DONE
(see `AttestationSession.ready`). Its first `recv` then reads the peer's DONE, still
within the handshake deadline, and raises `PeerAborted` if the peer rejected it.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import TypeVar

from OpenSSL import SSL

from attestnet.tls._establish import (
    AttestationInfo,
    AttestationView,
    add_chain,
    appraise_cert_binding,
    cert_binding_identity,
    check_handshake,
    client_context,
    client_identity,
    client_presents,
    exporter_for,
    finish_session_info,
    local_identity,
    make_context,
    new_session,
    next_connection_id,
    use_identity,
)
from attestnet.tls.config import AttestedTLSConfig, Binding
from attestnet.tls.errors import AttestationProtocolError, AttestationTimeout, PeerAborted
from attestnet.tls.identity import Identity
from attestnet.tls.session import AttestationSession

__all__ = ["AttestedConnection", "AttestedServer", "connect", "listen"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_READ_SIZE = 65536
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)


class AttestedConnection(AttestationView):
    """A TLS 1.3 connection whose peer has been appraised as the configuration requires.

    `peer_result`, `peer_certificate`, `peer_tik`, `binding` and `timings` describe
    the attestation; `recv`, `sendall` and `close` move application data.
    """

    def __init__(
        self,
        sock: socket.socket,
        connection: SSL.Connection,
        info: AttestationInfo,
        pending: bytes,
        connection_id: str,
        unfinished: _UnfinishedSession | None = None,
    ) -> None:
        self._sock = sock
        self._connection = connection
        self.info = info
        self._pending = bytearray(pending)
        self.connection_id = connection_id
        self._unfinished = unfinished

    @property
    def tls(self) -> SSL.Connection:
        """The underlying pyOpenSSL connection."""
        return self._connection

    def export_keying_material(self, label: bytes, length: int, context: bytes = b"") -> bytes:
        """Return TLS-Exporter(label, context, length) of this connection."""
        return exporter_for(self._connection)(label, context, length)

    def recv(self, size: int = _READ_SIZE) -> bytes:
        """Return up to `size` bytes of application data; b"" at the end of the stream.

        On a side that only attests, the first call first reads the peer's DONE and
        raises `PeerAborted` (closing the connection) if the peer rejected this side.
        """
        if self._unfinished is not None:
            self._finish_attestation(self._unfinished)
        if self._pending:
            data = bytes(self._pending[:size])
            del self._pending[:size]
            return data
        try:
            return bytes(self._connection.recv(size))
        except (SSL.ZeroReturnError, SSL.SysCallError):
            return b""

    def _finish_attestation(self, unfinished: _UnfinishedSession) -> None:
        """Read the peer's DONE; on any failure close the connection and raise."""
        self._unfinished = None
        session = unfinished.session
        self._sock.setblocking(False)
        try:
            while not session.complete:
                data = _receive(self._connection, self._sock, unfinished.deadline)
                session.receive_data(data, unfinished.clock())
        except BaseException as error:
            session.fail(error)
            _abort(self._connection, self._sock)
            raise
        self._sock.setblocking(True)
        self._pending += session.take_application_data()

    def sendall(self, data: bytes) -> None:
        self._connection.sendall(data)

    def close(self) -> None:
        """Close with close_notify.

        On a side that only attests and has not read the peer's DONE yet, first wait
        for it (within the handshake deadline), so that a rejection by the peer is
        logged and the peer's DONE does not meet a closed socket (a TCP reset).
        """
        if self._unfinished is not None:
            try:
                self._finish_attestation(self._unfinished)
            except (AttestationProtocolError, SSL.Error, OSError) as error:
                logger.warning("connection %s: %s", self.connection_id, error)
                return
        _abort(self._connection, self._sock)

    def __enter__(self) -> AttestedConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class _UnfinishedSession:
    """A session whose side may send but has not read the peer's DONE yet."""

    session: AttestationSession
    deadline: float
    clock: Callable[[], datetime]


def _wait(sock: socket.socket, deadline: float, *, for_read: bool, what: str) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise AttestationTimeout(f"{what} did not finish within the handshake timeout")
    # poll, not select: select cannot watch descriptors numbered 1024 or more, which
    # a busy agent or verifier process reaches.
    poller = select.poll()
    poller.register(sock, select.POLLIN if for_read else select.POLLOUT)
    if not poller.poll(remaining * 1000):
        raise AttestationTimeout(f"{what} did not finish within the handshake timeout")


def _retry(sock: socket.socket, deadline: float, what: str, operation: Callable[[], _T]) -> _T:
    while True:
        try:
            return operation()
        except SSL.WantReadError:
            _wait(sock, deadline, for_read=True, what=what)
        except SSL.WantWriteError:
            _wait(sock, deadline, for_read=False, what=what)


def _send_all(
    connection: SSL.Connection, sock: socket.socket, data: bytes, deadline: float
) -> None:
    offset = 0
    while offset < len(data):
        offset += _retry(
            sock, deadline, "sending attestation", partial(connection.send, data[offset:])
        )


def _receive(connection: SSL.Connection, sock: socket.socket, deadline: float) -> bytes:
    try:
        return bytes(_retry(sock, deadline, "attestation", lambda: connection.recv(_READ_SIZE)))
    except (SSL.ZeroReturnError, SSL.SysCallError):
        raise PeerAborted(0, "peer closed the connection during attestation") from None


def _receive_if_available(connection: SSL.Connection) -> bytes:
    """Return what the peer has sent already, without waiting; b"" if nothing."""
    try:
        return bytes(connection.recv(_READ_SIZE))
    except (SSL.WantReadError, SSL.WantWriteError):
        return b""
    except (SSL.ZeroReturnError, SSL.SysCallError):
        raise PeerAborted(0, "peer closed the connection during attestation") from None


def _handshake(
    connection: SSL.Connection, sock: socket.socket, deadline: float, *, cork: bool
) -> None:
    """Run the TLS handshake; with `cork`, leave the socket corked after the first flight.

    A TLS 1.3 client's last flight is its Finished, and on expat its HELLO and request
    follow at once. Corked (Linux TCP_CORK), they leave in one segment once
    `_uncork` is called, so the server reads them with one wake-up.
    """
    corked = False
    while True:
        try:
            connection.do_handshake()
            return
        except SSL.WantReadError:
            if cork and not corked and _TCP_CORK is not None:
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1)
                corked = True
            _wait(sock, deadline, for_read=True, what="TLS handshake")
        except SSL.WantWriteError:
            _wait(sock, deadline, for_read=False, what="TLS handshake")


def _uncork(sock: socket.socket) -> None:
    if _TCP_CORK is not None:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 0)


def _run_session(
    connection: SSL.Connection,
    sock: socket.socket,
    session: AttestationSession,
    config: AttestedTLSConfig,
    deadline: float,
    *,
    is_server: bool,
    corked: bool,
) -> bytes:
    session.start()
    # A TLS client sends its HELLO and request right behind its Finished, so the
    # server usually has them already: sending the responses in the same write as its own
    # HELLO saves the peer a wake-up. A client skips the read: the server responds
    # only after the client's Finished, and the loop below reads whatever comes.
    data = _receive_if_available(connection) if is_server else b""
    while True:
        if data:
            try:
                session.receive_data(data, config.clock())
            except BaseException:
                # The ERROR frame is a courtesy: the peer may have gone already, and
                # this side's error is the one to report.
                _best_effort_send(connection, session.data_to_send())
                raise
        outgoing = session.data_to_send()
        if outgoing:
            _send_all(connection, sock, outgoing, deadline)
        if corked:
            _uncork(sock)
            corked = False
        if session.ready:
            return session.take_application_data()
        data = _receive(connection, sock, deadline)


def _establish(
    sock: socket.socket,
    connection: SSL.Connection,
    config: AttestedTLSConfig,
    identity: Identity | None,
    info: AttestationInfo,
    *,
    is_server: bool,
    connection_id: str,
) -> AttestedConnection:
    deadline = time.monotonic() + config.handshake_timeout
    sock.setblocking(False)
    # The client corks its Finished so that the first frames travel with it.
    cork = not is_server and config.binding is Binding.EXPAT and _TCP_CORK is not None
    try:
        started = time.perf_counter()
        try:
            _handshake(connection, sock, deadline, cork=cork)
            info.timings["tls_handshake"] = time.perf_counter() - started
            check_handshake(connection)
        except BaseException:
            if cork:
                _uncork(sock)
            raise
        pending = b""
        unfinished = None
        if config.binding is Binding.CERT and config.role.appraises:
            appraise_cert_binding(connection, config, info)
        elif config.binding is Binding.EXPAT:
            session = new_session(
                connection, config, identity, is_server=is_server, connection_id=connection_id
            )
            started = time.perf_counter()
            try:
                pending = _run_session(
                    connection, sock, session, config, deadline, is_server=is_server, corked=cork
                )
            except AttestationTimeout as error:
                session.fail(error)
                _best_effort_send(connection, session.data_to_send())
                raise
            finish_session_info(info, session, time.perf_counter() - started)
            if not session.complete:
                unfinished = _UnfinishedSession(session, deadline, config.clock)
    except BaseException:
        _abort(connection, sock)
        raise
    sock.setblocking(True)
    logger.info("connection %s attested (%s)", connection_id, config.binding)
    return AttestedConnection(sock, connection, info, pending, connection_id, unfinished)


def _best_effort_send(connection: SSL.Connection, data: bytes) -> None:
    if not data:
        return
    with contextlib.suppress(SSL.Error, OSError):
        connection.send(data)


def _abort(connection: SSL.Connection, sock: socket.socket) -> None:
    with contextlib.suppress(SSL.Error):
        connection.shutdown()
    sock.close()


def connect(
    host: str, port: int, config: AttestedTLSConfig, *, server_hostname: str | None = None
) -> AttestedConnection:
    """Connect, run the TLS 1.3 handshake and the configured attestation, and return.

    Raises AttestationProtocolError subclasses, VerificationError (naming the failed
    check) or OpenSSL.SSL.Error; the connection is closed in every case.
    """
    connection_id = next_connection_id("client")
    info = AttestationInfo(config.binding)
    identity = client_identity(config, info)
    context = client_context(config, identity)
    sock = socket.create_connection((host, port), timeout=config.handshake_timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection = SSL.Connection(context, sock)
    if identity is not None and client_presents(config):
        use_identity(connection, identity)
    if server_hostname is not None:
        connection.set_tlsext_host_name(server_hostname.encode("idna"))
    connection.set_connect_state()
    return _establish(
        sock, connection, config, identity, info, is_server=False, connection_id=connection_id
    )


class AttestedServer:
    """A listening socket whose `accept` returns attested connections."""

    def __init__(self, sock: socket.socket, config: AttestedTLSConfig) -> None:
        self._sock = sock
        self.config = config
        self._identity = local_identity(config)
        self._context = make_context(config, is_server=True)
        if self._identity is not None:
            # Once on the context, not per connection: pyOpenSSL converts the key and
            # certificate through DER on every call.
            use_identity(self._context, self._identity)
            add_chain(self._context, self._identity)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def accept(self, timeout: float | None = None) -> AttestedConnection:
        """Accept one client and attest it; raise (and close it) on any failure.

        The handshake runs in the calling thread, so a slow client delays the next
        accept by up to `handshake_timeout`. A server with many clients calls
        `accept_socket` in one thread and `establish` in a worker per client.
        """
        return self.establish(self.accept_socket(timeout))

    def accept_socket(self, timeout: float | None = None) -> socket.socket:
        """Accept one TCP connection without starting TLS on it."""
        self._sock.settimeout(timeout)
        client, _ = self._sock.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client

    def establish(self, client: socket.socket) -> AttestedConnection:
        """Run TLS and the attestation on an accepted socket; close it on any failure."""
        connection_id = next_connection_id("server")
        info = AttestationInfo(self.config.binding)
        identity = self._identity
        try:
            connection = SSL.Connection(self._context, client)
            if identity is None:
                identity = cert_binding_identity(self.config, info)
                use_identity(connection, identity)
            connection.set_accept_state()
        except BaseException:
            client.close()
            raise
        return _establish(
            client,
            connection,
            self.config,
            identity,
            info,
            is_server=True,
            connection_id=connection_id,
        )

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> AttestedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def listen(host: str, port: int, config: AttestedTLSConfig, backlog: int = 16) -> AttestedServer:
    """Bind and listen on (host, port); port 0 picks a free port (see `address`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog)
    return AttestedServer(sock, config)
