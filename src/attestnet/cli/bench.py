"""`attestnet bench`: what attestation costs over plain TLS 1.3, on loopback.

For each binding and attester, the benchmark opens connections one after another
and measures connection set-up until the first application byte arrives at the
host. Scenarios run interleaved (one connection of each in turn), so that drift
of the machine affects them alike, and the ratio to `none` comes from the same run.
It also times one appraisal of a piece of evidence on its own.

By default the agents of every scenario, baseline included, run in one forked
child process and the host in this one, as on a DPU and a host, which do not share
an interpreter lock. `--agents thread` runs them as threads of this process
instead, for comparison with older numbers. The agents' phase timings come back
from the child when it stops.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import OpenSSL

from attestnet.cli._lab import GREETING, Agent, AgentProcess, Lab
from attestnet.errors import ConfigError
from attestnet.tls.config import Attester, Binding

__all__ = ["add_bench_parser", "render_markdown", "run_benchmark"]

PHASES = (
    "tls_handshake",
    "evidence",
    "authenticator_build",
    "transfer",
    "signature_verification",
    "appraisal",
)
# Phases that run on the attester (the agent, here the TLS server); the others are
# taken from the host's side of the connection.
ATTESTER_PHASES = frozenset({"evidence", "authenticator_build"})
_WARMUP = 10
AGENT_MODES = ("process", "thread")


@dataclass
class Scenario:
    name: str
    binding: Binding
    attester_name: str | None
    agent: Agent | None = None
    setup_ms: list[float] = field(default_factory=list)
    client_phases: list[dict[str, float]] = field(default_factory=list)


def add_bench_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure attested TLS set-up against plain TLS on loopback",
        description="Open N connections per scenario (none, cert and expat with the "
        "sim and TPM attesters), interleaved, and print median set-up time to the first "
        "application byte, the ratio to plain TLS and a per-phase breakdown.",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=200,
        metavar="N",
        help="connections per scenario, after 10 warm-up connections (default: 200)",
    )
    parser.add_argument(
        "--no-tpm", action="store_true", help="skip the TPM scenarios (no swtpm needed)"
    )
    parser.add_argument(
        "--agents",
        choices=AGENT_MODES,
        default="process",
        help="run the agents in one child process (default) or as threads of the host's process",
    )
    parser.add_argument(
        "--output", type=Path, metavar="FILE", help="also write the report as Markdown to FILE"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=run_bench_command)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    openssl = OpenSSL.SSL.SSLeay_version(OpenSSL.SSL.SSLEAY_VERSION).decode()
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {openssl}"
    )


def _one_connection(lab: Lab, scenario: Scenario) -> tuple[float, dict[str, float]]:
    assert scenario.agent is not None
    start = time.perf_counter()
    connection = lab.connect(scenario.agent, scenario.binding)
    try:
        first = connection.recv(len(GREETING))
        elapsed = time.perf_counter() - start
        if not first:
            raise ConfigError(f"scenario {scenario.name}: agent closed without a greeting")
        return elapsed, dict(connection.timings)
    finally:
        connection.close()


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _time_appraisal(lab: Lab, attester: Attester, count: int) -> float:
    binder = os.urandom(32)
    evidence = attester.evidence(binder)
    at = datetime.now(UTC)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        lab.verifier.appraise(evidence, binder=binder, at=at)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def run_benchmark(
    connections: int, with_tpm: bool, progress: bool = True, agents: str = "process"
) -> dict[str, Any]:
    """Run every scenario in one lab and return the results as a JSON-ready dict.

    `agents` is "process" (all agents in one child process) or "thread".
    """
    if connections < 1:
        raise ConfigError(f"--connections {connections} must be at least 1")
    if agents not in AGENT_MODES:
        raise ConfigError(f"--agents {agents!r}: use one of {', '.join(AGENT_MODES)}")
    with Lab(with_tpm=with_tpm) as lab:
        attesters: dict[str, Attester] = {"sim": lab.sim}
        if with_tpm:
            attesters["tpm"] = lab.tpm
        scenarios = [Scenario("none", Binding.NONE, None)]
        for binding in (Binding.CERT, Binding.EXPAT):
            scenarios.extend(Scenario(f"{binding}/{a}", binding, a) for a in attesters)
        # Before the agent process starts: it shares the TPM attester's connection.
        appraisal_ms = {name: _time_appraisal(lab, a, 200) for name, a in attesters.items()}
        agent_process: AgentProcess | None = None
        if agents == "process":
            agent_process = lab.start_agent_process(
                {s.name: (attesters.get(s.attester_name or ""), s.binding) for s in scenarios}
            )
            for scenario in scenarios:
                scenario.agent = agent_process.agents[scenario.name]
        else:
            for scenario in scenarios:
                attester = attesters.get(scenario.attester_name or "")
                scenario.agent = lab.start_agent(scenario.name, attester, scenario.binding)

        total = (connections + _WARMUP) * len(scenarios)
        done = 0
        for round_index in range(connections + _WARMUP):
            for scenario in scenarios:
                elapsed, phases = _one_connection(lab, scenario)
                if round_index >= _WARMUP:
                    scenario.setup_ms.append(elapsed * 1000)
                    scenario.client_phases.append(phases)
                done += 1
            if progress and (round_index % 20 == 0 or round_index == connections + _WARMUP - 1):
                print(f"\rbench: {done}/{total} connections", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        if agent_process is not None:
            agent_process.stop()

        baseline = _median_ms(scenarios[0].setup_ms)
        rows = []
        for scenario in scenarios:
            assert scenario.agent is not None
            server_phases = scenario.agent.server_timings[_WARMUP:]
            phase_ms = {}
            for phase in PHASES:
                side = server_phases if phase in ATTESTER_PHASES else scenario.client_phases
                values = [p[phase] * 1000 for p in side if phase in p]
                phase_ms[phase] = _median_ms(values) if values else None
            median = _median_ms(scenario.setup_ms)
            rows.append(
                {
                    "scenario": scenario.name,
                    "connections": len(scenario.setup_ms),
                    "median_ms": median,
                    "p90_ms": statistics.quantiles(scenario.setup_ms, n=10)[-1]
                    if len(scenario.setup_ms) >= 2
                    else median,
                    "ratio_to_none": median / baseline,
                    "phases_ms": phase_ms,
                    "agent_failures": len(scenario.agent.failures),
                }
            )
    return {
        "machine": machine_description(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "connections_per_scenario": connections,
        "agents": agents,
        "rows": rows,
        "appraisal_median_ms": appraisal_ms,
    }


def _cell(value: float | None) -> str:
    # A phase the scenario does not run is reported by the TLS layer as zero.
    return "-" if not value else f"{value:.3f}"


def render_markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']}",
        f"Connections per scenario: {results['connections_per_scenario']} (after {_WARMUP} "
        "warm-up connections), interleaved; times in milliseconds, medians.",
        "Agents: "
        + (
            "one child process for all scenarios, host in the parent."
            if results.get("agents", "process") == "process"
            else "threads in the host's process (sharing its interpreter lock)."
        ),
        "",
        "| scenario | median set-up to first byte | p90 | ratio to none |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['scenario']} | {row['median_ms']:.3f} | {row['p90_ms']:.3f} | "
            f"{row['ratio_to_none']:.2f} |"
        )
    lines += ["", "| scenario | " + " | ".join(PHASES) + " |", "| --- |" + " ---: |" * len(PHASES)]
    for row in results["rows"]:
        cells = " | ".join(_cell(row["phases_ms"][phase]) for phase in PHASES)
        lines.append(f"| {row['scenario']} | {cells} |")
    lines += [
        "",
        "Phases: evidence and authenticator_build are measured on the agent, the others on "
        "the host; transfer is the host's wall time for the attestation exchange minus its "
        "own computing time, so it includes the agent's work; '-' marks a phase the "
        "scenario does not have.",
    ]
    lines += ["", "Appraisal of one piece of evidence alone (median of 200):", ""]
    for name, value in results["appraisal_median_ms"].items():
        lines.append(f"- {name}: {value:.3f} ms")
    return "\n".join(lines)


def run_bench_command(args: argparse.Namespace) -> int:
    results = run_benchmark(args.connections, with_tpm=not args.no_tpm, agents=args.agents)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render_markdown(results))
    if args.output is not None:
        args.output.write_text(render_markdown(results) + "\n")
    return 0
