"""Hosts in Linux network namespaces for the attested TLS tests, and programs to run in them.

`Network` creates three namespaces joined by two veth pairs, the middle one routing
IPv4 between the others:

    host 10.77.1.1 ---- 10.77.1.2 relay 10.77.2.1 ---- 10.77.2.2 dpu
                                                           service address 10.77.9.1

With `Network(ipv6=True)` the same layout also has IPv6 addresses: fd77:1::/64 and
fd77:2::/64 on the links and fd77:9::1 as the service address.

The host reaches the DPU's service address only through the relay namespace.
`Network.hijack_service_address` makes the relay namespace accept the service address
itself, as an attacker on the path would, while it still reaches the DPU at its link
address. Every address exists only inside the namespaces, so no packet leaves them.

Run as a module, this file is the program that tests start inside a namespace:

    python -m tests.tls.netns_support relay --listen ADDR --upstream ADDR [--rewrap]
    python -m tests.tls.netns_support connect ADDR --policy FILE --timeout SECONDS

`relay` is a man in the middle with two TLS sessions that forwards the attestation
frames between them and prints one JSON object per event. `connect` is a relying party
built on the library that prints its outcome as JSON; unlike `attestnet attest`, it
takes a handshake timeout, so a test against a silent server ends in seconds.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

HOST_ADDRESS = "10.77.1.1"
RELAY_HOST_SIDE = "10.77.1.2"
RELAY_DPU_SIDE = "10.77.2.1"
DPU_ADDRESS = "10.77.2.2"
SERVICE_ADDRESS = "10.77.9.1"

# The same layout in IPv6 unique local addresses, set up by Network(ipv6=True).
HOST_ADDRESS6 = "fd77:1::1"
RELAY_HOST_SIDE6 = "fd77:1::2"
RELAY_DPU_SIDE6 = "fd77:2::1"
DPU_ADDRESS6 = "fd77:2::2"
SERVICE_ADDRESS6 = "fd77:9::1"

# veth names, each inside its own namespace: "<this side>-<other side>".
HOST_LINK = "host-relay"
RELAY_HOST_LINK = "relay-host"
RELAY_DPU_LINK = "relay-dpu"
DPU_LINK = "dpu-relay"

_network_numbers = itertools.count(1)


class NamespaceSetupError(RuntimeError):
    """An `ip` command that builds the test network failed."""


def run_ip(*args: str) -> str:
    """Run `ip ARGS` and return its output, or raise NamespaceSetupError with its stderr."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        raise NamespaceSetupError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@functools.cache
def unavailable_reason() -> str | None:
    """Return why namespaces cannot be created here, or None when they can.

    The first call creates and deletes a probe namespace, because a container may
    forbid namespaces even to root.
    """
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root: run the netns tests as root"
    for command in ("ip", "ss"):
        if shutil.which(command) is None:
            return f"the {command} command is missing: apt-get install iproute2"
    probe = f"an-{os.getpid()}-probe"
    try:
        run_ip("netns", "add", probe)
    except NamespaceSetupError as error:
        return f"this system does not allow network namespaces: {error}"
    run_ip("netns", "del", probe)
    return None


@dataclass(frozen=True)
class Namespace:
    name: str

    def command(self, *args: str) -> list[str]:
        """Return the argv that runs `args` inside this namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def run(
        self, *args: str, timeout: float = 15, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )

    def python(
        self, *args: str, timeout: float = 15, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run this interpreter with `args` in the namespace, from the repository root."""
        return self.run(sys.executable, *args, timeout=timeout, env=env, cwd=REPO_ROOT)

    def is_listening(self, port: int) -> bool:
        result = self.run("ss", "-H", "-l", "-t", "-n", f"sport = :{port}", timeout=5)
        return result.returncode == 0 and bool(result.stdout.strip())

    def tx_packets(self, link: str) -> int:
        """Return how many packets `link` in this namespace has sent."""
        statistics = json.loads(run_ip("-n", self.name, "-j", "-s", "link", "show", link))
        return int(statistics[0]["stats64"]["tx"]["packets"])


