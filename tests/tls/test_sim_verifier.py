"""Attested TLS with the real sim attester and the in-process Verifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from attestnet.appraisal import Policy, Verifier
from attestnet.appraisal.verifier import AppraisalResult
from attestnet.attesters.sim import SimAttester
from attestnet.errors import VerificationError
from attestnet.evidence.model import TrustAnchors
from attestnet.tls import Binding, PeerAborted, Role, connect
from attestnet.tls.aio import open_connection
from tests.tls.conftest import ReplayingAttester, echo_once, make_config


@pytest.fixture
def sim(tmp_path: Path) -> SimAttester:
    return SimAttester.from_files(tmp_path / "platform.pem", config=b"role = 'dpu'\n")


@pytest.fixture
def verifier(sim: SimAttester) -> Verifier:
    policy = Policy(
        id="tls-sim",
        allowed=frozenset({"sim"}),
        anchors={"sim": TrustAnchors(public_keys=(sim.platform_key.public_key(),))},
        reference_values={
            "sim": {name: frozenset({value}) for name, value in sim.reference_values().items()}
        },
    )
    return Verifier(policy)


@pytest.mark.parametrize("binding", [Binding.EXPAT, Binding.CERT])
def test_mutual_sim_attestation(
    serve: Any, sim: SimAttester, verifier: Verifier, binding: Binding
) -> None:
    server = serve(make_config(Role.MUTUAL, sim, verifier, binding), echo_once)
    with connect(
        *server.server.address, make_config(Role.MUTUAL, sim, verifier, binding)
    ) as client:
        client.sendall(b"hello sim")
        assert client.recv() == b"hello sim"
        assert isinstance(client.peer_result, AppraisalResult)
        assert client.peer_result.format == "sim"
        assert any(check.startswith("3. binder") for check in client.peer_result.checks)
        accepted = server.result()
        assert isinstance(accepted.peer_result, AppraisalResult)
        accepted.close()


async def test_asyncio_client_attests_with_sim(
    serve: Any, sim: SimAttester, verifier: Verifier
) -> None:
    server = serve(make_config(Role.RELYING_PARTY, None, verifier), echo_once)
    host, port = server.server.address
    client = await open_connection(host, port, make_config(Role.ATTESTER, sim, None))
    await client.write(b"async sim")
    assert await client.read() == b"async sim"
    await client.close()


def test_sim_evidence_replay_rejected_by_verifier(
    serve: Any, sim: SimAttester, verifier: Verifier
) -> None:
    recorded = sim.evidence(b"\x01" * 32)
    server = serve(make_config(Role.RELYING_PARTY, None, verifier))
    client = connect(
        *server.server.address, make_config(Role.ATTESTER, ReplayingAttester(recorded), None)
    )
    with pytest.raises(PeerAborted):
        client.recv()
    error = server.error()
    assert isinstance(error, VerificationError)
    assert error.check == "binder"


def test_changed_agent_rejected_over_tls(serve: Any, sim: SimAttester, verifier: Verifier) -> None:
    changed = SimAttester(sim.platform_key, b"\x00" * 32, sim.config_digest)
    server = serve(make_config(Role.ATTESTER, changed, None), echo_once)
    with pytest.raises(VerificationError) as caught:
        connect(*server.server.address, make_config(Role.RELYING_PARTY, None, verifier))
    assert caught.value.check == "measurements"
    server.error()
