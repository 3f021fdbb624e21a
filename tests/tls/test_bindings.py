"""Happy paths of the three bindings over real sockets, blocking and asyncio."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from attestnet.tls import Binding, Role, connect
from attestnet.tls.aio import AsyncAttestedConnection, open_connection, start_server
from attestnet.tls.session import TIMING_PHASES
from tests.tls.conftest import (
    SampleResult,
    SignatureAppraiser,
    SigningAttester,
    echo_once,
    make_config,
)

ROLE_PAIRS = [
    pytest.param(Role.ATTESTER, Role.RELYING_PARTY, id="server-attests"),
    pytest.param(Role.RELYING_PARTY, Role.ATTESTER, id="client-attests"),
    pytest.param(Role.MUTUAL, Role.MUTUAL, id="mutual"),
]
ATTESTED_BINDINGS = [Binding.EXPAT, Binding.CERT]


@pytest.mark.parametrize("binding", ATTESTED_BINDINGS)
@pytest.mark.parametrize(("server_role", "client_role"), ROLE_PAIRS)
def test_blocking_attested_echo(
    serve: Any,
    attester: SigningAttester,
    appraiser: SignatureAppraiser,
    binding: Binding,
    server_role: Role,
    client_role: Role,
) -> None:
    server = serve(make_config(server_role, attester, appraiser, binding), echo_once)
    with connect(
        *server.server.address, make_config(client_role, attester, appraiser, binding)
    ) as client:
        client.sendall(b"ping")
        assert client.recv() == b"ping"
        with server.result() as accepted:
            for side, role in ((client, client_role), (accepted, server_role)):
                assert side.binding is binding
                if role.appraises:
                    assert isinstance(side.peer_result, SampleResult)
                    assert side.peer_result.measurement == b"good"
                    assert side.peer_tik is not None
                    assert side.peer_certificate is not None
                else:
                    assert side.peer_result is None
                assert set(side.timings) == set(TIMING_PHASES)
                assert side.timings["tls_handshake"] > 0


def test_blocking_expat_server_tik_is_handshake_key(
    serve: Any, attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    server = serve(make_config(Role.ATTESTER, attester, appraiser), echo_once)
    with connect(
        *server.server.address, make_config(Role.RELYING_PARTY, attester, appraiser)
    ) as client:
        handshake_certificate = client.tls.get_peer_certificate(as_cryptography=True)
        assert client.peer_certificate == handshake_certificate
        client.sendall(b"x")
        assert client.recv() == b"x"
        server.result().close()


def test_blocking_none_binding(serve: Any) -> None:
    config = make_config(Role.RELYING_PARTY, None, None, Binding.NONE)
    server = serve(config, echo_once)
    with connect(*server.server.address, config) as client:
        client.sendall(b"plain")
        assert client.recv() == b"plain"
        assert client.peer_result is None
        assert client.tls.get_protocol_version_name() == "TLSv1.3"
        server.result().close()


@pytest.mark.parametrize("suite", ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"])
def test_blocking_expat_both_authenticator_hashes(
    serve: Any, attester: SigningAttester, appraiser: SignatureAppraiser, suite: str
) -> None:
    server_config = make_config(Role.MUTUAL, attester, appraiser, tls13_ciphersuites=suite)
    server = serve(server_config, echo_once)
    client_config = make_config(Role.MUTUAL, attester, appraiser, tls13_ciphersuites=suite)
    with connect(*server.server.address, client_config) as client:
        assert client.tls.get_cipher_name() == suite
        client.sendall(b"y")
        assert client.recv() == b"y"
        assert client.peer_result is not None
        server.result().close()


def test_blocking_expat_alternative_label_and_code_point(
    serve: Any, attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    overrides = {"exporter_label": b"Attestation Binding", "cmw_extension_type": 0xFF42}
    server = serve(make_config(Role.ATTESTER, attester, appraiser, **overrides), echo_once)
    client_config = make_config(Role.RELYING_PARTY, attester, appraiser, **overrides)
    with connect(*server.server.address, client_config) as client:
        client.sendall(b"z")
        assert client.recv() == b"z"
        server.result().close()


async def _async_echo(connection: AsyncAttestedConnection) -> None:
    data = await connection.read()
    await connection.write(data)
    await connection.close()


@pytest.mark.parametrize("binding", [*ATTESTED_BINDINGS, Binding.NONE])
@pytest.mark.parametrize(("server_role", "client_role"), ROLE_PAIRS)
async def test_asyncio_attested_echo(
    attester: SigningAttester,
    appraiser: SignatureAppraiser,
    binding: Binding,
    server_role: Role,
    client_role: Role,
) -> None:
    results: list[Any] = []

    async def handler(connection: AsyncAttestedConnection) -> None:
        results.append(connection.peer_result)
        await _async_echo(connection)

    server_config = make_config(server_role, attester, appraiser, binding)
    server = await start_server(handler, "127.0.0.1", 0, server_config)
    port = server.sockets[0].getsockname()[1]
    try:
        client_config = make_config(client_role, attester, appraiser, binding)
        client = await open_connection("127.0.0.1", port, client_config)
        await client.write(b"async ping")
        assert await client.read() == b"async ping"
        assert set(client.timings) == set(TIMING_PHASES)
        if binding is not Binding.NONE and client_role.appraises:
            assert isinstance(client.peer_result, SampleResult)
        else:
            assert client.peer_result is None
        await client.close()
        await asyncio.sleep(0)
        if binding is not Binding.NONE and server_role.appraises:
            assert isinstance(results[0], SampleResult)
    finally:
        server.close()
        await server.wait_closed()


async def test_asyncio_client_against_blocking_server(
    serve: Any, attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    server = serve(make_config(Role.MUTUAL, attester, appraiser), echo_once)
    host, port = server.server.address
    client = await open_connection(host, port, make_config(Role.MUTUAL, attester, appraiser))
    await client.write(b"mixed")
    assert await client.read() == b"mixed"
    assert isinstance(client.peer_result, SampleResult)
    await client.close()
    accepted = await asyncio.to_thread(server.result)
    assert isinstance(accepted.peer_result, SampleResult)
    accepted.close()
