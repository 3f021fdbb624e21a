"""A loopback test bed for the demo and the benchmark: attesters, agents, a relying party.

`Lab` owns everything it starts (a temporary folder, swtpm, agent threads) and
releases all of it on exit, so the demo and the benchmark leave nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from attestnet.appraisal import Policy, Verifier
from attestnet.attesters.sim import SimAttester, measure_code, package_dir
from attestnet.errors import AttestnetError, VerificationError
from attestnet.evidence.model import TrustAnchors
from attestnet.tls.blocking import AttestedConnection, AttestedServer, connect, listen
from attestnet.tls.config import AttestedTLSConfig, Attester, Binding, Role

__all__ = ["GREETING", "AgentServer", "Lab"]

logger = logging.getLogger(__name__)

GREETING = b"hello from the DPU agent\n"
DEMO_AGENT_CONFIG = b'role = "dpu-agent"\ninspection_policy = "default"\n'


class AgentServer:
    """An attester-side TLS server on 127.0.0.1 that greets each client and closes.

    Accepts run in one background thread; a failed handshake or appraisal is logged
    and the server keeps serving. `server_timings` keeps the attester-side phase
    timings of each accepted connection, in order.
    """

    def __init__(self, name: str, config: AttestedTLSConfig) -> None:
        self.name = name
        self._server: AttestedServer = listen("127.0.0.1", 0, config)
        self.server_timings: list[dict[str, float]] = []
        self.failures: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"agent-{name}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.address[1]

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection = self._server.accept(timeout=0.2)
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                raise
            except (AttestnetError, SSL.Error) as exc:
                logger.info("agent %s: connection failed: %s", self.name, exc)
                self.failures.append(str(exc))
                continue
            with connection:
                self.server_timings.append(dict(connection.timings))
                with contextlib.suppress(SSL.Error, OSError):
                    connection.sendall(GREETING)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._server.close()


@dataclass
class Lab:
    """Attesters, a demo policy and agents on loopback; use as a context manager.

    `with_tpm` starts a private swtpm and enrols a TPM attester against its local CA.
    """

    with_tpm: bool = True
    folder: Path = field(init=False)
    sim: SimAttester = field(init=False)
    tpm: Any = field(init=False, default=None)
    policy: Policy = field(init=False)
    verifier: Verifier = field(init=False)
    _agents: list[AgentServer] = field(init=False, default_factory=list)
    _stack: contextlib.ExitStack = field(init=False, default_factory=contextlib.ExitStack)

    def __enter__(self) -> Lab:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        temporary = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="attestnet-lab-"))
        self.folder = Path(temporary)
        self.sim = SimAttester.from_files(
            self.folder / "sim-platform.pem", config=DEMO_AGENT_CONFIG
        )
        anchors = {"sim": TrustAnchors(public_keys=(self.sim.platform_key.public_key(),))}
        reference = {"sim": {k: frozenset({v}) for k, v in self.sim.reference_values().items()}}
        allowed = {"sim"}

        if self.with_tpm:
            from attestnet.attesters.swtpm import Swtpm
            from attestnet.attesters.tpm import TpmAttester, enroll_ak

            swtpm = self._stack.enter_context(Swtpm(self.folder / "swtpm"))
            self.tpm = self._stack.enter_context(TpmAttester(swtpm.tcti))
            local_ca = swtpm.local_ca()
            enroll_ak(self.tpm, local_ca)
            anchors["tpm"] = TrustAnchors(certificates=(local_ca.root,))
            reference["tpm"] = {
                f"pcr/sha256/{index}": frozenset({value})
                for (_, index), value in sorted(self.tpm.read_pcrs().items())
            }
            allowed.add("tpm")

        self.policy = Policy(
            id="attestnet-demo",
            allowed=frozenset(allowed),
            anchors=anchors,
            reference_values=reference,
        )
        self.verifier = Verifier(self.policy, ear_key=ec.generate_private_key(ec.SECP256R1()))

    def tampered_sim(self) -> SimAttester:
        """Return a sim attester whose agent code differs from the installed one by a line."""
        copy = self.folder / "tampered-agent"
        shutil.copytree(package_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
        with (copy / "cli" / "_lab.py").open("a") as file:
            file.write("# a line the reference values do not know\n")
        return SimAttester(self.sim.platform_key, measure_code(copy), self.sim.config_digest)

    def start_agent(self, name: str, attester: Attester | None, binding: Binding) -> AgentServer:
        # The agent attests itself to the host and does not authenticate the host,
        # hence insecure_unauthenticated_peer: the host's identity is not this demo's topic.
        config = AttestedTLSConfig(
            binding=binding,
            role=Role.ATTESTER,
            attester=attester,
            insecure_unauthenticated_peer=True,
        )
        agent = AgentServer(name, config)
        self._agents.append(agent)
        return agent

    def host_config(self, binding: Binding) -> AttestedTLSConfig:
        if binding is Binding.NONE:
            return AttestedTLSConfig(binding=binding, insecure_unauthenticated_peer=True)
        return AttestedTLSConfig(binding=binding, role=Role.RELYING_PARTY, appraiser=self.verifier)

    def connect(self, agent: AgentServer, binding: Binding) -> AttestedConnection:
        return connect("127.0.0.1", agent.port, self.host_config(binding))

    def close(self) -> None:
        for agent in self._agents:
            agent.stop()
        self._agents.clear()
        self._stack.close()


@contextlib.contextmanager
def attested(lab: Lab, agent: AgentServer, binding: Binding) -> Iterator[AttestedConnection]:
    """Connect to `agent` as the host and read its greeting; close on exit."""
    connection = lab.connect(agent, binding)
    try:
        yield connection
    finally:
        connection.close()


def failed_check(error: VerificationError) -> str:
    return f"{error.check}" + (f" ({error.claim})" if error.claim else "")
