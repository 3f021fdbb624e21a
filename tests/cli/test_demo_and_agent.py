"""The demo and the agent/attest commands, run as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

needs_swtpm = pytest.mark.skipif(
    shutil.which("swtpm") is None, reason="swtpm is not installed (apt install swtpm swtpm-tools)"
)


def attestnet(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attestnet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@needs_swtpm
def test_demo_accepts_genuine_and_rejects_tampered_agents() -> None:
    result = attestnet("demo", "--connections", "5", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("ACCEPTED") == 2
    assert "REJECTED at check 'measurements' on sim/code" in out
    assert "REJECTED at check 'measurements' on pcr/sha256/7" in out
    assert "| expat/tpm |" in out
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"agent exited early: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"agent did not listen on port {port}")


def start_agent(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "attestnet",
            "agent",
            "--listen",
            f"127.0.0.1:{port}",
            "--state-dir",
            str(tmp_path / "state"),
            "--write-policy",
            str(tmp_path / "policy.toml"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_port(port, process)
    return process, port


def stop(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=10)


def test_attest_sim_agent(tmp_path: Path) -> None:
    process, port = start_agent(tmp_path)
    try:
        result = attestnet("attest", f"127.0.0.1:{port}", "--policy", str(tmp_path / "policy.toml"))
    finally:
        stop(process)
    assert result.returncode == 0, result.stderr
    assert "PASS 3. binder" in result.stdout
    assert "hello from the DPU agent" in result.stdout


def test_attest_rejects_changed_configuration(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("inspection = 'strict'\n")
    process, port = start_agent(tmp_path, "--config", str(config))
    stop(process)
    # Restart the same agent with another configuration; the policy keeps the old digest.
    config.write_text("inspection = 'off'\n")
    policy = tmp_path / "policy.toml"
    saved = policy.read_text()
    process, port = start_agent(tmp_path, "--config", str(config))
    policy.write_text(saved)
    try:
        result = attestnet("attest", f"127.0.0.1:{port}", "--policy", str(policy))
    finally:
        stop(process)
    assert result.returncode == 1
    assert "FAIL measurements" in result.stdout
    assert "sim/config" in result.stdout


@needs_swtpm
def test_attest_tpm_agent(tmp_path: Path) -> None:
    process, port = start_agent(tmp_path, "--attester", "tpm")
    try:
        result = attestnet("attest", f"127.0.0.1:{port}", "--policy", str(tmp_path / "policy.toml"))
    finally:
        stop(process)
    assert result.returncode == 0, result.stderr
    assert "PASS 5. measurements: pcr/sha256/7" in result.stdout


def test_attest_without_agent_is_one_line_error(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    process, port = start_agent(tmp_path)
    stop(process)
    result = attestnet("attest", f"127.0.0.1:{port}", "--policy", str(policy))
    assert result.returncode == 2
    assert "refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_attest_json_reports_rejection(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("inspection = 'strict'\n")
    process, port = start_agent(tmp_path, "--config", str(config))
    stop(process)
    policy = tmp_path / "policy.toml"
    saved = policy.read_text()
    config.write_text("inspection = 'off'\n")
    process, port = start_agent(tmp_path, "--config", str(config))
    policy.write_text(saved)
    try:
        result = attestnet("attest", f"127.0.0.1:{port}", "--policy", str(policy), "--json")
    finally:
        stop(process)
    document = json.loads(result.stdout)
    assert result.returncode == 1
    assert document["verdict"] == "rejected"
    assert document["failed_check"] == "measurements"
    assert "WARNING" not in result.stderr


def test_idle_client_does_not_block_agent(tmp_path: Path) -> None:
    process, port = start_agent(tmp_path)
    idle = socket.create_connection(("127.0.0.1", port))  # never starts TLS
    try:
        result = attestnet(
            "attest",
            f"127.0.0.1:{port}",
            "--policy",
            str(tmp_path / "policy.toml"),
            "--timeout",
            "3",
        )
    finally:
        idle.close()
        stop(process)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello from the DPU agent" in result.stdout
