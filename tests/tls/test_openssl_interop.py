"""Interoperability with the system `openssl s_server` and `openssl s_client` (OpenSSL 3.0).

Each test starts openssl as a subprocess on 127.0.0.1 and a port picked here, and
ends it by its process id.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from attestnet.errors import VerificationError
from attestnet.tls import AttestationTimeout, Binding, Role, connect, generate_identity
from attestnet.tls.identity import Identity, cert_binding_binder
from tests.tls.conftest import (
    SampleResult,
    SignatureAppraiser,
    SigningAttester,
    echo_once,
    make_config,
)

OPENSSL = shutil.which("openssl", path="/usr/bin") or shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl command not found")

_KEYING_MATERIAL = re.compile(r"Keying material: ([0-9A-Fa-f]+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_identity(directory: Path, identity: Identity) -> tuple[Path, Path]:
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    cert.write_bytes(identity.chain[0].public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        identity.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


def _wait_for_accept(process: subprocess.Popen[bytes]) -> None:
    """Read s_server's output until it prints ACCEPT (it is then listening)."""
    assert process.stdout is not None
    seen = b""
    for _ in range(50):
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        if line.startswith(b"ACCEPT"):
            return
    raise RuntimeError(f"openssl s_server did not start: {seen[-500:]!r}")


@pytest.fixture
def s_server(tmp_path: Path) -> Iterator[Any]:
    """Start `openssl s_server`; yields a function(identity, *extra args) -> (port, process)."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(identity: Identity, *extra: str) -> tuple[int, subprocess.Popen[bytes]]:
        cert, key = _write_identity(tmp_path, identity)
        port = _free_port()
        command = [OPENSSL or "openssl", "s_server", "-accept", f"127.0.0.1:{port}"]
        command += ["-cert", str(cert), "-key", str(key), "-tls1_3", *extra]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        processes.append(process)
        _wait_for_accept(process)
        return port, process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)


def _read_keying_material(process: subprocess.Popen[bytes], timeout: float = 5) -> bytes:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        match = _KEYING_MATERIAL.search(line.decode(errors="replace"))
        if match:
            return bytes.fromhex(match.group(1))
    raise AssertionError(f"openssl printed no keying material: {seen[-500:]!r}")


def test_none_client_against_s_server_exporter(s_server: Any) -> None:
    port, process = s_server(
        generate_identity("s_server"), "-keymatexport", "Attestation", "-keymatexportlen", "32"
    )
    config = make_config(Role.RELYING_PARTY, None, None, Binding.NONE)
    with connect("127.0.0.1", port, config) as client:
        ours = client.export_keying_material(b"Attestation", 32)
        theirs = _read_keying_material(process)
        assert ours == theirs
        assert len(ours) == 32
        # TLS 1.3 defines an absent exporter context as an empty one.
        assert client.tls.export_keying_material(b"Attestation", 32, None) == ours


def test_none_client_exchanges_data_with_s_server(s_server: Any) -> None:
    port, _ = s_server(generate_identity("s_server"), "-rev")
    config = make_config(Role.RELYING_PARTY, None, None, Binding.NONE)
    with connect("127.0.0.1", port, config) as client:
        client.sendall(b"attestnet\n")
        received = b""
        deadline = time.monotonic() + 5
        while b"tentsetta" not in received and time.monotonic() < deadline:
            received += client.recv()
        assert b"tentsetta" in received


def test_cert_binding_client_appraises_s_server(
    s_server: Any, attester: SigningAttester, appraiser: SignatureAppraiser
) -> None:
    # The cert binding's binder depends only on the key, so evidence can be made
    # before the server starts: that is what makes this binding replayable.
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    identity = generate_identity("s_server-cert", attester.sign(cert_binding_binder(key)), key=key)
    port, _ = s_server(identity)
    config = make_config(Role.RELYING_PARTY, None, appraiser, Binding.CERT)
    with connect("127.0.0.1", port, config) as client:
        assert isinstance(client.peer_result, SampleResult)
        assert client.peer_certificate == identity.chain[0]


def test_cert_binding_rejects_plain_s_server(s_server: Any, appraiser: SignatureAppraiser) -> None:
    port, _ = s_server(generate_identity("plain"))
    config = make_config(Role.RELYING_PARTY, None, appraiser, Binding.CERT)
    with pytest.raises(VerificationError) as caught:
        connect("127.0.0.1", port, config)
    assert caught.value.check == "attestation.offered"


def test_expat_rejects_plain_s_server(s_server: Any, appraiser: SignatureAppraiser) -> None:
    port, _ = s_server(generate_identity("plain"))
    config = make_config(Role.RELYING_PARTY, None, appraiser, handshake_timeout=0.5)
    with pytest.raises(AttestationTimeout):
        connect("127.0.0.1", port, config)


def _run_s_client(port: int, *extra: str) -> subprocess.Popen[bytes]:
    command = [OPENSSL or "openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3"]
    return subprocess.Popen(
        [*command, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize("binding", [Binding.NONE, Binding.CERT])
def test_s_client_exporter_matches_server(
    serve: Any, attester: SigningAttester, binding: Binding
) -> None:
    server = serve(make_config(Role.ATTESTER, attester, None, binding), echo_once)
    port = server.server.address[1]
    process = _run_s_client(port, "-keymatexport", "Attestation", "-keymatexportlen", "32")
    try:
        theirs = _read_keying_material(process)
        assert process.stdin is not None
        process.stdin.write(b"echo me\n")
        process.stdin.flush()
        accepted = server.result()
        ours = accepted.export_keying_material(b"Attestation", 32)
        assert ours == theirs
        accepted.close()
    finally:
        process.kill()
        process.wait(timeout=5)


def test_s_client_sees_cert_binding_evidence(serve: Any, attester: SigningAttester) -> None:
    server = serve(make_config(Role.ATTESTER, attester, None, Binding.CERT))
    process = _run_s_client(server.server.address[1], "-showcerts")
    try:
        assert process.stdin is not None
        output, _ = process.communicate(b"", timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    accepted = server.result()
    accepted.close()
    assert b"Protocol  : TLSv1.3" in output or b"TLSv1.3" in output
    assert b"attestnet-cert-binding" in output
    assert len(attester.produced) == 1
