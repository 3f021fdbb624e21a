"""asyncio adapter: attested TLS over asyncio streams with a pyOpenSSL memory BIO.

NOTE: the attester's `evidence` and the appraiser's `appraise` are called in the
event loop's thread, so a slow appraisal blocks the loop for its duration.

As in the blocking adapter, a side that only attests returns once it has sent its
authenticator and DONE; its first `read` reads the peer's DONE, within the handshake
timeout, and raises `PeerAborted` if the peer rejected it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

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

__all__ = ["AsyncAttestedConnection", "open_connection", "start_server"]

logger = logging.getLogger(__name__)

_READ_SIZE = 65536


class _Pump:
    """Moves TLS records between a memory-BIO Connection and asyncio streams."""

    def __init__(
        self,
        connection: SSL.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.connection = connection
        self.reader = reader
        self.writer = writer

    async def flush(self) -> None:
        chunks = []
        while True:
            try:
                chunks.append(self.connection.bio_read(_READ_SIZE))
            except SSL.WantReadError:
                break
        if chunks:
            self.writer.write(b"".join(chunks))
            await self.writer.drain()

    async def fill(self) -> bool:
        data = await self.reader.read(_READ_SIZE)
        if not data:
            self.connection.bio_shutdown()
            return False
        self.connection.bio_write(data)
        return True

    async def handshake(self) -> None:
        while True:
            try:
                self.connection.do_handshake()
            except SSL.WantReadError:
                await self.flush()
                if not await self.fill():
                    raise PeerAborted(
                        0, "peer closed the connection during the handshake"
                    ) from None
                continue
            await self.flush()
            return

    async def recv(self) -> bytes:
        """Return decrypted bytes; b"" at the end of the stream."""
        while True:
            try:
                return bytes(self.connection.recv(_READ_SIZE))
            except SSL.WantReadError:
                await self.flush()
                if not await self.fill():
                    with contextlib.suppress(SSL.Error):
                        return bytes(self.connection.recv(_READ_SIZE))
                    return b""
            except (SSL.ZeroReturnError, SSL.SysCallError):
                return b""

    async def send(self, data: bytes) -> None:
        if data:
            self.connection.sendall(data)
        await self.flush()

    async def close(self) -> None:
        with contextlib.suppress(SSL.Error):
            self.connection.shutdown()
        with contextlib.suppress(OSError, ConnectionError):
            await self.flush()
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()


class AsyncAttestedConnection(AttestationView):
    """An attested TLS 1.3 connection for asyncio; see `AttestedConnection` for the fields."""

    def __init__(
        self,
        pump: _Pump,
        info: AttestationInfo,
        pending: bytes,
        connection_id: str,
        unfinished: _UnfinishedSession | None = None,
    ) -> None:
        self._pump = pump
        self.info = info
        self._pending = bytearray(pending)
        self.connection_id = connection_id
        self._unfinished = unfinished

    def export_keying_material(self, label: bytes, length: int, context: bytes = b"") -> bytes:
        return exporter_for(self._pump.connection)(label, context, length)

    async def read(self, size: int = _READ_SIZE) -> bytes:
        """Return up to `size` bytes of application data; b"" at the end of the stream.

        On a side that only attests, the first call first reads the peer's DONE and
        raises `PeerAborted` (closing the connection) if the peer rejected this side.
        """
        if self._unfinished is not None:
            await self._finish_attestation(self._unfinished)
        if not self._pending:
            self._pending += await self._pump.recv()
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    async def _finish_attestation(self, unfinished: _UnfinishedSession) -> None:
        """Read the peer's DONE; on any failure close the connection and raise."""
        self._unfinished = None
        session = unfinished.session
        try:
            async with asyncio.timeout_at(unfinished.deadline):
                while not session.complete:
                    data = await self._pump.recv()
                    if not data:
                        raise PeerAborted(0, "peer closed the connection during attestation")
                    session.receive_data(data, unfinished.clock())
        except TimeoutError:
            error = AttestationTimeout(
                "the peer's DONE did not arrive within the handshake timeout"
            )
            session.fail(error)
            await self._pump.close()
            raise error from None
        except BaseException as error:
            session.fail(error)
            await self._pump.close()
            raise
        self._pending += session.take_application_data()

    async def write(self, data: bytes) -> None:
        """Encrypt and send `data`, waiting until the transport has taken it."""
        await self._pump.send(data)

    async def close(self) -> None:
        """Close with close_notify; see `AttestedConnection.close` for a pure attester."""
        if self._unfinished is not None:
            try:
                await self._finish_attestation(self._unfinished)
            except (AttestationProtocolError, SSL.Error, OSError) as error:
                logger.warning("connection %s: %s", self.connection_id, error)
                return
        await self._pump.close()


