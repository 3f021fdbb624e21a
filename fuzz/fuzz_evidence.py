"""Coverage-guided fuzzing of the evidence parsers and verifiers with atheris.

Usage: python fuzz/fuzz_evidence.py FORMAT [atheris/libFuzzer options]
for example ``python fuzz/fuzz_evidence.py dcap -max_total_time=300``.

The corpus samples of FORMAT seed the run. Every input goes through the format's
`verify` with fixed trust anchors and time; only attestnet's documented errors
may escape, so any other exception is reported by libFuzzer as a crash together
with the input that caused it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from attestnet.errors import AttestnetError
    from attestnet.evidence import registry
    from attestnet.evidence.anchors import load_anchors, load_collateral
    from attestnet.evidence.model import Collateral, TrustAnchors

    # The registry imports format modules on first use; import them all here so
    # that atheris instruments them and coverage guides the mutations.
    for _format in registry.FORMATS:
        registry.load(_format)

CORPUS = Path(os.environ.get("ATTESTNET_CORPUS", Path(__file__).parents[2] / "shared" / "corpus"))

# Seeds and the anchors and collateral that reach the deep checks, per format.
SEEDS = {
    "psa": (
        ["psa/tfm_psa-2_0_0_sign1.cbor", "psa/rfc9783_psa-sign1.cbor"],
        ["psa/tfm_iak_public.pem"],
        [],
    ),
    "cca": (["cca/tfmtools_cca_example_token.cbor"], ["cca/cca_cpak_public.pem"], []),
    "corim": (
        ["corim/signed-good-corim.cbor", "corim/veraison_e2e_psa-endorsements.corim.cbor"],
        ["corim/signed-good-corim_signer_ec-p256.jwk"],
        [],
    ),
    "ear": (["ear/veraison_ear_testJWT.jwt"], ["ear/veraison_ear_pkey.jwk.json"], []),
    "nitro": (["nitro/evervault_ga_attestation_doc.b64"], ["nitro/aws_nitro_root_g1.pem"], []),
    "spdm": (
        ["nvidia/nvtrust_hopperAttestationReport.hex.txt"],
        ["nvidia/nvidia_device_identity_ca.pem"],
        ["nvidia/nvtrust_hopperCertChain.pem"],
    ),
    "sev-snp": (
        ["sev-snp/gsg_attestation.bin"],
        ["sev-snp/amd_ask_ark_milan.pem"],
        ["sev-snp/gsg_vcek.der"],
    ),
    "dcap": (
        ["tdx/dq_tdx_quote_v4.dat", "tdx/dq_tdx_quote_outdated_v5.dat"],
        ["tdx/intel_sgx_root_ca.pem"],
        ["tdx/dq_tdx_quote_v4_collateral.json"],
    ),
    "gotpm": (
        ["tpm/gce-cos-85-nonce9009.attestation.pb"],
        ["tpm/gce_tpm_ek_root_1.cer"],
        ["tpm/gce_tpm_ek_intermediate_2.crt"],
    ),
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in SEEDS:
        sys.exit(
            f"usage: {sys.argv[0]} FORMAT [libFuzzer options]; FORMAT is one of {', '.join(SEEDS)}"
        )
    format = sys.argv[1]
    seeds, anchor_files, collateral_files = SEEDS[format]
    module = registry.load(format)
    anchors = load_anchors([CORPUS / f for f in anchor_files]) if anchor_files else TrustAnchors()
    collateral = load_collateral([CORPUS / f for f in collateral_files]) or Collateral()
    at = datetime(2025, 7, 1, tzinfo=UTC)

    from attestnet.cli._common import read_evidence_file

    seed_dir = Path(tempfile.mkdtemp(prefix=f"attestnet-fuzz-{format}-"))
    # atheris ends the process itself, so the seed folder is removed at exit.
    atexit.register(shutil.rmtree, seed_dir, ignore_errors=True)
    for index, name in enumerate(seeds):
        (seed_dir / f"seed-{index}").write_bytes(read_evidence_file(CORPUS / name))

    def test_one_input(data: bytes) -> None:
        with contextlib.suppress(AttestnetError):
            module.verify(data, anchors=anchors, at=at, collateral=collateral)

    atheris.Setup([sys.argv[0], str(seed_dir), *sys.argv[2:]], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