class NamespaceProcess:
    """A program running inside a namespace, its output captured in files.

    `ip netns exec` replaces itself with the program (iproute2 calls execvp), so the
    Popen pid is the program's own pid and `stop` signals that process only.
    """

    def __init__(
        self,
        namespace: Namespace,
        args: Sequence[str],
        folder: Path,
        label: str,
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
        keep_stdin_open: bool = False,
    ) -> None:
        self.namespace = namespace
        self.label = label
        self.stdout_path = folder / f"{label}.out"
        self.stderr_path = folder / f"{label}.err"
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            self.popen = subprocess.Popen(
                namespace.command(*args),
                stdin=subprocess.PIPE if keep_stdin_open else subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=cwd,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], condition: str, timeout: float = 10) -> None:
        """Poll `ready` until it returns True.

        Raise AssertionError, with the program's output, if the program exits first or
        `timeout` seconds pass; `condition` describes `ready` in that message.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.label} exited with {self.popen.returncode} before {condition}:\n"
                    f"{self.stdout}\n{self.stderr}"
                )
            if ready():
                return
            time.sleep(0.05)
        raise AssertionError(
            f"{self.label} timed out after {timeout} s waiting for {condition}:\n{self.stderr}"
        )

    def wait_listening(self, port: int, timeout: float = 10) -> None:
        self.wait_until(
            lambda: self.namespace.is_listening(port), f"listening on port {port}", timeout
        )

    def wait_exit(self, timeout: float = 10) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout: float = 5) -> None:
        """Send SIGTERM to the program, then SIGKILL if it has not exited in `timeout` s."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=timeout)
        if self.popen.stdin is not None:
            self.popen.stdin.close()


