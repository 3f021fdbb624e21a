"""Tests of the private swtpm runner, against the installed swtpm."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from attestnet.attesters.swtpm import Swtpm, SwtpmUnavailable, require_swtpm


@pytest.fixture(scope="module", autouse=True)
def _need_swtpm() -> None:
    try:
        require_swtpm()
    except SwtpmUnavailable as exc:
        pytest.skip(f"swtpm is not installed: {exc}")


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_swtpm_start_and_stop() -> None:
    with Swtpm() as swtpm:
        folder = swtpm.folder
        pid = swtpm.pid
        port = swtpm.port
        assert pid is not None
        assert port is not None
        assert swtpm.tcti == f"swtpm:host=127.0.0.1,port={port}"
        assert port_accepts(port + 1)
        assert (folder / "swtpm_setup.conf").is_file()
        assert (folder / "localca" / "signkey.pem").is_file()
    assert not folder.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_swtpm_local_ca_chain() -> None:
    with Swtpm() as swtpm:
        ca = swtpm.local_ca()
    assert ca.certificate.issuer == ca.root.subject
    assert ca.chain == (ca.certificate, ca.root)


def test_swtpm_config_stays_private(tmp_path: Path) -> None:
    with Swtpm(tmp_path) as swtpm:
        ca_config = (tmp_path / "swtpm-localca.conf").read_text()
        setup_config = (tmp_path / "swtpm_setup.conf").read_text()
        assert swtpm.folder == tmp_path
    assert str(tmp_path / "localca") in ca_config
    assert "/var/lib/swtpm-localca" not in ca_config
    assert "/etc/" not in setup_config.replace("create_certs_tool =", "")


def test_swtpm_state_reused(tmp_path: Path) -> None:
    with Swtpm(tmp_path) as swtpm:
        first_root = swtpm.local_ca().root
    assert tmp_path.exists()
    with Swtpm(tmp_path) as swtpm:
        assert swtpm.is_provisioned()
        assert swtpm.local_ca().root == first_root


def test_swtpm_tcti_before_start() -> None:
    swtpm = Swtpm()
    try:
        with pytest.raises(Exception, match="not running"):
            _ = swtpm.tcti
    finally:
        swtpm.stop()


def test_missing_programs_name_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SwtpmUnavailable) as caught:
        Swtpm()
    message = str(caught.value)
    assert "swtpm (apt-get install swtpm)" in message
    assert "swtpm_setup (apt-get install swtpm-tools)" in message
