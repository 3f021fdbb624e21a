"""`attestnet verify` against the corpus: the command-line contract of the verifier."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attestnet.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attestnet", *args], capture_output=True, text=True, timeout=60
    )


CONTRACT = [
    ("psa/tfm_psa-2_0_0_sign1.cbor", "--anchor", "psa/tfm_iak_public.pem"),
    (
        "sev-snp/gsg_attestation.bin",
        "--anchor",
        "sev-snp/amd_ask_ark_milan.pem",
        "--collateral",
        "sev-snp/gsg_vcek.der",
        "--at",
        "2024-01-01T00:00:00Z",
    ),
    (
        "tdx/dq_tdx_quote_v4.dat",
        "--anchor",
        "tdx/intel_sgx_root_ca.pem",
        "--collateral",
        "tdx/dq_tdx_quote_v4_collateral.json",
        "--at",
        "2025-07-01T00:00:00Z",
    ),
    (
        "nitro/evervault_ga_attestation_doc.b64",
        "--anchor",
        "nitro/aws_nitro_root_g1.pem",
        "--at",
        "2023-09-18T15:03:31Z",
    ),
    (
        "tpm/gce-cos-85-nonce9009.attestation.pb",
        "--anchor",
        "tpm/gce_tpm_ek_root_1.cer",
        "--collateral",
        "tpm/gce_tpm_ek_intermediate_2.crt",
        "--nonce",
        "9009",
    ),
]


def corpus_args(corpus: Path, args: tuple[str, ...]) -> list[str]:
    resolved = []
    for arg in args:
        candidate = corpus / arg
        resolved.append(str(candidate) if "/" in arg and candidate.exists() else arg)
    return resolved


@pytest.mark.parametrize("args", CONTRACT, ids=lambda a: a[0])
def test_contract_invocation_affirms(
    corpus: Path,
    args: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ATTESTNET_COLLATERAL_CACHE", str(tmp_path / "cache"))
    code = main(["verify", *corpus_args(corpus, args), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["error"] is None
    assert document["verdict"] == "affirming"
    assert code == 0


def test_wrong_nonce_fails(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = corpus_args(corpus, CONTRACT[4])
    args[args.index("9009")] = "9010"
    code = main(["verify", *args])
    output = capsys.readouterr().out
    assert code == 1
    assert "FAIL nonce" in output
    assert "verdict: contraindicated" in output


def test_expired_now_fails(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = corpus_args(corpus, CONTRACT[3])[:-2]  # drop --at: verify at the current time
    assert main(["verify", *args]) == 1
    assert "expired" in capsys.readouterr().out


def test_wrong_anchor_fails(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = str(corpus / "psa/tfm_psa-2_0_0_sign1.cbor")
    anchor = str(corpus / "psa/rfc9783_tfm-es-iak.pem")
    assert main(["verify", evidence, "--anchor", anchor]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "/nonexistent/evidence.bin", "--anchor", "x.pem"], "cannot read evidence file"),
        (["verify", "EVIDENCE", "--at", "yesterday"], "invalid time"),
        (["verify", "EVIDENCE", "--nonce", "xyz"], "invalid hex value"),
        (["verify", "EVIDENCE"], "no trust anchor"),
        (["verify", "EVIDENCE", "--anchor", "/nonexistent.pem"], "cannot read trust anchor"),
    ],
)
def test_user_mistakes_give_one_line(corpus: Path, args: list[str], message: str) -> None:
    evidence = str(corpus / "psa/tfm_psa-2_0_0_sign1.cbor")
    result = run(*[evidence if a == "EVIDENCE" else a for a in args])
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_format_is_reported(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01\x02 not evidence")
    result = run("verify", str(junk), "--anchor", str(junk))
    assert result.returncode == 1
    assert "not recognised" in result.stderr
    assert "Traceback" not in result.stderr


def test_collateral_import_feeds_verify(
    corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ATTESTNET_COLLATERAL_CACHE", str(tmp_path / "cache"))
    assert main(["collateral", "import", str(corpus / "sev-snp/gsg_vcek.der")]) == 0
    assert (tmp_path / "cache" / "gsg_vcek.der").is_file()
    evidence = str(corpus / "sev-snp/gsg_attestation.bin")
    anchor = str(corpus / "sev-snp/amd_ask_ark_milan.pem")
    code = main(["verify", evidence, "--anchor", anchor, "--at", "2024-01-01T00:00:00Z"])
    assert "verdict: affirming" in capsys.readouterr().out
    assert code == 0
    assert main(["verify", evidence, "--anchor", anchor, "--no-cache"]) == 1


def test_psa_against_corim_affirms(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = str(corpus / "psa/veraison_e2e_psa-evidence.cbor")
    reference = str(corpus / "corim/veraison_e2e_psa-endorsements.corim.cbor")
    code = main(["verify", evidence, "--corim", reference, "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "affirming"
    assert document["trust_vector"]["executables"] == 2
    assert code == 0


def test_corim_with_other_evidence_is_usage_error(corpus: Path) -> None:
    evidence = str(corpus / "sev-snp/gsg_attestation.bin")
    reference = str(corpus / "corim/veraison_e2e_psa-endorsements.corim.cbor")
    result = run("verify", evidence, "--corim", reference)
    assert result.returncode == 2
    assert "--corim appraises PSA evidence only" in result.stderr


@pytest.mark.parametrize("nonce", ["090090", "00" * 65])
def test_longer_nonce_fails_cleanly(corpus: Path, nonce: str) -> None:
    args = corpus_args(corpus, CONTRACT[4])
    args[args.index("9009")] = nonce
    result = run("verify", *args)
    assert result.returncode == 1
    assert "FAIL nonce" in result.stdout
    assert "Traceback" not in result.stderr


def test_short_nonce_not_padded_for_psa(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The PSA sample's nonce is 64 zero bytes; only SEV-SNP and DCAP pad a shorter nonce.
    evidence = str(corpus / "psa/tfm_psa-2_0_0_sign1.cbor")
    anchor = str(corpus / "psa/tfm_iak_public.pem")
    assert main(["verify", evidence, "--anchor", anchor, "--nonce", "00"]) == 1
    assert "FAIL nonce" in capsys.readouterr().out


@pytest.mark.parametrize("nonce", ["", "900", "0x"])
def test_partial_nonce_is_usage_error(corpus: Path, nonce: str) -> None:
    evidence = str(corpus / "psa/tfm_psa-2_0_0_sign1.cbor")
    result = run("verify", evidence, "--anchor", "x.pem", f"--nonce={nonce}")
    assert result.returncode == 2
    assert "whole bytes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_error_is_one_line() -> None:
    result = run("verify", "evidence.bin", "--at", "yesterday")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "attestnet verify: error: argument --at: invalid time 'yesterday'; use RFC 3339 "
        "such as 2024-01-01T00:00:00Z; see 'attestnet verify --help'"
    ]