class Network:
    """Three namespaces (host, relay, dpu) joined by veth pairs, all deleted on exit.

    Programs started with `start` are stopped before the namespaces are deleted.
    Deleting a namespace destroys the veth ends inside it, and with them their peers.
    """

    def __init__(self, folder: Path, *, ipv6: bool = False) -> None:
        prefix = f"an-{os.getpid()}-{next(_network_numbers)}"
        self.folder = folder
        self.ipv6 = ipv6
        self.host = Namespace(f"{prefix}-host")
        self.relay = Namespace(f"{prefix}-relay")
        self.dpu = Namespace(f"{prefix}-dpu")
        self.created: list[Namespace] = []
        self.processes: list[NamespaceProcess] = []

    def __enter__(self) -> Network:
        try:
            self._create()
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

    def _create(self) -> None:
        for namespace in (self.host, self.relay, self.dpu):
            run_ip("netns", "add", namespace.name)
            self.created.append(namespace)
            run_ip("-n", namespace.name, "link", "set", "lo", "up")

        # Each veth end is created directly inside its namespace, never in the caller's.
        self._link(self.host, HOST_LINK, self.relay, RELAY_HOST_LINK)
        self._link(self.relay, RELAY_DPU_LINK, self.dpu, DPU_LINK)
        self._address(self.host, HOST_LINK, f"{HOST_ADDRESS}/24")
        self._address(self.relay, RELAY_HOST_LINK, f"{RELAY_HOST_SIDE}/24")
        self._address(self.relay, RELAY_DPU_LINK, f"{RELAY_DPU_SIDE}/24")
        self._address(self.dpu, DPU_LINK, f"{DPU_ADDRESS}/24")
        run_ip("-n", self.dpu.name, "address", "add", f"{SERVICE_ADDRESS}/32", "dev", "lo")

        run_ip("-n", self.host.name, "route", "add", f"{DPU_ADDRESS}/32", "via", RELAY_HOST_SIDE)
        run_ip(
            "-n", self.host.name, "route", "add", f"{SERVICE_ADDRESS}/32", "via", RELAY_HOST_SIDE
        )
        run_ip("-n", self.relay.name, "route", "add", f"{SERVICE_ADDRESS}/32", "via", DPU_ADDRESS)
        run_ip("-n", self.dpu.name, "route", "add", f"{HOST_ADDRESS}/32", "via", RELAY_DPU_SIDE)
        self._sysctl(self.relay, "net.ipv4.ip_forward=1")
        if self.ipv6:
            self._create_ipv6()

    def _create_ipv6(self) -> None:
        # nodad: the addresses are usable at once instead of after duplicate
        # address detection, which would delay the first connection by a second or more.
        for namespace, link, address in (
            (self.host, HOST_LINK, HOST_ADDRESS6),
            (self.relay, RELAY_HOST_LINK, RELAY_HOST_SIDE6),
            (self.relay, RELAY_DPU_LINK, RELAY_DPU_SIDE6),
            (self.dpu, DPU_LINK, DPU_ADDRESS6),
        ):
            run_ip("-n", namespace.name, "address", "add", f"{address}/64", "dev", link, "nodad")
        run_ip("-n", self.dpu.name, "address", "add", f"{SERVICE_ADDRESS6}/128", "dev", "lo")
        routes = (
            (self.host, f"{DPU_ADDRESS6}/128", RELAY_HOST_SIDE6),
            (self.host, f"{SERVICE_ADDRESS6}/128", RELAY_HOST_SIDE6),
            (self.relay, f"{SERVICE_ADDRESS6}/128", DPU_ADDRESS6),
            (self.dpu, f"{HOST_ADDRESS6}/128", RELAY_DPU_SIDE6),
        )
        for namespace, destination, gateway in routes:
            run_ip("-n", namespace.name, "-6", "route", "add", destination, "via", gateway)
        self._sysctl(self.relay, "net.ipv6.conf.all.forwarding=1")

    @staticmethod
    def _sysctl(namespace: Namespace, setting: str) -> None:
        result = namespace.run("sysctl", "-q", "-w", setting, timeout=5)
        if result.returncode != 0:
            raise NamespaceSetupError(
                f"sysctl -w {setting} in {namespace.name} failed: {result.stderr.strip()}"
            )

    @staticmethod
    def _link(left: Namespace, left_name: str, right: Namespace, right_name: str) -> None:
        run_ip(
            "link", "add", left_name, "netns", left.name, "type", "veth",
            "peer", "name", right_name, "netns", right.name,
        )  # fmt: skip
        run_ip("-n", left.name, "link", "set", left_name, "up")
        run_ip("-n", right.name, "link", "set", right_name, "up")

    @staticmethod
    def _address(namespace: Namespace, link: str, address: str) -> None:
        run_ip("-n", namespace.name, "address", "add", address, "dev", link)

    def hijack_service_address(self) -> None:
        """Make the relay namespace accept the DPU's service address as its own.

        A local address wins over the forwarding route, so from now on the host's
        connections to the service address end in the relay namespace.
        """
        run_ip("-n", self.relay.name, "address", "add", f"{SERVICE_ADDRESS}/32", "dev", "lo")
        if self.ipv6:
            service = f"{SERVICE_ADDRESS6}/128"
            run_ip("-n", self.relay.name, "address", "add", service, "dev", "lo")

    def start(
        self,
        namespace: Namespace,
        *args: str,
        label: str,
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
        keep_stdin_open: bool = False,
    ) -> NamespaceProcess:
        """Start `args` inside `namespace`; `close` stops it if it still runs."""
        process = NamespaceProcess(
            namespace, args, self.folder, label, env, cwd, keep_stdin_open=keep_stdin_open
        )
        self.processes.append(process)
        return process

    def start_python(
        self, namespace: Namespace, *args: str, label: str, **kwargs: Any
    ) -> NamespaceProcess:
        """Start this interpreter unbuffered with `args` inside `namespace`."""
        env = dict(kwargs.pop("env", None) or os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        return self.start(namespace, sys.executable, *args, label=label, env=env, **kwargs)

    def close(self) -> None:
        """Stop every program started here, then delete every namespace created here."""
        errors: list[str] = []
        for process in reversed(self.processes):
            try:
                process.stop()
            except (OSError, subprocess.SubprocessError) as error:
                errors.append(f"cannot stop {process.label} (pid {process.popen.pid}): {error}")
        self.processes.clear()
        for namespace in reversed(self.created):
            try:
                run_ip("netns", "del", namespace.name)
            except (NamespaceSetupError, OSError, subprocess.SubprocessError) as error:
                errors.append(str(error))
        self.created.clear()
        if errors:
            raise NamespaceSetupError("; ".join(errors))


def existing_namespaces() -> set[str]:
    return {line.split()[0] for line in run_ip("netns", "list").splitlines() if line.strip()}


# -- programs run inside the namespaces --------------------------------------------------


def _parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


class _Direction:
    """One direction of the relay: attestation frames until the source's DONE, then bytes."""

    def __init__(self, name: str, source: Any, target: Any) -> None:
        self.name = name
        self.source = source
        self.target = target
        self.done = False
        self.closed = False

    def readable(self) -> bool:
        return bool(self.source.connection.pending()) or bool(
            select.select([self.source.sock], [], [], 0)[0]
        )

    def read(self) -> bytes | None:
        """Return the bytes available now (maybe none), or None once the source closed."""
        from OpenSSL import SSL

        try:
            return bytes(self.source.connection.recv(65536))
        except SSL.WantReadError:
            return b""
        except (SSL.Error, OSError):
            return None

    def send(self, data: bytes) -> None:
        """Send to the target. Once the target has closed, drop the data and print an event."""
        from OpenSSL import SSL

        try:
            self.target.send(data)
        except (SSL.Error, OSError) as error:
            _emit(event="send_failed", source=self.name, error=str(error))


class _Rewrapper:
    """The relay's replacement of the agent's authenticator by one it signs itself.

    The new authenticator carries the agent's evidence and responds to the host's
    request on the host's session with the relay's TLS key, so its CertificateVerify and
    Finished verify. Only the binder inside the evidence still belongs to the agent's
    session with the relay.
    """

    def __init__(self) -> None:
        self.request_body = b""

    def rewrap(self, authenticator: bytes, host_session: Any) -> bytes:
        from attestnet.tls import DEFAULT_CMW_EXTENSION_TYPE
        from attestnet.tls.messages import decode_authenticator, decode_cmw_attestation

        first_entry = decode_authenticator(authenticator).certificate.entries[0]
        extension = next(e for e in first_entry.extensions if e.type == DEFAULT_CMW_EXTENSION_TYPE)
        cmw = decode_cmw_attestation(extension.data)
        result: bytes = host_session.authenticator_for(
            self.request_body, cmw, sender_is_server=True
        )
        return result


def _forward_frames(direction: _Direction, rewrapper: _Rewrapper | None) -> None:
    """Forward every whole frame buffered from the source, up to and including DONE."""
    from attestnet.tls.errors import AlertDescription
    from attestnet.tls.frames import FrameType, decode_error, encode_frame

    while not direction.done:
        frame = direction.source.frames.next_frame()
        if frame is None:
            return
        body = frame.body
        event: dict[str, Any] = {"source": direction.name, "type": frame.type.name}
        if frame.type is FrameType.AUTHENTICATOR_REQUEST and rewrapper is not None:
            rewrapper.request_body = body
        if frame.type is FrameType.AUTHENTICATOR and rewrapper is not None:
            body = rewrapper.rewrap(body, direction.target)
            event["action"] = "rewrapped"
        if frame.type is FrameType.ERROR:
            event["alert"] = AlertDescription(decode_error(body)[0]).name
        direction.send(encode_frame(frame.type, body))
        _emit(event="frame", **event)
        if frame.type is FrameType.DONE:
            direction.done = True
            rest = direction.source.frames.take_rest()
            if rest:
                direction.send(rest)
                _emit(event="application_data", source=direction.name, size=len(rest))


def _relay(args: argparse.Namespace) -> int:
    """Accept one TLS client, open TLS to the upstream, and forward between them.

    The relay runs until both peers have closed or `args.timeout` passes. When one
    peer closes, the relay keeps reading the other, so the host's ERROR frame is
    still seen (and printed) after the agent has closed.
    """
    from tests.tls.conftest import RawPeer

    host, port = _parse_address(args.listen)
    listener = socket.create_server((host, port))
    listener.settimeout(args.timeout)
    _emit(event="listening", address=args.listen)
    downstream = RawPeer.accept(listener)
    listener.close()
    upstream = RawPeer.connect(_parse_address(args.upstream))
    _emit(event="sessions", downstream="host", upstream="agent")

    directions = [
        _Direction("host", downstream, upstream),
        _Direction("agent", upstream, downstream),
    ]
    rewrapper = _Rewrapper() if args.rewrap else None
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline:
            open_directions = [d for d in directions if not d.closed]
            if not open_directions:
                return 0
            select.select([d.source.sock for d in open_directions], [], [], 0.05)
            for direction in open_directions:
                if not direction.readable():
                    continue
                data = direction.read()
                if data is None:
                    direction.closed = True
                    _emit(event="closed", by=direction.name)
                elif direction.done:
                    direction.send(data)
                    _emit(event="application_data", source=direction.name, size=len(data))
                else:
                    direction.source.frames.feed(data)
                    _forward_frames(direction, rewrapper)
        _emit(event="timeout")
        return 1
    finally:
        downstream.close()
        upstream.close()


def _connect(args: argparse.Namespace) -> int:
    """Attest the agent at `args.address` as relying party and print the outcome as JSON."""
    from OpenSSL import SSL

    from attestnet.appraisal import Verifier, load_policy
    from attestnet.errors import AttestnetError
    from attestnet.tls.blocking import connect
    from attestnet.tls.config import AttestedTLSConfig, Binding, Role

    config = AttestedTLSConfig(
        binding=Binding.EXPAT,
        role=Role.RELYING_PARTY,
        appraiser=Verifier(load_policy(args.policy)),
        handshake_timeout=args.timeout,
    )
    host, port = _parse_address(args.address)
    outcome: dict[str, Any]
    started = time.monotonic()
    try:
        with connect(host, port, config) as connection:
            data = connection.recv(65536)
            outcome = {"accepted": True, "application_data": data.decode(errors="replace")}
    except (AttestnetError, SSL.Error, OSError) as error:
        outcome = {
            "accepted": False,
            "error": type(error).__name__,
            "check": getattr(error, "check", None),
            "message": str(error),
        }
    outcome["seconds"] = round(time.monotonic() - started, 3)
    _emit(**outcome)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.tls.netns_support")
    commands = parser.add_subparsers(dest="command", required=True)
    relay = commands.add_parser("relay", help="relay one host connection to the agent")
    relay.add_argument("--listen", required=True, metavar="HOST:PORT")
    relay.add_argument("--upstream", required=True, metavar="HOST:PORT")
    relay.add_argument(
        "--rewrap",
        action="store_true",
        help="move the agent's evidence into an authenticator signed by the relay's key",
    )
    relay.add_argument(
        "--timeout",
        type=float,
        default=8.0,
        metavar="SECONDS",
        help="exit after this many seconds even if a peer is still connected (default: 8)",
    )
    relay.set_defaults(handler=_relay)

    client = commands.add_parser("connect", help="attest an agent, print the outcome as JSON")
    client.add_argument("address", metavar="HOST:PORT")
    client.add_argument("--policy", required=True, type=Path)
    client.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="handshake timeout: TLS handshake plus attestation (default: 2)",
    )
    client.set_defaults(handler=_connect)

    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
