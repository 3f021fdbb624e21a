"""Attested TLS between hosts in separate network namespaces, over veth and a router.

The agent (`attestnet agent`) runs in the DPU namespace, the relying party
(`attestnet attest`) in the host namespace, and the relay namespace routes between
them or, in the relay tests, intercepts the DPU's service address. The layout is
drawn in tests/tls/netns_support.py. Every program is a separate process started with
`ip netns exec`, so the evidence, the TLS sessions and the failures cross real
interfaces and routes. These tests need root and iproute2 and skip otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from attestnet.attesters.sim import SimAttester, package_dir
from tests.tls.netns_support import (
    DPU_ADDRESS,
    RELAY_DPU_LINK,
    RELAY_HOST_LINK,
    SERVICE_ADDRESS,
    SERVICE_ADDRESS6,
    NamespaceProcess,
    Network,
    existing_namespaces,
    unavailable_reason,
)

pytestmark = pytest.mark.netns

AGENT_PORT = 8443
GREETING = "hello from the DPU agent"


def _skip_unless_namespaces_work() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    """Host, relay and DPU namespaces, deleted with every program in them at the end."""
    _skip_unless_namespaces_work()
    with Network(tmp_path) as network:
        yield network


def package_snapshot(folder: Path) -> Path:
    """Copy the attestnet package under `folder` once; return the folder for PYTHONPATH.

    The sim attester measures the code the agent runs from. Agents run from this copy,
    so that an edit to the checkout between two agent starts in one test does not
    change the measured code.
    """
    snapshot = folder / "code"
    if not snapshot.exists():
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(package_dir(), snapshot / "attestnet", ignore=ignore)
    return snapshot


def start_agent(
    network: Network,
    folder: Path,
    *extra: str,
    label: str = "agent",
    code: Path | None = None,
    listen: str = f"0.0.0.0:{AGENT_PORT}",
) -> NamespaceProcess:
    """Start `attestnet agent` (sim attester) in the DPU namespace on every address.

    The agent runs from `code` (a folder that contains the attestnet package), by
    default from a copy of this checkout's package made by `package_snapshot`.
    """
    env = {**os.environ, "PYTHONPATH": str(code or package_snapshot(folder))}
    agent = network.start_python(
        network.dpu,
        "-m",
        "attestnet",
        "agent",
        "--listen",
        listen,
        "--state-dir",
        str(folder / "state"),
        *extra,
        label=label,
        env=env,
        cwd=folder,
    )
    agent.wait_listening(AGENT_PORT)
    return agent


def attest(
    network: Network, policy: Path, address: str = f"{SERVICE_ADDRESS}:{AGENT_PORT}"
) -> subprocess.CompletedProcess[str]:
    """Run `attestnet attest` in the host namespace, by default against the service address."""
    return network.host.python("-m", "attestnet", "attest", address, "--policy", str(policy))


def write_sim_policy(folder: Path) -> Path:
    """Write a policy for a sim agent with an empty configuration and this package's code."""
    sim = SimAttester.from_files(folder / "state" / "sim-platform.pem", config=b"")
    anchor = folder / "policy.anchor.pem"
    anchor.write_bytes(sim.platform_public_pem())
    values = [
        f'"{name}" = ["{value.hex()}"]' for name, value in sorted(sim.reference_values().items())
    ]
    policy = folder / "policy.toml"
    policy.write_text(
        'id = "netns-sim"\nallowed = ["sim"]\n\n[anchors]\n'
        f'sim = ["{anchor.name}"]\n\n[reference_values.sim]\n' + "\n".join(values) + "\n"
    )
    return policy


def relay_events(relay: NamespaceProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in relay.stdout.splitlines() if line.startswith("{")]


def host_alerts(events: list[dict[str, Any]]) -> list[str]:
    """Return the alerts of the ERROR frames that the host sent through the relay."""
    return [
        e["alert"]
        for e in events
        if e["event"] == "frame" and e["source"] == "host" and e["type"] == "ERROR"
    ]


# -- a genuine and a changed agent, routed through the relay namespace -------------------


