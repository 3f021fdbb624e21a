"""`attestnet demo`: a host attests DPU agents over attested TLS on loopback.

Everything runs on 127.0.0.1 with embedded defaults: a private swtpm, a sim
platform key in a temporary folder, agents in background threads. The demo shows
a TPM agent and a sim agent accepted, then a sim agent with changed code and a TPM
agent with an extended PCR rejected with the failed check named, and ends with the
benchmark table. Every process and file it started is gone when it returns.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from OpenSSL import SSL

from attestnet.appraisal import AppraisalResult
from attestnet.cli._lab import GREETING, Lab
from attestnet.cli.bench import render_markdown, run_benchmark
from attestnet.errors import AttestnetError, ConfigError, VerificationError
from attestnet.tls.config import Attester, Binding

__all__ = ["add_demo_parser"]


def add_demo_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the attested TLS demo on loopback (no configuration needed)",
        description="Start a private swtpm and DPU agents on 127.0.0.1, attest them over "
        "expat, show tampered agents rejected, and end with the benchmark table.",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=200,
        metavar="N",
        help="connections per benchmark scenario (default: 200; 0 skips the benchmark)",
    )
    parser.add_argument(
        "--no-tpm", action="store_true", help="use only the sim attester (no swtpm needed)"
    )
    parser.set_defaults(handler=run_demo)


def _print_checks(checks: list[str]) -> None:
    for check in checks:
        print(f"      PASS {check}")


def _attest(lab: Lab, label: str, attester: Attester, expect_ok: bool) -> bool:
    """Attest one agent as the host and print the outcome; return True if it went as expected."""
    agent = lab.start_agent(label, attester, Binding.EXPAT)
    print(f"  host -> {label} (127.0.0.1:{agent.port}, binding expat)")
    try:
        connection = lab.connect(agent, Binding.EXPAT)
    except VerificationError as error:
        _print_checks(error.checks_passed)
        print(f"      FAIL {error}")
        print(
            f"    REJECTED at check '{error.check}'" + (f" on {error.claim}" if error.claim else "")
        )
        return not expect_ok
    except (AttestnetError, SSL.Error) as error:
        print(f"    REJECTED: {error}")
        return not expect_ok
    with connection:
        result: AppraisalResult = connection.peer_result
        _print_checks(result.checks)
        greeting = connection.recv(len(GREETING)).decode(errors="replace").strip()
        print(f"    ACCEPTED: EAR status {result.status}, trust vector {result.trust_vector}")
        print(f"    application data after attestation: {greeting!r}")
    return expect_ok


def run_demo(args: argparse.Namespace) -> int:
    if args.connections < 0:
        raise ConfigError(f"--connections {args.connections} must be 0 (no benchmark) or more")
    with_tpm = not args.no_tpm
    if args.verbose == 0:
        # The demo prints each rejection itself; the library's warning would repeat it.
        logging.getLogger("attestnet.tls").setLevel(logging.ERROR)
    outcomes: list[bool] = []
    print("attestnet demo: a host attests DPU agents over attested TLS (expat) on 127.0.0.1\n")
    print("[1] setting up: sim platform key" + (", swtpm and AK enrolment" if with_tpm else ""))
    with Lab(with_tpm=with_tpm) as lab:
        print(
            f"    policy {lab.policy.id!r} allows {sorted(lab.policy.allowed)}; reference values:"
        )
        for format, values in sorted(lab.policy.reference_values.items()):
            names = ", ".join(sorted(values))
            print(f"      {format}: {names}")

        print("\n[2] genuine agents")
        if with_tpm:
            outcomes.append(_attest(lab, "DPU agent with TPM 2.0 (swtpm)", lab.tpm, True))
        outcomes.append(_attest(lab, "DPU agent with the sim TEE simulator", lab.sim, True))

        print("\n[3] tampered agents")
        outcomes.append(
            _attest(lab, "sim agent whose code changed by one line", lab.tampered_sim(), False)
        )
        if with_tpm:
            lab.tpm.extend_pcr(7, os.urandom(32))
            outcomes.append(_attest(lab, "TPM agent after PCR 7 was extended", lab.tpm, False))

    if args.connections > 0:
        print(f"\n[4] benchmark: {args.connections} connections per scenario")
        print(render_markdown(run_benchmark(args.connections, with_tpm=with_tpm)))

    print("\ncleaned up: agents stopped, swtpm stopped, temporary files removed")
    if all(outcomes):
        print("demo finished: genuine agents accepted, tampered agents rejected")
        return 0
    print("demo FAILED: an agent was not accepted or rejected as expected")
    return 1
