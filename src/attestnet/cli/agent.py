"""`attestnet agent` (serve as an attester, the DPU side) and `attestnet attest HOST:PORT`."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from OpenSSL import SSL

from attestnet.appraisal import AppraisalResult, Verifier, load_policy
from attestnet.attesters.sim import SimAttester
from attestnet.cli._lab import GREETING
from attestnet.errors import AttestnetError, ConfigError, MalformedEvidence, VerificationError
from attestnet.tls.blocking import AttestedServer, connect, listen
from attestnet.tls.config import AttestedTLSConfig, Attester, Binding, Role
from attestnet.tls.errors import AttestationProtocolError

__all__ = ["add_agent_parser", "add_attest_parser", "parse_address"]

logger = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path.home() / ".local" / "state" / "attestnet" / "agent"


def parse_address(text: str) -> tuple[str, int]:
    """Parse HOST:PORT (IPv6 as [::1]:PORT) for argparse."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise argparse.ArgumentTypeError(
            f"invalid address {text!r}; use HOST:PORT such as 127.0.0.1:8443"
        )
    return host.strip("[]"), int(port_text)


def _binding(text: str) -> Binding:
    try:
        return Binding(text)
    except ValueError:
        choices = ", ".join(b.value for b in Binding)
        raise argparse.ArgumentTypeError(
            f"invalid binding {text!r}; use one of {choices}"
        ) from None


def add_agent_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "agent",
        help="serve as an attester (the DPU side) until interrupted",
        description="Listen for TLS 1.3 connections, prove with attestation what this agent "
        "is and runs, then greet the peer. --write-policy writes the trust anchor and "
        "reference values a relying party needs for `attestnet attest`.",
    )
    parser.add_argument(
        "--listen",
        type=parse_address,
        default=("127.0.0.1", 8443),
        metavar="HOST:PORT",
        help="address to listen on (default: 127.0.0.1:8443)",
    )
    parser.add_argument(
        "--attester",
        choices=["sim", "tpm"],
        default="sim",
        help="evidence source: sim (software TEE simulator) or tpm (default: sim)",
    )
    parser.add_argument(
        "--binding",
        type=_binding,
        default=Binding.EXPAT,
        metavar="BINDING",
        help="expat (default), cert (replayable baseline) or none (plain TLS)",
    )
    parser.add_argument(
        "--tcti",
        metavar="TCTI",
        help="tpm2-tss TCTI of the TPM, e.g. device:/dev/tpmrm0 (default: start a private swtpm)",
    )
    parser.add_argument(
        "--pcrs",
        default="sha256:0-7",
        metavar="SELECTION",
        help="PCR selection to quote, e.g. sha256:0-7,14 (default: sha256:0-7)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        metavar="DIR",
        help=f"folder for the sim platform key and swtpm state (default: {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="agent configuration file, any format: the sim attester measures its bytes",
    )
    parser.add_argument(
        "--write-policy",
        type=Path,
        metavar="FILE",
        help="write a relying-party policy (TOML) with anchors and reference values to FILE",
    )
    parser.set_defaults(handler=run_agent)


def add_attest_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "attest",
        help="connect to an agent as relying party and print each check",
        description="Connect over TLS 1.3, appraise the agent's evidence under --policy, "
        "print each check with its result, and exit non-zero when any check fails.",
    )
    parser.add_argument(
        "address", type=parse_address, metavar="HOST:PORT", help="address of the agent"
    )
    parser.add_argument(
        "--policy",
        type=Path,
        required=True,
        metavar="FILE",
        help="TOML appraisal policy (for example one written by `agent --write-policy`)",
    )
    parser.add_argument(
        "--binding",
        type=_binding,
        default=Binding.EXPAT,
        metavar="BINDING",
        help="expat (default) or cert; must match the agent's --binding",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time allowed for the TLS handshake and the attestation exchange (default: 10)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run_attest)


def _write_policy(path: Path, format: str, anchor_pem: bytes, reference: dict[str, bytes]) -> None:
    anchor_path = path.with_suffix(".anchor.pem")
    anchor_path.write_bytes(anchor_pem)
    lines = [
        f'id = "agent-{format}"',
        f'allowed = ["{format}"]',
        "",
        "[anchors]",
        f'{format} = ["{anchor_path.name}"]',
        "",
        f"[reference_values.{format}]",
    ]
    lines += [f'"{name}" = ["{value.hex()}"]' for name, value in sorted(reference.items())]
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote relying-party policy {path} and trust anchor {anchor_path}")


def _sim_attester(args: argparse.Namespace) -> SimAttester:
    config = b""
    if args.config is not None:
        try:
            config = args.config.read_bytes()
        except OSError as exc:
            message = f"cannot read agent configuration {args.config}: {exc.strerror}"
            raise ConfigError(message) from None
    attester = SimAttester.from_files(args.state_dir / "sim-platform.pem", config=config)
    if args.write_policy is not None:
        _write_policy(
            args.write_policy, "sim", attester.platform_public_pem(), attester.reference_values()
        )
    return attester


def _tpm_attester(args: argparse.Namespace, stack: contextlib.ExitStack) -> Attester:
    from attestnet.attesters.swtpm import Swtpm
    from attestnet.attesters.tpm import TpmAttester, enroll_ak

    if args.tcti is None:
        swtpm = stack.enter_context(Swtpm(args.state_dir / "swtpm"))
        attester = stack.enter_context(TpmAttester(swtpm.tcti, pcrs=args.pcrs))
        local_ca = swtpm.local_ca()
        enroll_ak(attester, local_ca)
        anchor_pem = local_ca.root.public_bytes(Encoding.PEM)
    else:
        attester = stack.enter_context(TpmAttester(args.tcti, pcrs=args.pcrs))
        anchor_pem = attester.ak_public.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
    if args.write_policy is not None:
        reference = {f"pcr/sha256/{i}": v for (_, i), v in sorted(attester.read_pcrs().items())}
        _write_policy(args.write_policy, "tpm", anchor_pem, reference)
    return attester


