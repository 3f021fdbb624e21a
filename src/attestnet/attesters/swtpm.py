"""Run a private swtpm (software TPM 2.0) for tests and the demo.

`Swtpm` provisions a TPM state folder with `swtpm_setup` (swtpm 0.7): an RSA
2048 EK and a P-384 ECC EK, their EK certificates and a platform certificate.
A local CA issues them, and its root, signing key and configuration live in the
same folder, so the system's /etc/swtpm*.conf and /var/lib/swtpm-localca are
never used.
It then runs `swtpm socket` in the foreground as a child process bound to
127.0.0.1 and stops it by process id on exit.

The TPM 2.0 command port is N and the control port N + 1, because the tpm2-tss
swtpm TCTI ("swtpm:host=127.0.0.1,port=N") derives the control port that way.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from attestnet.errors import AttestnetError, ConfigError

__all__ = ["LocalCa", "Swtpm", "SwtpmError", "SwtpmUnavailable", "require_swtpm"]

logger = logging.getLogger(__name__)

# Program -> the Debian/Ubuntu package that installs it.
_PROGRAMS = {
    "swtpm": "swtpm",
    "swtpm_setup": "swtpm-tools",
    "swtpm_localca": "swtpm-tools",
    "certtool": "gnutls-bin",  # swtpm_localca creates the local CA with GnuTLS certtool
}

_START_ATTEMPTS = 5


class SwtpmUnavailable(ConfigError):
    """A program that running swtpm needs is not installed."""


class SwtpmError(AttestnetError):
    """swtpm_setup or swtpm failed; the message includes the program's output."""


def require_swtpm() -> dict[str, str]:
    """Return the paths of swtpm, swtpm_setup, swtpm_localca and certtool.

    Raises SwtpmUnavailable naming each missing program and the apt package that
    installs it.
    """
    found: dict[str, str] = {}
    missing: list[str] = []
    for program, package in _PROGRAMS.items():
        path = shutil.which(program)
        if path is None:
            missing.append(f"{program} (apt-get install {package})")
        else:
            found[program] = path
    if missing:
        raise SwtpmUnavailable("not found on PATH: " + ", ".join(missing))
    return found


@dataclass(frozen=True)
class LocalCa:
    """The swtpm local CA: its self-signed root and the intermediate that signs EK certificates.

    The private key is that of `certificate` (the intermediate), which attestnet
    also uses to issue AK certificates after credential activation.
    """

    root: x509.Certificate
    certificate: x509.Certificate
    private_key: PrivateKeyTypes

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The intermediate and root, in the order a verifier follows them."""
        return (self.certificate, self.root)


def _free_port_pair(host: str) -> int:
    """Return a port N such that N and N + 1 were both free a moment ago."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((host, 0))
            port: int = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
                return port
    raise SwtpmError(f"no two consecutive free TCP ports found on {host}")


