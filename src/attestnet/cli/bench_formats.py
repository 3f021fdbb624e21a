"""`attestnet bench-formats`: verification speed per evidence format, on the corpus.

For each format, one corpus sample is verified repeatedly with a cold certificate
signature cache. The signature and MAC checks of one verification are recorded
and replayed on their own in the same run, so the table shows what parsing and the
other checks add on top of the cryptography.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from attestnet.cli._common import parse_time, read_evidence_file
from attestnet.cli.bench import machine_description
from attestnet.errors import ConfigError
from attestnet.evidence import registry
from attestnet.evidence.anchors import load_anchors, load_collateral
from attestnet.evidence.model import Collateral, TrustAnchors
from attestnet.evidence.psa import load_hmac_key
from attestnet.evidence.signatures import record_signatures, replay
from attestnet.evidence.x509chain import clear_signature_cache

__all__ = ["CASES", "add_bench_formats_parser", "run_format_benchmark"]


@dataclass(frozen=True)
class Case:
    """One corpus sample, with what verifies it and when it is valid."""

    label: str
    format: str
    evidence: str
    anchors: tuple[str, ...] = ()
    collateral: tuple[str, ...] = ()
    at: str | None = None
    hmac_key: str | None = None


CASES = (
    Case("psa (COSE_Sign1)", "psa", "psa/tfm_psa-2_0_0_sign1.cbor", ("psa/tfm_iak_public.pem",)),
    Case(
        "psa (COSE_Mac0)", "psa", "psa/rfc9783_psa-mac0.cbor", hmac_key="psa/rfc9783_tfm-hs-iak.bin"
    ),
    Case("cca", "cca", "cca/tfmtools_cca_example_token.cbor", ("cca/cca_cpak_public.pem",)),
    Case(
        "tpm (go-tpm-tools)",
        "gotpm",
        "tpm/gce-cos-85-nonce9009.attestation.pb",
        ("tpm/gce_tpm_ek_root_1.cer",),
        ("tpm/gce_tpm_ek_intermediate_2.crt",),
    ),
    Case(
        "sev-snp",
        "sev-snp",
        "sev-snp/gsg_attestation.bin",
        ("sev-snp/amd_ask_ark_milan.pem",),
        ("sev-snp/gsg_vcek.der",),
        "2024-01-01T00:00:00Z",
    ),
    Case(
        "tdx (DCAP v4)",
        "dcap",
        "tdx/dq_tdx_quote_v4.dat",
        ("tdx/intel_sgx_root_ca.pem",),
        ("tdx/dq_tdx_quote_v4_collateral.json",),
        "2025-07-01T00:00:00Z",
    ),
    Case(
        "nitro",
        "nitro",
        "nitro/evervault_ga_attestation_doc.b64",
        ("nitro/aws_nitro_root_g1.pem",),
        (),
        "2023-09-18T15:03:31Z",
    ),
    Case(
        "nvidia spdm",
        "spdm",
        "nvidia/nvtrust_hopperAttestationReport.hex.txt",
        ("nvidia/nvidia_device_identity_ca.pem",),
        ("nvidia/nvtrust_hopperCertChain.pem",),
    ),
    Case("ear (JWT)", "ear", "ear/veraison_ear_testJWT.jwt", ("ear/veraison_ear_pkey.jwk.json",)),
    Case(
        "corim (signed)",
        "corim",
        "corim/signed-good-corim.cbor",
        ("corim/signed-good-corim_signer_ec-p256.jwk",),
        (),
        "2024-01-01T00:00:00Z",
    ),
)


def _default_corpus() -> Path:
    override = os.environ.get("ATTESTNET_CORPUS")
    if override:
        return Path(override)
    # src/attestnet/cli/bench_formats.py -> the folder that contains the checkout.
    return Path(__file__).resolve().parents[4] / "shared" / "corpus"


def add_bench_formats_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench-formats",
        help="measure evidence verification speed per format on the corpus",
        description="Verify one corpus sample per format N times and compare with its "
        "signature checks alone, replayed in the same run.",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        metavar="DIR",
        default=_default_corpus(),
        help="evidence corpus folder (default: $ATTESTNET_CORPUS, else shared/corpus beside "
        "the source checkout)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=300,
        metavar="N",
        help="verifications per format (default: 300)",
    )
    parser.add_argument("--output", type=Path, metavar="FILE", help="also write Markdown to FILE")
    parser.set_defaults(handler=run_bench_formats_command)


def _median_seconds(action: Callable[[], None], iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _measure(case: Case, corpus: Path, iterations: int) -> dict[str, Any]:
    data = read_evidence_file(corpus / case.evidence)
    anchors = load_anchors([corpus / a for a in case.anchors])
    if case.hmac_key is not None:
        key = load_hmac_key(corpus / case.hmac_key)
        anchors = anchors.merged(TrustAnchors(symmetric_keys=(key,)))
    collateral = load_collateral([corpus / c for c in case.collateral]) or Collateral()
    at = parse_time(case.at) if case.at else datetime.now().astimezone()
    module = registry.load(case.format)

    def verify() -> None:
        clear_signature_cache()
        module.verify(data, anchors=anchors, at=at, collateral=collateral)

    verify()  # warm-up; raises if the sample does not verify
    with record_signatures() as checks:
        verify()
    total = _median_seconds(verify, iterations)
    signatures = _median_seconds(lambda: replay(checks), iterations)
    return {
        "label": case.label,
        "verifications_per_second": 1 / total,
        "verify_ms": total * 1000,
        "signature_checks": len(checks),
        "signatures_ms": signatures * 1000,
        "overhead": total / signatures - 1,
    }


def run_format_benchmark(corpus: Path, iterations: int) -> dict[str, Any]:
    if not (corpus / "MANIFEST.tsv").is_file():
        raise ConfigError(f"evidence corpus not found at {corpus}; give --corpus DIR")
    if iterations < 1:
        raise ConfigError(f"--iterations {iterations} must be at least 1")
    rows = []
    for index, case in enumerate(CASES, 1):
        print(f"\rbench-formats: {index}/{len(CASES)} {case.label:<24}", end="", file=sys.stderr)
        rows.append(_measure(case, corpus, iterations))
    print(file=sys.stderr)
    return {
        "machine": machine_description(),
        "iterations": iterations,
        "corpus": str(corpus),
        "rows": rows,
    }


def render_format_markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']}",
        f"Corpus: {results['corpus']}",
        f"Iterations per format: {results['iterations']}, medians, cold certificate cache.",
        "",
        "| format | verifications/s | verify (ms) | signature checks | signatures alone (ms) "
        "| parsing and other checks |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['label']} | {row['verifications_per_second']:.0f} | {row['verify_ms']:.3f} "
            f"| {row['signature_checks']} | {row['signatures_ms']:.3f} | "
            f"{row['overhead'] * 100:+.0f}% |"
        )
    return "\n".join(lines)


def run_bench_formats_command(args: argparse.Namespace) -> int:
    results = run_format_benchmark(args.corpus, args.iterations)
    report = render_format_markdown(results)
    print(report)
    if args.output is not None:
        args.output.write_text(report + "\n")
    return 0