# Handshakes run in worker threads, so one slow or idle client does not hold up the
# others; beyond this many at once, new connections are closed and logged.
MAX_CONCURRENT_HANDSHAKES = 32


class _SerialAttester:
    """Produce evidence one request at a time: a TPM context is not thread-safe."""

    def __init__(self, attester: Attester) -> None:
        self._attester = attester
        self._lock = threading.Lock()

    def evidence(self, binder: bytes) -> bytes:
        with self._lock:
            return self._attester.evidence(binder)


def _peer_name(client: socket.socket) -> str:
    try:
        host, port = client.getpeername()[:2]
    except OSError:
        return "a disconnected peer"
    return f"{host}:{port}"


def _handle(server: AttestedServer, client: socket.socket, slots: threading.Semaphore) -> None:
    peer = _peer_name(client)
    try:
        connection = server.establish(client)
    except (AttestnetError, SSL.Error, OSError) as exc:
        logger.warning("connection from %s failed: %s", peer, exc)
        return
    finally:
        slots.release()
    with connection:
        logger.info("attested connection %s from %s", connection.connection_id, peer)
        with contextlib.suppress(AttestnetError, SSL.Error, OSError):
            connection.sendall(GREETING)


def _serve(server: AttestedServer, stopping: threading.Event) -> None:
    slots = threading.BoundedSemaphore(MAX_CONCURRENT_HANDSHAKES)
    while not stopping.is_set():
        try:
            client = server.accept_socket(timeout=0.5)
        except TimeoutError:
            continue
        except OSError as exc:
            logger.warning("accept failed: %s", exc)
            continue
        if not slots.acquire(blocking=False):
            logger.warning(
                "closed a connection from %s: %d handshakes already running",
                _peer_name(client),
                MAX_CONCURRENT_HANDSHAKES,
            )
            client.close()
            continue
        threading.Thread(target=_handle, args=(server, client, slots), daemon=True).start()


def run_agent(args: argparse.Namespace) -> int:
    args.state_dir.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with contextlib.ExitStack() as stack:
        attester: Attester | None = None
        if args.binding is not Binding.NONE:
            attester = _SerialAttester(
                _sim_attester(args) if args.attester == "sim" else _tpm_attester(args, stack)
            )
        # The agent proves itself to the host; authenticating the host is left to the
        # application above, hence insecure_unauthenticated_peer.
        config = AttestedTLSConfig(
            binding=args.binding,
            role=Role.ATTESTER,
            attester=attester,
            insecure_unauthenticated_peer=True,
        )
        host, port = args.listen
        try:
            server = stack.enter_context(listen(host, port, config))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        print(f"agent listening on {host}:{server.address[1]} ({args.attester}, {args.binding})")
        logger.info("agent started on %s:%d", host, server.address[1])
        _serve(server, stopping)
    logger.info("agent stopped")
    print("agent stopped")
    return 0


def _print_rejection(args: argparse.Namespace, error: Exception) -> int:
    checks = list(getattr(error, "checks_passed", []))
    message = str(error)
    if isinstance(error, AttestationProtocolError):
        message += f" (does the agent use --binding {args.binding}?)"
    if args.json:
        document = {
            "verdict": "rejected",
            "checks": checks,
            "failed_check": getattr(error, "check", None),
            "error": message,
        }
        print(json.dumps(document, indent=2, default=str))
        return 1
    for check in checks:
        print(f"PASS {check}")
    print(f"FAIL {message}")
    print("verdict: rejected")
    return 1


def run_attest(args: argparse.Namespace) -> int:
    if args.binding is Binding.NONE:
        raise ConfigError("binding none has no attestation to check; use expat or cert")
    if args.verbose == 0:
        # Each failure is printed as a FAIL line; the library's warning would repeat it.
        logging.getLogger("attestnet.tls").setLevel(logging.ERROR)
    verifier = Verifier(load_policy(args.policy))
    config = AttestedTLSConfig(
        binding=args.binding,
        role=Role.RELYING_PARTY,
        appraiser=verifier,
        handshake_timeout=args.timeout,
    )
    host, port = args.address
    try:
        connection = connect(host, port, config)
    except (VerificationError, MalformedEvidence, AttestationProtocolError) as error:
        return _print_rejection(args, error)
    except SSL.Error as exc:
        raise ConfigError(
            f"TLS with {host}:{port} failed: {exc}; is it an attestnet agent?"
        ) from None
    except ConnectionRefusedError:
        raise ConfigError(f"connection to {host}:{port} refused; is the agent running?") from None
    except OSError as exc:
        raise ConfigError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    with connection:
        result: AppraisalResult = connection.peer_result
        greeting = connection.recv(len(GREETING)).decode(errors="replace").strip()
        if args.json:
            document = {
                "verdict": result.status,
                "checks": result.checks,
                "trust_vector": result.trust_vector,
                "claims": result.evidence.claims,
                "application_data": greeting,
            }
            print(json.dumps(document, indent=2, default=str))
        else:
            for check in result.checks:
                print(f"PASS {check}")
            print(f"verdict: {result.status}; trust vector {result.trust_vector}")
            print(f"application data: {greeting!r}")
    return 0