@dataclass(frozen=True)
class _UnfinishedSession:
    """A session whose side may send but has not read the peer's DONE yet."""

    session: AttestationSession
    deadline: float
    """In the event loop's clock."""
    clock: Callable[[], datetime]


async def _run_session(
    pump: _Pump,
    config: AttestedTLSConfig,
    identity: Identity | None,
    *,
    is_server: bool,
    connection_id: str,
    info: AttestationInfo,
) -> tuple[bytes, AttestationSession]:
    session = new_session(
        pump.connection, config, identity, is_server=is_server, connection_id=connection_id
    )
    started = time.perf_counter()
    session.start()
    try:
        await pump.send(session.data_to_send())
        while not session.ready:
            data = await pump.recv()
            if not data:
                raise PeerAborted(0, "peer closed the connection during attestation")
            try:
                session.receive_data(data, config.clock())
            finally:
                outgoing = session.data_to_send()
                if outgoing:
                    with contextlib.suppress(OSError, ConnectionError, SSL.Error):
                        await pump.send(outgoing)
    except asyncio.CancelledError:
        session.fail(AttestationTimeout("attestation did not finish within the handshake timeout"))
        with contextlib.suppress(OSError, ConnectionError, SSL.Error):
            await pump.send(session.data_to_send())
        raise
    finish_session_info(info, session, time.perf_counter() - started)
    return session.take_application_data(), session


async def _establish(
    pump: _Pump,
    config: AttestedTLSConfig,
    identity: Identity | None,
    info: AttestationInfo,
    *,
    is_server: bool,
    connection_id: str,
) -> AsyncAttestedConnection:
    deadline = asyncio.get_running_loop().time() + config.handshake_timeout
    unfinished = None
    try:
        async with asyncio.timeout_at(deadline):
            started = time.perf_counter()
            await pump.handshake()
            info.timings["tls_handshake"] = time.perf_counter() - started
            check_handshake(pump.connection)
            pending = b""
            if config.binding is Binding.CERT and config.role.appraises:
                appraise_cert_binding(pump.connection, config, info)
            elif config.binding is Binding.EXPAT:
                pending, session = await _run_session(
                    pump,
                    config,
                    identity,
                    is_server=is_server,
                    connection_id=connection_id,
                    info=info,
                )
                if not session.complete:
                    unfinished = _UnfinishedSession(session, deadline, config.clock)
    except TimeoutError:
        await pump.close()
        raise AttestationTimeout(
            "TLS handshake and attestation did not finish within the handshake timeout"
        ) from None
    except BaseException:
        await pump.close()
        raise
    logger.info("connection %s attested (%s)", connection_id, config.binding)
    return AsyncAttestedConnection(pump, info, pending, connection_id, unfinished)


async def open_connection(
    host: str, port: int, config: AttestedTLSConfig, *, server_hostname: str | None = None
) -> AsyncAttestedConnection:
    """Connect, run the TLS 1.3 handshake and the configured attestation, and return."""
    connection_id = next_connection_id("aclient")
    info = AttestationInfo(config.binding)
    identity = client_identity(config, info)
    connection = SSL.Connection(client_context(config, identity), None)
    if identity is not None and client_presents(config):
        use_identity(connection, identity)
    if server_hostname is not None:
        connection.set_tlsext_host_name(server_hostname.encode("idna"))
    connection.set_connect_state()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port), config.handshake_timeout
    )
    return await _establish(
        _Pump(connection, reader, writer),
        config,
        identity,
        info,
        is_server=False,
        connection_id=connection_id,
    )


async def start_server(
    handler: Callable[[AsyncAttestedConnection], Awaitable[None]],
    host: str,
    port: int,
    config: AttestedTLSConfig,
    *,
    on_failure: Callable[[BaseException], None] | None = None,
) -> asyncio.Server:
    """Serve attested connections; `handler` runs only for clients that attested.

    A client that fails is logged, closed, and passed to `on_failure` when given.
    The handler owns the connection and should close it.
    """
    shared_identity = local_identity(config)
    context = make_context(config, is_server=True)
    if shared_identity is not None:
        use_identity(context, shared_identity)
        add_chain(context, shared_identity)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection_id = next_connection_id("aserver")
        info = AttestationInfo(config.binding)
        try:
            identity = shared_identity
            connection = SSL.Connection(context, None)
            if identity is None:
                identity = cert_binding_identity(config, info)
                use_identity(connection, identity)
            connection.set_accept_state()
            attested = await _establish(
                _Pump(connection, reader, writer),
                config,
                identity,
                info,
                is_server=True,
                connection_id=connection_id,
            )
        except Exception as error:
            logger.warning("connection %s rejected: %s", connection_id, error)
            writer.close()
            if on_failure is not None:
                on_failure(error)
            return
        await handler(attested)

    return await asyncio.start_server(on_client, host, port)
