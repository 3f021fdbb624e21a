"""Format detection over the whole corpus, and CMW media types of every format."""

from __future__ import annotations

from pathlib import Path

import pytest

from attestnet.cli._common import read_evidence_file
from attestnet.errors import UnknownFormat
from attestnet.evidence import cmw, registry

# Corpus evidence files and the format detection must find (keys, certificates and
# collateral files are not evidence and are left out).
EXPECTED = {
    "cca/tfmtools_cca_example_token.cbor": "cca",
    "corim/signed-good-corim.cbor": "corim",
    "corim/veraison_e2e_psa-endorsements.corim.cbor": "corim",
    "ear/veraison_ear_testJWT.jwt": "ear",
    "nitro/evervault_ga_attestation_doc.b64": "nitro",
    "nvidia/nvtrust_hopperAttestationReport.hex.txt": "spdm",
    "psa/rfc9783_psa-mac0.cbor": "psa",
    "psa/rfc9783_psa-sign1.cbor": "psa",
    "psa/tfm_psa-2_0_0_sign1.cbor": "psa",
    "psa/veraison_e2e_psa-evidence.cbor": "psa",
    "ratls/evervault_nitro_atls_cert_nondebug.der": "nitro-ratls",
    "sev-snp/gsg_attestation.bin": "sev-snp",
    "tdx/dq_tdx_quote_outdated_v5.dat": "dcap",
    "tdx/dq_tdx_quote_v4.dat": "dcap",
    "tpm/gce-cos-85-nonce9009.attestation.pb": "gotpm",
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_detects_corpus_format(corpus: Path, name: str, expected: str) -> None:
    data = read_evidence_file(corpus / name)
    format, payload = registry.detect(data)
    assert format == expected
    assert payload == data


@pytest.mark.parametrize("name", ["sev-snp/gsg_vcek.der", "tdx/intel_sgx_root_ca.pem"])
def test_certificates_are_not_evidence(corpus: Path, name: str) -> None:
    with pytest.raises(UnknownFormat, match="not recognised"):
        registry.detect((corpus / name).read_bytes())


@pytest.mark.parametrize("format", sorted(registry.FORMATS))
def test_cmw_media_type_round_trip(format: str) -> None:
    record = cmw.encode_record(registry.media_type_for(format), b"\x00payload")
    assert registry.detect(record) == (format, b"\x00payload")


def test_unknown_media_type_rejected() -> None:
    with pytest.raises(UnknownFormat, match="no verifier for CMW media type"):
        registry.detect(cmw.encode_record("application/x-unknown", b"x"))
