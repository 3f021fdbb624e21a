"""The `sim` attester: a software TEE simulator for development and tests.

A persistent EC P-256 platform key plays the hardware root of trust. The
measurements are SHA-256 digests of the agent's installed code (every ``*.py``
file under a folder, by relative path and content) and of its configuration.
An agent whose code or configuration changed therefore fails appraisal against
the reference values of the original. The evidence says it is simulated; a relying
party accepts it only under a policy that allows `sim` explicitly.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

import attestnet
from attestnet.errors import ConfigError
from attestnet.evidence import cmw, eat
from attestnet.evidence import sim as sim_evidence

__all__ = [
    "SimAttester",
    "load_or_create_platform_key",
    "measure_code",
    "measure_config",
    "package_dir",
]

logger = logging.getLogger(__name__)


def package_dir() -> Path:
    """Return the folder of the installed attestnet package (the agent's code)."""
    return Path(attestnet.__file__).resolve().parent


def measure_code(folder: Path) -> bytes:
    """Digest every ``*.py`` file under `folder` by relative path and content."""
    digest = sha256()
    files = sorted(p for p in folder.rglob("*.py") if p.is_file())
    if not files:
        raise ConfigError(f"no Python files to measure under {folder}")
    for path in files:
        relative = path.relative_to(folder).as_posix().encode()
        content = path.read_bytes()
        digest.update(len(relative).to_bytes(4, "big") + relative)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.digest()


def measure_config(config: bytes) -> bytes:
    return sha256(config).digest()


def load_or_create_platform_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load the platform key from `path`, creating it (mode 0600) when absent."""
    if path.exists():
        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load sim platform key {path}: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"sim platform key {path} is not an EC private key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    logger.info("created sim platform key at %s", path)
    return key


@dataclass
class SimAttester:
    """Produce sim evidence bound to a binder, as a CMW record.

    `code_digest` and `config_digest` are what the simulated TEE measured at start.
    """

    platform_key: ec.EllipticCurvePrivateKey
    code_digest: bytes
    config_digest: bytes
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        public = self.platform_key.public_key()
        self.ueid = sim_evidence.platform_key_id(public)
        self._cose_key = eat.cose_key_for_private(self.platform_key)

    @classmethod
    def from_files(
        cls, platform_key_path: Path, code_dir: Path | None = None, config: bytes = b""
    ) -> SimAttester:
        key = load_or_create_platform_key(platform_key_path)
        return cls(key, measure_code(code_dir or package_dir()), measure_config(config))

    def platform_public_pem(self) -> bytes:
        public = self.platform_key.public_key()
        return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def reference_values(self) -> dict[str, bytes]:
        """Return the measurements this attester reports, as reference values."""
        return {"sim/code": self.code_digest, "sim/config": self.config_digest}

    def evidence(self, binder: bytes) -> bytes:
        claims: dict[int | str, object] = {
            eat.CLAIM_EAT_PROFILE: sim_evidence.PROFILE,
            eat.CLAIM_NONCE: binder,
            eat.CLAIM_UEID: self.ueid,
            eat.CLAIM_IAT: int(self.clock()),
            eat.CLAIM_SWNAME: "attestnet-agent",
            eat.CLAIM_SWVERSION: [attestnet.__version__],
            sim_evidence.CLAIM_MEASUREMENTS: {
                "code": self.code_digest,
                "config": self.config_digest,
            },
            sim_evidence.CLAIM_SIMULATED: True,
        }
        token = eat.sign_eat(claims, self._cose_key)
        return cmw.encode_record(sim_evidence.MEDIA_TYPE, token, cmw.IND_EVIDENCE)
