"""Every file of the evidence corpus gives the outcome its MANIFEST.tsv line states.

The table below gives, for each evidence file, how `attestnet verify` is invoked and
which verdict and failed check the manifest expects. Supporting files (keys,
anchors, certificates, collateral) are listed apart; a corpus file in neither list
fails the test, so a new sample cannot be added without its expected outcome.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cryptography import x509

from attestnet.cli import main
from attestnet.errors import ChainError
from attestnet.evidence import nitro
from attestnet.evidence.anchors import load_anchors
from tests.conftest import utc

# file -> list of (verify arguments with corpus-relative paths, verdict, failed check)
EVIDENCE: dict[str, list[tuple[list[str], str, str | None]]] = {
    "cca/tfmtools_cca_example_token.cbor": [
        (["--anchor", "cca/cca_cpak_public.pem"], "affirming", None),
        (["--anchor", "psa/tfm_iak_public.pem"], "contraindicated", "platform signature"),
    ],
    "corim/signed-good-corim.cbor": [
        (
            [
                "--anchor",
                "corim/signed-good-corim_signer_ec-p256.jwk",
                "--at",
                "2024-01-01T00:00:00Z",
            ],
            "affirming",
            None,
        ),
        (
            [
                "--anchor",
                "corim/signed-good-corim_signer_ec-p256.jwk",
                "--at",
                "2026-06-01T00:00:00Z",
            ],
            "contraindicated",
            "signer validity",
        ),
    ],
    "ear/veraison_ear_testJWT.jwt": [
        (["--anchor", "ear/veraison_ear_pkey.jwk.json"], "affirming", None),
    ],
    "nitro/evervault_ga_attestation_doc.b64": [
        (
            ["--anchor", "nitro/aws_nitro_root_g1.pem", "--at", "2023-09-18T15:03:31Z"],
            "affirming",
            None,
        ),
        (["--anchor", "nitro/aws_nitro_root_g1.pem"], "contraindicated", "certificate validity"),
    ],
    "ratls/evervault_nitro_atls_cert_nondebug.der": [
        (
            ["--anchor", "nitro/aws_nitro_root_g1.pem", "--at", "2023-01-18T13:07:19Z"],
            "affirming",
            None,
        ),
        (["--anchor", "nitro/aws_nitro_root_g1.pem"], "contraindicated", "certificate validity"),
    ],
    "nvidia/nvtrust_hopperAttestationReport.hex.txt": [
        (
            [
                "--anchor",
                "nvidia/nvidia_device_identity_ca.pem",
                "--collateral",
                "nvidia/nvtrust_hopperCertChain.pem",
            ],
            "affirming",
            None,
        ),
        (
            [
                "--anchor",
                "nvidia/nvidia_device_identity_ca.pem",
                "--collateral",
                "nvidia/trustee_hopper_cert_chain_case3_broken.pem",
            ],
            "contraindicated",
            "certificate chain",
        ),
    ],
    "psa/rfc9783_psa-mac0.cbor": [
        (["--hmac-key", "psa/rfc9783_tfm-hs-iak.bin"], "affirming", None),
    ],
    "psa/rfc9783_psa-sign1.cbor": [
        (["--anchor", "psa/rfc9783_tfm-es-iak.pem"], "affirming", None),
    ],
    "psa/tfm_psa-2_0_0_sign1.cbor": [
        (["--anchor", "psa/tfm_iak_public.pem"], "affirming", None),
    ],
    "psa/tfmtools_malformed.cbor": [
        (["--format", "psa", "--anchor", "psa/tfmtools_key.pem"], "contraindicated", None),
    ],
    "psa/veraison_e2e_psa-evidence.cbor": [
        (["--corim", "corim/veraison_e2e_psa-endorsements.corim.cbor"], "affirming", None),
    ],
    "sev-snp/gsg_attestation.bin": [
        (
            [
                "--anchor",
                "sev-snp/amd_ask_ark_milan.pem",
                "--collateral",
                "sev-snp/gsg_vcek.der",
                "--at",
                "2024-01-01T00:00:00Z",
            ],
            "affirming",
            None,
        ),
    ],
    "tdx/dq_tdx_quote_v4.dat": [
        (
            [
                "--anchor",
                "tdx/intel_sgx_root_ca.pem",
                "--collateral",
                "tdx/dq_tdx_quote_v4_collateral.json",
                "--at",
                "2025-07-01T00:00:00Z",
            ],
            "affirming",
            None,
        ),
    ],
    "tdx/dq_tdx_quote_outdated_v5.dat": [
        (
            [
                "--anchor",
                "tdx/intel_sgx_root_ca.pem",
                "--collateral",
                "tdx/dq_tdx_quote_outdated_v5_collateral.json",
                "--at",
                "2026-03-01T00:00:00Z",
            ],
            "contraindicated",
            "tcb status",
        ),
    ],
    "tpm/gce-cos-85-nonce9009.attestation.pb": [
        (
            [
                "--anchor",
                "tpm/gce_tpm_ek_root_1.cer",
                "--collateral",
                "tpm/gce_tpm_ek_intermediate_2.crt",
                "--nonce",
                "9009",
            ],
            "affirming",
            None,
        ),
    ],
}

# Keys, anchors, certificates and collateral that the cases above use, and files
# checked by the dedicated tests below.
SUPPORTING = {
    "cca/cca_cpak_public.pem",
    "corim/signed-good-corim_signer_ec-p256.jwk",
    "corim/veraison_e2e_psa-endorsements.corim.cbor",
    "ear/veraison_ear_pkey.jwk.json",
    "nitro/aws_nitro_root_g1.pem",
    "nitro/evervault_ga_tls_certificate.der",
    "nvidia/nvidia_device_identity_ca.pem",
    "nvidia/nvtrust_hopperCertChain.pem",
    "nvidia/trustee_hopper_cert_chain_case3_broken.pem",
    "psa/rfc9783_tfm-es-iak.pem",
    "psa/rfc9783_tfm-hs-iak.bin",
    "psa/tfm_iak_public.pem",
    "psa/tfmtools_key.pem",
    "sev-snp/amd_ask_ark_milan.pem",
    "sev-snp/gsg_vcek.der",
    "tdx/dq_tdx_quote_outdated_v5_collateral.json",
    "tdx/dq_tdx_quote_v4_collateral.json",
    "tdx/intel_sgx_root_ca.pem",
    "tpm/gce_tpm_ek_intermediate_2.crt",
    "tpm/gce_tpm_ek_root_1.cer",
}

CASES = [
    (name, args, verdict, check)
    for name, cases in sorted(EVIDENCE.items())
    for args, verdict, check in cases
]


def manifest_files(corpus: Path) -> set[str]:
    with (corpus / "MANIFEST.tsv").open(newline="") as file:
        return {row["file"] for row in csv.DictReader(file, delimiter="\t")}


def test_every_manifest_file_has_a_case(corpus: Path) -> None:
    listed = manifest_files(corpus)
    assert listed - set(EVIDENCE) - SUPPORTING == set()
    assert (set(EVIDENCE) | SUPPORTING) - listed == set()
    assert set(EVIDENCE) & SUPPORTING == set()


@pytest.mark.parametrize(("name", "args", "verdict", "check"), CASES)
def test_manifest_outcome(
    corpus: Path,
    name: str,
    args: list[str],
    verdict: str,
    check: str | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("ATTESTNET_COLLATERAL_CACHE", str(tmp_path / "empty-cache"))
    resolved = [str(corpus / a) if (corpus / a).is_file() else a for a in args]
    code = main(["verify", str(corpus / name), *resolved, "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == verdict, document.get("error")
    assert code == (0 if verdict == "affirming" else 1)
    if check is not None:
        assert document["failed_check"] == check


def test_ratls_certificate_binds_nitro_document(corpus: Path) -> None:
    certificate = (corpus / "ratls/evervault_nitro_atls_cert_nondebug.der").read_bytes()
    anchors = load_anchors([corpus / "nitro/aws_nitro_root_g1.pem"])
    evidence = nitro.verify_ratls_certificate(
        certificate, anchors=anchors, at=utc("2023-01-18T13:07:19Z")
    )
    assert evidence.measurements["nitro/pcr/0"].hex().startswith("d265a83f")
    with pytest.raises(ChainError):
        nitro.verify_ratls_certificate(certificate, anchors=anchors, at=utc("2024-01-01T00:00:00Z"))


def test_ga_tls_certificate_matches_document(corpus: Path) -> None:
    from attestnet.cli._common import read_evidence_file

    anchors = load_anchors([corpus / "nitro/aws_nitro_root_g1.pem"])
    evidence = nitro.verify(
        read_evidence_file(corpus / "nitro/evervault_ga_attestation_doc.b64"),
        anchors=anchors,
        at=utc("2023-09-18T15:03:31Z"),
    )
    tls_certificate = x509.load_der_x509_certificate(
        (corpus / "nitro/evervault_ga_tls_certificate.der").read_bytes()
    )
    nitro.check_tls_key_binding(evidence, tls_certificate)