class Swtpm:
    """A provisioned swtpm running as a child process; use it as a context manager.

    `state_dir` keeps the TPM state and the local CA between runs; by default a
    temporary folder is created and removed on exit. `pcr_banks` lists the PCR
    banks that `swtpm_setup` activates (for example ("sha256",) or ("sha1", "sha256")).
    """

    def __init__(
        self,
        state_dir: str | Path | None = None,
        *,
        pcr_banks: tuple[str, ...] = ("sha256",),
        host: str = "127.0.0.1",
        start_timeout: float = 10.0,
    ) -> None:
        self._programs = require_swtpm()
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="attestnet-swtpm-")
            state_dir = self._temporary.name
        self.folder = Path(state_dir)
        self.pcr_banks = pcr_banks
        self.host = host
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # --- paths --------------------------------------------------------------------

    @property
    def tpm_state_dir(self) -> Path:
        return self.folder / "tpm"

    @property
    def local_ca_dir(self) -> Path:
        return self.folder / "localca"

    @property
    def log_path(self) -> Path:
        return self.folder / "swtpm.log"

    @property
    def tcti(self) -> str:
        """The tpm2-tss TCTI configuration string for this TPM."""
        if self.port is None:
            raise SwtpmError("swtpm is not running; call start() or use it in a with block")
        return f"swtpm:host={self.host},port={self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # --- provisioning -------------------------------------------------------------

    def is_provisioned(self) -> bool:
        return (self.tpm_state_dir / "tpm2-00.permall").is_file() and (
            self.local_ca_dir / "swtpm-localca-rootca-cert.pem"
        ).is_file()

    def _write_configs(self) -> Path:
        ca = self.local_ca_dir
        ca_config = self.folder / "swtpm-localca.conf"
        ca_options = self.folder / "swtpm-localca.options"
        setup_config = self.folder / "swtpm_setup.conf"
        ca_config.write_text(
            f"statedir = {ca}\n"
            f"signingkey = {ca / 'signkey.pem'}\n"
            f"issuercert = {ca / 'issuercert.pem'}\n"
            f"certserial = {ca / 'certserial'}\n"
        )
        ca_options.write_text(
            "--platform-manufacturer attestnet\n"
            "--platform-version 1.0\n"
            "--platform-model attestnet-swtpm\n"
        )
        setup_config.write_text(
            f"create_certs_tool = {self._programs['swtpm_localca']}\n"
            f"create_certs_tool_config = {ca_config}\n"
            f"create_certs_tool_options = {ca_options}\n"
            f"active_pcr_banks = {','.join(self.pcr_banks)}\n"
        )
        return setup_config

    def provision(self) -> None:
        """Create the TPM state, the EKs, their certificates and the local CA."""
        self.tpm_state_dir.mkdir(parents=True, exist_ok=True)
        self.local_ca_dir.mkdir(parents=True, exist_ok=True)
        setup_config = self._write_configs()

        command = [
            self._programs["swtpm_setup"],
            "--tpm2",
            "--config",
            str(setup_config),
            "--tpmstate",
            str(self.tpm_state_dir),
            "--create-ek-cert",
            "--create-platform-cert",
            "--pcr-banks",
            ",".join(self.pcr_banks),
            "--overwrite",
        ]
        environment = dict(os.environ)
        # swtpm_setup runs `swtpm` itself, found on PATH; make sure it is this one.
        swtpm_dir = str(Path(self._programs["swtpm"]).parent)
        environment["PATH"] = swtpm_dir + os.pathsep + environment.get("PATH", "")

        logger.info("provisioning swtpm state in %s", self.folder)
        result = subprocess.run(
            command, capture_output=True, text=True, env=environment, check=False, timeout=120
        )
        if result.returncode != 0:
            raise SwtpmError(
                f"swtpm_setup failed with exit code {result.returncode}: "
                f"{(result.stderr or result.stdout).strip()}"
            )

    def local_ca(self) -> LocalCa:
        """Load the local CA's root, intermediate and intermediate signing key."""
        ca = self.local_ca_dir
        try:
            root = x509.load_pem_x509_certificate(
                (ca / "swtpm-localca-rootca-cert.pem").read_bytes()
            )
            certificate = x509.load_pem_x509_certificate((ca / "issuercert.pem").read_bytes())
            key = load_pem_private_key((ca / "signkey.pem").read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise SwtpmError(f"cannot load the swtpm local CA from {ca}: {exc}") from None
        return LocalCa(root, certificate, key)

    # --- process ------------------------------------------------------------------

    def start(self) -> Swtpm:
        """Provision the state if needed, start swtpm and wait until it accepts connections."""
        if self._process is not None:
            return self
        if not self.is_provisioned():
            self.provision()
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port_pair(self.host)
            if self._launch(port):
                self.port = port
                logger.info("swtpm started: pid %d, %s", self.pid, self.tcti)
                return self
            logger.info("swtpm could not use port %d (attempt %d), retrying", port, attempt)
        raise SwtpmError(
            f"swtpm did not start after {_START_ATTEMPTS} attempts; "
            f"see {self.log_path}: {self._log_tail()}"
        )

    def _launch(self, port: int) -> bool:
        command = [
            self._programs["swtpm"],
            "socket",
            "--tpm2",
            "--tpmstate",
            f"dir={self.tpm_state_dir}",
            "--server",
            f"type=tcp,port={port},bindaddr={self.host}",
            "--ctrl",
            f"type=tcp,port={port + 1},bindaddr={self.host}",
            "--flags",
            "not-need-init,startup-clear",
            "--log",
            f"file={self.log_path},level=1",
        ]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, port + 1), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.01)
                continue
            self._process = process
            return True
        self._terminate(process)
        raise SwtpmError(
            f"swtpm did not accept connections within {self.start_timeout} s; "
            f"see {self.log_path}: {self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-500:].strip() or "(empty log)"
        except OSError:
            return "(no log)"

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop(self) -> None:
        """Stop swtpm (SIGTERM, then SIGKILL after 5 s) and remove a temporary folder."""
        if self._process is not None:
            logger.info("stopping swtpm pid %d", self._process.pid)
            self._terminate(self._process)
            self._process = None
            self.port = None
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> Swtpm:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