def test_genuine_agent_attested(network: Network, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    agent = start_agent(network, tmp_path, "--write-policy", str(policy))
    sent_to_dpu = network.relay.tx_packets(RELAY_DPU_LINK)
    sent_to_host = network.relay.tx_packets(RELAY_HOST_LINK)

    result = attest(network, policy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS 3. binder" in result.stdout
    assert f"application data: '{GREETING}'" in result.stdout
    # The connection was routed through the relay namespace in both directions.
    assert network.relay.tx_packets(RELAY_DPU_LINK) > sent_to_dpu
    assert network.relay.tx_packets(RELAY_HOST_LINK) > sent_to_host
    agent.stop()
    assert "Traceback" not in agent.stderr


def test_agent_attested_over_ipv6(tmp_path: Path) -> None:
    _skip_unless_namespaces_work()
    if not Path("/proc/sys/net/ipv6").exists():
        pytest.skip("IPv6 is disabled in this kernel")
    policy = tmp_path / "policy.toml"
    with Network(tmp_path, ipv6=True) as network:
        start_agent(network, tmp_path, "--write-policy", str(policy), listen=f"[::]:{AGENT_PORT}")
        result = attest(network, policy, f"[{SERVICE_ADDRESS6}]:{AGENT_PORT}")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS 3. binder" in result.stdout
    assert f"application data: '{GREETING}'" in result.stdout


def test_changed_configuration_rejected(network: Network, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("inspection = 'strict'\n")
    policy = tmp_path / "policy.toml"
    first = start_agent(network, tmp_path, "--config", str(config), "--write-policy", str(policy))
    first.stop()

    # The same agent with a changed configuration. The policy keeps the old digest.
    config.write_text("inspection = 'off'\n")
    agent = start_agent(network, tmp_path, "--config", str(config), label="changed-agent")
    result = attest(network, policy)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "PASS 3. binder" in result.stdout
    assert "FAIL measurements" in result.stdout
    assert "sim/config" in result.stdout
    assert GREETING not in result.stdout
    assert agent.popen.poll() is None, "the agent must keep serving after a rejection"


def test_changed_code_rejected(network: Network, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    first = start_agent(network, tmp_path, "--write-policy", str(policy))
    first.stop()

    # Run the agent from a copy of the package with one added line. The sim
    # attester measures the code it runs from.
    changed = tmp_path / "changed-code"
    shutil.copytree(
        package_snapshot(tmp_path), changed, ignore=shutil.ignore_patterns("__pycache__")
    )
    with (changed / "attestnet" / "cli" / "agent.py").open("a") as file:
        file.write("# a line the reference values do not contain\n")
    start_agent(network, tmp_path, label="changed-code-agent", code=changed)
    result = attest(network, policy)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL measurements" in result.stdout
    assert "sim/code" in result.stdout
    assert GREETING not in result.stdout


# -- a man in the middle on the route -----------------------------------------------------


def start_relay(network: Network, *extra: str) -> NamespaceProcess:
    """Hijack the service address in the relay namespace and relay it to the real agent."""
    network.hijack_service_address()
    relay = network.start_python(
        network.relay,
        "-m",
        "tests.tls.netns_support",
        "relay",
        "--listen",
        f"{SERVICE_ADDRESS}:{AGENT_PORT}",
        "--upstream",
        f"{DPU_ADDRESS}:{AGENT_PORT}",
        *extra,
        label="relay",
    )
    relay.wait_listening(AGENT_PORT)
    return relay


def test_forwarding_relay_rejected(network: Network, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    agent = start_agent(network, tmp_path, "--write-policy", str(policy))
    relay = start_relay(network)

    result = attest(network, policy)

    assert result.returncode == 1, result.stdout + result.stderr
    # The genuine agent signed the transcript of its session with the relay, so the
    # CertificateVerify fails on the host's session.
    assert "FAIL authenticator.certificate_verify" in result.stdout
    assert GREETING not in result.stdout
    assert relay.wait_exit() == 0, relay.stderr
    events = relay_events(relay)
    forwarded = {(e["source"], e["type"]) for e in events if e["event"] == "frame"}
    assert ("host", "AUTHENTICATOR_REQUEST") in forwarded
    assert ("agent", "AUTHENTICATOR") in forwarded
    assert host_alerts(events) == ["decrypt_error"]
    assert agent.popen.poll() is None, "the agent must keep serving after the relay"
    # A pure attester is ready once it has sent DONE. So the agent took the relay for
    # an ordinary client and sent its greeting, and only the host can detect the relay.
    assert not [e for e in events if e["event"] == "application_data" and e["source"] == "host"]


def test_rewrapping_relay_rejected_at_binder(network: Network, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    agent = start_agent(network, tmp_path, "--write-policy", str(policy))
    relay = start_relay(network, "--rewrap")

    result = attest(network, policy)

    assert result.returncode == 1, result.stdout + result.stderr
    # The relay's own authenticator verifies, but the evidence nonce is the binder of
    # the agent's session with the relay, not of the host's session.
    assert "FAIL binder" in result.stdout
    assert "PASS 3. binder" not in result.stdout
    assert GREETING not in result.stdout
    assert relay.wait_exit() == 0, relay.stderr
    events = relay_events(relay)
    rewrapped = [e for e in events if e.get("action") == "rewrapped"]
    assert [(e["source"], e["type"]) for e in rewrapped] == [("agent", "AUTHENTICATOR")]
    assert host_alerts(events) == ["bad_certificate"]
    assert agent.popen.poll() is None, "the agent must keep serving after the relay"


# -- a plain TLS server where the host requires expat -----------------------------------


def test_agent_without_attestation_rejected(network: Network, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    genuine = start_agent(network, tmp_path, "--write-policy", str(policy))
    accepted = attest(network, policy)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    genuine.stop()

    # The same agent with binding none: plain TLS 1.3, and the greeting comes right
    # after the handshake.
    start_agent(network, tmp_path, "--binding", "none", label="plain-agent")
    result = attest(network, policy)

    # The host rejects the greeting's first byte as an unknown frame (UnexpectedMessage).
    # The agent may reset the connection with the host's frames unread; the host sends
    # its ERROR frame best effort, so the reset does not replace the real failure.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "unknown attestation frame type 0x68" in result.stdout + result.stderr
    assert GREETING not in result.stdout
    assert "Traceback" not in result.stderr


def test_silent_openssl_server_rejected(network: Network, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is missing: apt-get install openssl")
    policy = write_sim_policy(tmp_path)
    key, certificate = tmp_path / "plain.key", tmp_path / "plain.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=plain-tls", "-days", "1",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True, timeout=15,
    )  # fmt: skip
    # s_server sends what it reads on standard input to the client, and closes the
    # connection at end of input. An open, empty pipe keeps it connected and silent,
    # like a plain TLS service that waits for a request.
    server = network.start(
        network.dpu,
        "openssl", "s_server", "-accept", str(AGENT_PORT), "-tls1_3", "-naccept", "1",
        "-cert", str(certificate), "-key", str(key),
        label="s_server",
        keep_stdin_open=True,
    )  # fmt: skip
    server.wait_listening(AGENT_PORT)

    result = network.host.python(
        "-m",
        "tests.tls.netns_support",
        "connect",
        f"{SERVICE_ADDRESS}:{AGENT_PORT}",
        "--policy",
        str(policy),
        "--timeout",
        "2",
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["accepted"] is False
    assert outcome["error"] == "AttestationTimeout"
    assert outcome["seconds"] < 5
    server.stop()
    # s_server prints the session after a completed TLS handshake, so the host
    # rejected the missing attestation and not the TLS connection.
    assert "BEGIN SSL SESSION PARAMETERS" in server.stdout


# -- the namespaces themselves ------------------------------------------------------------


def test_network_removed_after_failure(tmp_path: Path) -> None:
    _skip_unless_namespaces_work()
    names: list[str] = []
    processes: list[NamespaceProcess] = []
    with (
        pytest.raises(RuntimeError, match="failure inside the network"),
        Network(tmp_path) as network,
    ):
        names = [n.name for n in (network.host, network.relay, network.dpu)]
        processes.append(network.start(network.dpu, "sleep", "30", label="sleeper"))
        assert set(names) <= existing_namespaces()
        raise RuntimeError("failure inside the network")

    assert not set(names) & existing_namespaces()
    assert processes[0].popen.returncode is not None
