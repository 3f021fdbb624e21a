"""`attestnet verify FILE` and `attestnet collateral import`: offline evidence appraisal."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attestnet.appraisal import AppraisalResult, Policy, Verifier, load_policy
from attestnet.appraisal.corim_match import appraise_psa
from attestnet.appraisal.verifier import nonce_matches
from attestnet.cli._common import collateral_cache_dir, parse_hex, parse_time, read_evidence_file
from attestnet.errors import ConfigError, MalformedEvidence, VerificationError
from attestnet.evidence import corim, registry
from attestnet.evidence.anchors import load_anchors, load_collateral, load_collateral_file
from attestnet.evidence.model import Collateral, TrustAnchors
from attestnet.evidence.psa import load_hmac_key

__all__ = ["add_collateral_parser", "add_verify_parser"]


def add_verify_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify an evidence or attestation-result file offline",
        description=(
            "Parse FILE, verify its signatures and certificate chains against the given "
            "trust anchors at the given time, print the claims and each check, and exit "
            "0 only when the verdict is affirming. Never opens a network connection."
        ),
    )
    parser.add_argument("file", type=Path, help="evidence file (binary, hex, base64 or JWT)")
    parser.add_argument(
        "--format",
        choices=sorted(registry.FORMATS),
        help="evidence format (default: detected from the bytes)",
    )
    parser.add_argument(
        "--anchor",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="trust anchor: PEM or DER certificate or bundle, PEM public key, or JWK; repeatable",
    )
    parser.add_argument(
        "--hmac-key",
        type=Path,
        metavar="FILE",
        help="raw symmetric key file for MAC-protected evidence (PSA COSE_Mac0)",
    )
    parser.add_argument(
        "--collateral",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="file or folder of intermediate certificates, CRLs or collateral JSON; repeatable",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="do not read collateral from the cache folder (see `attestnet collateral import`)",
    )
    parser.add_argument(
        "--at",
        type=parse_time,
        metavar="TIME",
        help="verification time, RFC 3339 such as 2024-01-01T00:00:00Z (default: now)",
    )
    parser.add_argument(
        "--nonce",
        type=parse_hex,
        metavar="HEX",
        help="expected nonce in the evidence, in hex; for SEV-SNP and TDX/SGX the 64-byte "
        "report data may carry it followed by zero bytes",
    )
    parser.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="TOML appraisal policy with reference values (default: signatures only)",
    )
    parser.add_argument(
        "--corim",
        type=Path,
        metavar="FILE",
        help="appraise PSA evidence against this unsigned CoRIM: the attestation key and "
        "the reference values come from it (no --anchor needed)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=run_verify)


def add_collateral_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "collateral",
        help="manage the local collateral cache",
        description="Collateral (VCEKs, PCK chains, CRLs, TCB info) used by `attestnet verify`.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    importer = actions.add_parser(
        "import",
        help="check and copy collateral files into the cache folder",
        description="Parse each file (certificate, CRL or collateral JSON) and copy it into "
        "the cache folder ($ATTESTNET_COLLATERAL_CACHE or ~/.cache/attestnet/collateral).",
    )
    importer.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="certificate (PEM or DER), CRL or collateral JSON file",
    )
    importer.set_defaults(handler=run_collateral_import)
    lister = actions.add_parser(
        "list",
        help="list the files in the cache folder",
        description="List the collateral files that `attestnet verify` reads from the cache.",
    )
    lister.set_defaults(handler=run_collateral_list)


def run_collateral_import(args: argparse.Namespace) -> int:
    cache = collateral_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        collateral = load_collateral_file(path)
        kinds = (
            f"{len(collateral.certificates)} certificates, {len(collateral.crls)} CRLs, "
            f"{len(collateral.documents)} documents"
        )
        shutil.copyfile(path, cache / path.name)
        print(f"imported {path} ({kinds}) into {cache}")
    return 0


def run_collateral_list(args: argparse.Namespace) -> int:
    cache = collateral_cache_dir()
    files = sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []
    print(f"{cache}: {len(files)} files")
    for name in files:
        print(f"  {name}")
    return 0


def _build_verifier(args: argparse.Namespace, format: str) -> Verifier:
    if args.policy is not None:
        return Verifier(load_policy(args.policy))
    # Without a policy the report prints "NOT APPRAISED" for the measurements itself,
    # so the verifier's per-use warning about the signatures-only policy is muted.
    logging.getLogger("attestnet.appraisal.verifier").setLevel(logging.ERROR)
    if not args.anchor and args.hmac_key is None:
        raise ConfigError(
            f"no trust anchor for {format} evidence; give --anchor FILE (or --policy FILE)"
        )
    anchors = load_anchors(args.anchor)
    if args.hmac_key is not None:
        anchors = anchors.merged(TrustAnchors(symmetric_keys=(load_hmac_key(args.hmac_key),)))
    collateral = load_collateral(args.collateral)
    cache = collateral_cache_dir()
    if not args.no_cache and cache.is_dir():
        collateral = collateral.merged(load_collateral([cache]))
    policy = Policy(
        id="signatures-and-chains-only",
        allowed=frozenset({format}),
        anchors={format: anchors},
        collateral={format: collateral} if collateral != Collateral() else {},
        unsafe_skip_reference_values=True,
        debug_allowed=True,
        # Without a policy every TCB status that verifies is shown, not judged; Intel
        # marks revoked TCBs and unmatched levels as failed checks in the verifier.
        tcb_status_allowed=frozenset(
            {
                "UpToDate",
                "SWHardeningNeeded",
                "ConfigurationNeeded",
                "ConfigurationAndSWHardeningNeeded",
                "OutOfDate",
                "OutOfDateConfigurationNeeded",
            }
        ),
    )
    return Verifier(policy)


def _report(result: AppraisalResult | None, error: Exception | None, **fields: Any) -> str:
    lines = [f"format: {fields['format']}", f"verification time: {fields['at'].isoformat()}"]
    if result is not None:
        lines.append("claims:")
        for line in json.dumps(result.evidence.claims, indent=2, default=str).splitlines():
            lines.append(f"  {line}")
    checks = result.checks if result is not None else getattr(error, "checks_passed", [])
    lines.append("checks:")
    lines.extend(f"  PASS {check}" for check in checks)
    if error is not None:
        lines.append(f"  FAIL {error}")
    lines.append(f"verdict: {fields['verdict']}")
    return "\n".join(lines)


def _run_corim_appraisal(args: argparse.Namespace, data: bytes, at: datetime) -> int:
    try:
        reference = corim.parse(args.corim.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read CoRIM {args.corim}: {exc.strerror}") from None
    appraisal = appraise_psa(data, reference, at=at)
    components = [
        {"name": c.name, "matched": c.matched, "detail": c.detail} for c in appraisal.components
    ]
    if args.json:
        document = {
            "file": str(args.file),
            "format": "psa",
            "corim": str(args.corim),
            "verification_time": at.isoformat(),
            "verdict": appraisal.status,
            "trust_vector": appraisal.trust_vector,
            "detail": appraisal.detail,
            "components": components,
        }
        print(json.dumps(document, indent=2, default=str))
    else:
        print(f"format: psa, appraised against CoRIM {args.corim}")
        print(f"verification time: {at.isoformat()}")
        print("checks:")
        if appraisal.evidence is None:
            print(f"  FAIL 4. signature: {appraisal.detail}")
        else:
            for check in appraisal.evidence.checks:
                print(f"  PASS 4. {check.name}: {check.detail}")
        for component in components:
            outcome = "PASS" if component["matched"] else "FAIL"
            print(f"  {outcome} 5. measurements: {component['name']}: {component['detail']}")
        print(f"detail: {appraisal.detail}")
        print(f"trust vector: {appraisal.trust_vector}")
        print(f"verdict: {appraisal.status}")
    return 0 if appraisal.status == "affirming" else 1


def run_verify(args: argparse.Namespace) -> int:
    at = args.at or datetime.now(UTC)
    data = read_evidence_file(args.file)
    format = args.format
    if format is None:
        format, _ = registry.detect(data)
    if args.corim is not None:
        if format != "psa":
            raise ConfigError(f"--corim appraises PSA evidence only; {args.file} is {format}")
        return _run_corim_appraisal(args, data, at)
    verifier = _build_verifier(args, format)

    result: AppraisalResult | None = None
    error: Exception | None = None
    try:
        result = verifier.appraise(data, binder=None, at=at, format=format)
        if args.nonce is not None and not nonce_matches(format, args.nonce, result.evidence.nonce):
            actual = result.evidence.nonce
            raise VerificationError(
                "nonce",
                "evidence nonce is not the expected one",
                claim="nonce",
                expected=args.nonce,
                actual=actual if actual is not None else "absent",
            )
        if args.nonce is not None:
            result.checks.append(f"3. nonce: evidence nonce equals {args.nonce.hex()}")
    except (VerificationError, MalformedEvidence) as exc:
        if result is not None and isinstance(exc, VerificationError):
            exc.checks_passed = list(result.checks)
        error, result = exc, None

    verdict = result.status if result is not None else "contraindicated"
    if args.json:
        document = {
            "file": str(args.file),
            "format": format,
            "verification_time": at.isoformat(),
            "verdict": verdict,
            "trust_vector": result.trust_vector if result else None,
            "checks": result.checks if result else getattr(error, "checks_passed", []),
            "error": str(error) if error else None,
            "failed_check": getattr(error, "check", None),
            "claims": result.evidence.claims if result else None,
        }
        json.dump(document, sys.stdout, indent=2, default=str)
        print()
    else:
        print(_report(result, error, format=format, at=at, verdict=verdict))
    return 0 if verdict == "affirming" else 1
