"""Tests of the TPM attester against a real swtpm (skipped when swtpm is absent)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from attestnet.errors import ConfigError, MalformedEvidence
from attestnet.evidence import cmw
from attestnet.evidence import tpm as tpm_evidence
from attestnet.evidence.model import TrustAnchors, VerifiedEvidence
from attestnet.evidence.x509chain import public_key_der

pytest.importorskip("tpm2_pytss")

from attestnet.attesters.swtpm import LocalCa, Swtpm, SwtpmUnavailable
from attestnet.attesters.tpm import (
    TpmAttester,
    TpmAttesterError,
    enroll_ak,
    parse_pcr_selection,
)

SHA256 = tpm_evidence.ALG_SHA256


@pytest.fixture(scope="module")
def swtpm() -> Iterator[Swtpm]:
    try:
        instance = Swtpm()
    except SwtpmUnavailable as exc:
        pytest.skip(f"swtpm is not installed: {exc}")
    with instance:
        yield instance


@pytest.fixture(scope="module")
def local_ca(swtpm: Swtpm) -> LocalCa:
    return swtpm.local_ca()


@pytest.fixture
def attester(swtpm: Swtpm) -> Iterator[TpmAttester]:
    with TpmAttester(swtpm.tcti) as instance:
        yield instance


def verify(evidence: bytes, ca: LocalCa) -> VerifiedEvidence:
    return tpm_evidence.verify(
        evidence, anchors=TrustAnchors(certificates=(ca.root,)), at=datetime.now(UTC)
    )


# --- PCR selection strings -----------------------------------------------------------


def test_parse_pcr_selection_forms() -> None:
    assert parse_pcr_selection("sha256:0-3,7") == (
        tpm_evidence.PcrSelection(SHA256, (0, 1, 2, 3, 7)),
    )
    both = parse_pcr_selection("sha1:0+sha256:1")
    assert [s.bank for s in both] == ["sha1", "sha256"]


@pytest.mark.parametrize("text", ["sha256", "md5:0", "sha256:x", "sha256:5-2", "sha256:24"])
def test_parse_pcr_selection_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_pcr_selection(text)


# --- enrolment -----------------------------------------------------------------------


def test_enroll_ak_issues_certificate(attester: TpmAttester, local_ca: LocalCa) -> None:
    chain = enroll_ak(attester, local_ca)
    ek_certificate, ek_public = attester.ek_certificate_and_public()
    ak_certificate = chain[0]
    assert chain[1] == local_ca.certificate
    assert attester.ak_certificates == chain
    assert public_key_der(ak_certificate.public_key()) == public_key_der(
        attester.ak_public.public_key()
    )
    serial = ak_certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    assert serial == hashlib.sha256(public_key_der(ek_certificate.public_key())).hexdigest()
    assert ek_public.type == tpm_evidence.ALG_RSA


def test_activate_credential_wrong_name_fails(attester: TpmAttester) -> None:
    from tpm2_pytss import TPM2B_NAME, TPM2B_PUBLIC, TPMT_PUBLIC
    from tpm2_pytss.utils import make_credential

    _, ek_public = attester.ek_certificate_and_public()
    ek_area, _ = TPMT_PUBLIC.unmarshal(ek_public.raw)
    wrong_name = b"\x00\x0b" + hashlib.sha256(b"another key").digest()
    name, _ = TPM2B_NAME.unmarshal(len(wrong_name).to_bytes(2, "big") + wrong_name)
    blob, secret = make_credential(TPM2B_PUBLIC(publicArea=ek_area), b"c" * 32, name)
    with pytest.raises(TpmAttesterError, match="ActivateCredential"):
        attester.activate_credential(blob.marshal(), secret.marshal())


def test_ak_name_matches_tpm(attester: TpmAttester) -> None:
    tpm_name = bytes(attester._esapi.tr_get_name(attester._ak_handle))
    assert attester.ak_public.name() == tpm_name


def test_ak_is_stable_across_contexts(swtpm: Swtpm, attester: TpmAttester) -> None:
    with TpmAttester(swtpm.tcti) as second:
        assert second.ak_public.raw == attester.ak_public.raw


# --- evidence ------------------------------------------------------------------------


def test_evidence_carries_binder(attester: TpmAttester, local_ca: LocalCa) -> None:
    enroll_ak(attester, local_ca)
    binder = hashlib.sha256(b"tls exporter").digest()
    evidence = attester.evidence(binder)
    record = cmw.decode(evidence)
    assert isinstance(record, cmw.CmwRecord)
    assert record.type == tpm_evidence.MEDIA_TYPE
    assert tpm_evidence.parse(evidence).attest.extra_data == binder
    assert verify(evidence, local_ca).nonce == binder


def test_evidence_follows_pcr_extend(attester: TpmAttester, local_ca: LocalCa) -> None:
    enroll_ak(attester, local_ca)
    before = verify(attester.evidence(b"a" * 32), local_ca).measurements["pcr/sha256/5"]
    digest = hashlib.sha256(b"changed agent").digest()
    attester.extend_pcr(5, digest)
    after = verify(attester.evidence(b"b" * 32), local_ca).measurements["pcr/sha256/5"]
    assert after == hashlib.sha256(before + digest).digest()


def test_evidence_many_pcrs(swtpm: Swtpm, local_ca: LocalCa) -> None:
    with TpmAttester(swtpm.tcti, pcrs="sha256:0-15,23") as attester:
        enroll_ak(attester, local_ca)
        result = verify(attester.evidence(b"m" * 32), local_ca)
    assert len(result.measurements) == 17
    assert "pcr/sha256/23" in result.measurements


def test_evidence_rsa_ak(swtpm: Swtpm, local_ca: LocalCa) -> None:
    with TpmAttester(swtpm.tcti, ak_algorithm="rsa") as attester:
        assert isinstance(attester.ak_public.public_key(), rsa.RSAPublicKey)
        enroll_ak(attester, local_ca)
        result = verify(attester.evidence(b"r" * 32), local_ca)
    assert result.claims["signature_scheme"] == "rsassa-sha256"


def test_evidence_pinned_ak(attester: TpmAttester) -> None:
    assert attester.ak_certificates == ()
    key = attester.ak_public.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    result = tpm_evidence.verify(
        attester.evidence(b"p" * 32),
        anchors=TrustAnchors(public_keys=(key,)),
        at=datetime.now(UTC),
    )
    assert result.claims["ak_endorsement"] == "pinned key"


def test_evidence_inactive_bank_fails(swtpm: Swtpm) -> None:
    with (
        TpmAttester(swtpm.tcti, pcrs="sha384:0") as attester,
        pytest.raises((TpmAttesterError, MalformedEvidence)),
    ):
        attester.evidence(b"x" * 32)


def test_evidence_long_binder_rejected(attester: TpmAttester) -> None:
    with pytest.raises(ConfigError, match="extraData"):
        attester.evidence(b"x" * 65)


def test_extend_pcr_rejects_wrong_size(attester: TpmAttester) -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        attester.extend_pcr(5, b"short")


def test_bad_tcti_fails() -> None:
    with pytest.raises(TpmAttesterError, match="cannot open the TPM"):
        TpmAttester("swtpm:host=127.0.0.1,port=1")
