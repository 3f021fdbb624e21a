"""A loopback test bed for the demo and the benchmark: attesters, agents, a relying party.

`Lab` owns everything it starts (a temporary folder, swtpm, agent threads and
processes) and releases all of it on exit, so the demo and the benchmark leave
nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from attestnet.appraisal import Policy, Verifier
from attestnet.attesters.sim import SimAttester, measure_code, package_dir
from attestnet.errors import AttestnetError, ConfigError
from attestnet.evidence.model import TrustAnchors
from attestnet.tls.blocking import AttestedConnection, AttestedServer, connect, listen
from attestnet.tls.config import AttestedTLSConfig, Attester, Binding, Role

__all__ = ["GREETING", "Agent", "AgentProcess", "AgentServer", "Lab", "RemoteAgent"]

logger = logging.getLogger(__name__)

GREETING = b"hello from the DPU agent\n"
DEMO_AGENT_CONFIG = b'role = "dpu-agent"\ninspection_policy = "default"\n'
_AGENT_PROCESS_TIMEOUT = 30.0


class Agent(Protocol):
    """An agent that the host can connect to, in this process or another one."""

    name: str
    server_timings: list[dict[str, float]]
    failures: list[str]

    @property
    def port(self) -> int: ...


class AgentServer:
    """An attester-side TLS server on 127.0.0.1 that greets each client, one at a time.

    Accepts run in one background thread; a failed handshake or appraisal is logged
    and the server keeps serving. After the greeting it waits until the client
    closes. `server_timings` keeps the attester-side phase
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
                try:
                    connection.sendall(GREETING)
                    # Wait until the host closes. On expat the agent may greet before
                    # the host's verdict. This read takes the host's DONE first, or
                    # raises PeerAborted if the host rejected the agent.
                    connection.recv(1)
                except AttestnetError as exc:
                    logger.info("agent %s: host rejected the agent: %s", self.name, exc)
                    self.failures.append(str(exc))
                except (SSL.Error, OSError):
                    pass

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._server.close()


@dataclass
class RemoteAgent:
    """An agent that an `AgentProcess` serves; its timings arrive when the process stops."""

    name: str
    port: int
    server_timings: list[dict[str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class AgentProcess:
    """Agents served by a forked child process, each an `AgentServer` thread there.

    The host (this process) and the agents then do not share an interpreter lock,
    as on a real DPU and host, which are different machines. The child inherits the
    attesters. A TPM attester's connection to swtpm is then shared with this process,
    so this process must not use that attester until `stop` returned. `stop` brings
    back each agent's timings and failures.
    """

    def __init__(self, configs: dict[str, AttestedTLSConfig]) -> None:
        context = multiprocessing.get_context("fork")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve_agents, args=(configs, child_end), name="attestnet-agents", daemon=True
        )
        self._process.start()
        child_end.close()
        ports: dict[str, int] = self._receive("start")
        self.agents = {name: RemoteAgent(name, port) for name, port in ports.items()}

    def _receive(self, what: str) -> Any:
        if not self._pipe.poll(_AGENT_PROCESS_TIMEOUT):
            raise ConfigError(f"the agent process did not {what} within {_AGENT_PROCESS_TIMEOUT} s")
        try:
            return self._pipe.recv()
        except EOFError:
            raise ConfigError(
                f"the agent process exited during {what} (code {self._process.exitcode})"
            ) from None

    def stop(self) -> None:
        """Stop the agents and copy their timings and failures into `agents`."""
        if not self._process.is_alive():
            return
        try:
            self._pipe.send("stop")
            results: dict[str, tuple[list[dict[str, float]], list[str]]] = self._receive("stop")
            for name, (timings, failures) in results.items():
                self.agents[name].server_timings[:] = timings
                self.agents[name].failures[:] = failures
        finally:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=5)
            self._pipe.close()


def _serve_agents(configs: dict[str, AttestedTLSConfig], pipe: Connection) -> None:
    """Run the agent process: serve until the parent sends stop, then report."""
    agents = [AgentServer(name, config) for name, config in configs.items()]
    try:
        pipe.send({agent.name: agent.port for agent in agents})
        pipe.recv()
    finally:
        for agent in agents:
            agent.stop()
    pipe.send({agent.name: (agent.server_timings, agent.failures) for agent in agents})


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
    _agent_processes: list[AgentProcess] = field(init=False, default_factory=list)
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

    @staticmethod
    def agent_config(attester: Attester | None, binding: Binding) -> AttestedTLSConfig:
        # The agent attests itself to the host and does not authenticate the host,
        # hence insecure_unauthenticated_peer: the host's identity is not this demo's topic.
        return AttestedTLSConfig(
            binding=binding,
            role=Role.ATTESTER,
            attester=attester,
            insecure_unauthenticated_peer=True,
        )

    def start_agent(self, name: str, attester: Attester | None, binding: Binding) -> AgentServer:
        """Start an agent in a thread of this process."""
        agent = AgentServer(name, self.agent_config(attester, binding))
        self._agents.append(agent)
        return agent

    def start_agent_process(
        self, agents: dict[str, tuple[Attester | None, Binding]]
    ) -> AgentProcess:
        """Start the named agents in one child process; stop it before using a TPM here."""
        configs = {
            name: self.agent_config(attester, binding)
            for name, (attester, binding) in agents.items()
        }
        process = AgentProcess(configs)
        self._agent_processes.append(process)
        return process

    def host_config(self, binding: Binding) -> AttestedTLSConfig:
        if binding is Binding.NONE:
            return AttestedTLSConfig(binding=binding, insecure_unauthenticated_peer=True)
        return AttestedTLSConfig(binding=binding, role=Role.RELYING_PARTY, appraiser=self.verifier)

    def connect(self, agent: Agent, binding: Binding) -> AttestedConnection:
        return connect("127.0.0.1", agent.port, self.host_config(binding))

    def close(self) -> None:
        for process in self._agent_processes:
            process.stop()
        self._agent_processes.clear()
        for agent in self._agents:
            agent.stop()
        self._agents.clear()
        self._stack.close()
