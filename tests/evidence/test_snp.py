"""Tests of the SEV-SNP attestation report verifier.

The corpus report is a real Milan report with its VCEK and AMD's Milan ASK and ARK.
Some cases have no corpus sample: TCB or chip id mismatches that still carry a
valid signature, VLEK, version 3 and Turin. They use a chain built here: an RSA-PSS "ARK"
and "ASK" and a P-384 "VCEK" with AMD's extensions, which sign synthetic reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestnet.errors import (
    ChainError,
    MalformedEvidence,
    SignatureError,
    VerificationError,
)
from attestnet.evidence import snp
from attestnet.evidence.anchors import load_anchor_file
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from tests.conftest import utc

REPORT_TIME = utc("2024-01-01T00:00:00Z")
CHIP_ID_OFFSET = snp.FIELDS["chip_id"][0]
REPORTED_TCB_OFFSET = snp.FIELDS["reported_tcb"][0]


@dataclasses.dataclass(frozen=True)
class CorpusSample:
    report: bytes
    vcek: x509.Certificate
    anchors: TrustAnchors

    @property
    def collateral(self) -> Collateral:
        return Collateral(certificates=(self.vcek,))


@pytest.fixture(scope="module")
def sample(corpus: Path) -> CorpusSample:
    return CorpusSample(
        report=(corpus / "sev-snp" / "gsg_attestation.bin").read_bytes(),
        vcek=snp.load_vcek((corpus / "sev-snp" / "gsg_vcek.der").read_bytes()),
        anchors=load_anchor_file(corpus / "sev-snp" / "amd_ask_ark_milan.pem"),
    )


def verify_sample(
    sample: CorpusSample,
    report: bytes | None = None,
    *,
    anchors: TrustAnchors | None = None,
    at: datetime = REPORT_TIME,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify `report` (default: the corpus report) with the corpus VCEK and AMD chain."""
    return snp.verify(
        sample.report if report is None else report,
        anchors=anchors or sample.anchors,
        at=at,
        collateral=collateral or sample.collateral,
    )


def flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    changed = bytearray(data)
    changed[position] ^= mask
    return bytes(changed)


# Corpus report


def test_corpus_report_verifies(sample: CorpusSample) -> None:
    evidence = snp.verify(
        sample.report, anchors=sample.anchors, at=REPORT_TIME, collateral=sample.collateral
    )

    assert evidence.format == "sev-snp"
    assert [c.name for c in evidence.checks] == [
        "report signature",
        "certificate chain",
        "signing key type",
        "vcek tcb",
        "vcek chip id",
    ]
    assert "ARK-Milan" in evidence.checks[1].detail
    assert evidence.tcb == {"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68}
    assert evidence.debug is True
    assert evidence.nonce is not None
    assert evidence.nonce[:5] == bytes.fromhex("0102030405")
    assert not any(evidence.nonce[5:])
    assert evidence.instance_id == sample.report[CHIP_ID_OFFSET : CHIP_ID_OFFSET + 64]
    assert evidence.measurements["snp/measurement"].hex().startswith("b07af962")
    assert len(evidence.measurements["snp/measurement"]) == 48
    assert evidence.measurements["snp/host_data"] == bytes(32)
    assert evidence.measurements["snp/id_key_digest"] == bytes(48)
    assert evidence.signer is not None
    assert evidence.claims["policy"]["raw"] == "0xb0000"
    assert evidence.claims["signing_key"] == "vcek"


def test_corpus_report_parses(sample: CorpusSample) -> None:
    report = snp.parse(sample.report)

    assert report.version == 2
    assert report.vmpl == 0
    assert report.signature_algo == 1
    assert report.policy.raw == 0xB0000
    assert report.policy.debug
    assert report.policy.smt_allowed
    assert not report.policy.migrate_ma
    assert not report.policy.single_socket
    assert report.platform_info.smt_enabled
    assert report.signing_key == "vcek"
    assert not report.mask_chip_id
    assert report.cpuid_fam_id is None
    assert report.reported_tcb.components() == {
        "bootloader": 2,
        "tee": 0,
        "snp": 5,
        "microcode": 68,
    }
    assert report.current_tcb == report.reported_tcb
    assert report.launch_tcb == report.reported_tcb
    assert report.signed_bytes == sample.report[: snp.SIGNED_SIZE]


def test_corpus_report_after_vcek_expiry(sample: CorpusSample) -> None:
    with pytest.raises(ChainError) as caught:
        verify_sample(sample, at=utc("2030-01-01T00:00:00Z"))
    assert caught.value.check == "certificate validity"


def test_corpus_report_wrong_anchor(sample: CorpusSample, corpus: Path) -> None:
    nitro_root = load_anchor_file(corpus / "nitro" / "aws_nitro_root_g1.pem")
    with pytest.raises(ChainError) as caught:
        verify_sample(sample, anchors=nitro_root)
    assert caught.value.check == "certificate chain"


def test_corpus_ask_alone_is_no_anchor(sample: CorpusSample) -> None:
    ask_only = TrustAnchors(
        certificates=tuple(c for c in sample.anchors.certificates if c.subject != c.issuer)
    )
    assert len(ask_only.certificates) == 1
    with pytest.raises(ChainError) as caught:
        verify_sample(sample, anchors=ask_only)
    assert caught.value.check == "certificate chain"


def test_corpus_report_without_vcek(sample: CorpusSample) -> None:
    with pytest.raises(ChainError) as caught:
        verify_sample(sample, collateral=Collateral())
    assert caught.value.check == "report signature"


def test_corpus_edited_reported_tcb_fails_signature(sample: CorpusSample) -> None:
    edited = bytearray(sample.report)
    edited[REPORTED_TCB_OFFSET + 6] = 6  # SNP SPL 5 -> 6
    with pytest.raises(SignatureError) as caught:
        verify_sample(sample, bytes(edited))
    assert caught.value.check == "report signature"


def test_every_signed_byte_flip_fails(sample: CorpusSample) -> None:
    for position in range(snp.SIGNED_SIZE):
        with pytest.raises(SignatureError) as caught:
            verify_sample(sample, flip(sample.report, position))
        assert caught.value.check == "report signature", position


@pytest.mark.parametrize("position", [0x2A0, 0x2A0 + 47, 0x2E8, 0x2E8 + 20])
def test_signature_byte_flip_fails(sample: CorpusSample, position: int) -> None:
    with pytest.raises(SignatureError):
        verify_sample(sample, flip(sample.report, position))


@pytest.mark.parametrize("position", [0x2A0 + 48, 0x2E8 + 71, 0x330, snp.REPORT_SIZE - 1])
def test_unsigned_zero_byte_flip_is_malformed(sample: CorpusSample, position: int) -> None:
    with pytest.raises(MalformedEvidence):
        verify_sample(sample, flip(sample.report, position))


def test_truncations_are_malformed(sample: CorpusSample) -> None:
    for length in range(snp.REPORT_SIZE):
        with pytest.raises(MalformedEvidence):
            snp.verify(
                sample.report[:length],
                anchors=sample.anchors,
                at=REPORT_TIME,
                collateral=sample.collateral,
            )


def test_trailing_byte_is_malformed(sample: CorpusSample) -> None:
    with pytest.raises(MalformedEvidence):
        snp.parse(sample.report + b"\x00")
    with pytest.raises(MalformedEvidence):
        verify_sample(sample, sample.report + b"\x00")


def test_tcb_extension_mismatch(sample: CorpusSample) -> None:
    report = snp.parse(sample.report)
    snp.check_tcb_extensions(report, sample.vcek)

    newer = dataclasses.replace(report.reported_tcb, snp=6)
    with pytest.raises(VerificationError) as caught:
        snp.check_tcb_extensions(dataclasses.replace(report, reported_tcb=newer), sample.vcek)
    assert caught.value.check == "vcek tcb"
    assert caught.value.claim == "reported_tcb.snp"
    assert caught.value.expected == 5
    assert caught.value.actual == 6


def test_chip_id_mismatch(sample: CorpusSample) -> None:
    report = snp.parse(sample.report)
    snp.check_chip_id(report, sample.vcek)

    other_chip = dataclasses.replace(report, chip_id=bytes(64))
    with pytest.raises(VerificationError) as caught:
        snp.check_chip_id(other_chip, sample.vcek)
    assert caught.value.check == "vcek chip id"
    assert caught.value.claim == "chip_id"


def test_looks_like_only_the_report(sample: CorpusSample, corpus: Path) -> None:
    assert snp.looks_like(sample.report)
    others = [p for p in corpus.rglob("*") if p.is_file() and p.name != "gsg_attestation.bin"]
    assert others
    for path in others:
        assert not snp.looks_like(path.read_bytes()), path


# Synthetic chain


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "attestnet test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
_NOT_BEFORE = utc("2023-01-01T00:00:00Z")


def _rsa_certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_BEFORE + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA384(), rsa_padding=_PSS)
    )


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(1, "big")
    if value >= 0x80:
        body = b"\x00" + body
    return bytes([0x02, len(body)]) + body


@dataclasses.dataclass
class SyntheticChain:
    ark: x509.Certificate
    ask: x509.Certificate
    ask_key: rsa.RSAPrivateKey

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors(certificates=(self.ask, self.ark))

    def endorsement_key(
        self,
        tcb: dict[str, int],
        chip_id: bytes | None,
        *,
        kind: str = "VCEK",
        not_after: datetime | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """Issue a VCEK (with hwID) or a VLEK (with csp_id) certifying `tcb`."""
        key = ec.generate_private_key(ec.SECP384R1())
        oids = {
            "bootloader": "1.3.6.1.4.1.3704.1.3.1",
            "tee": "1.3.6.1.4.1.3704.1.3.2",
            "snp": "1.3.6.1.4.1.3704.1.3.3",
            "microcode": "1.3.6.1.4.1.3704.1.3.8",
            "fmc": "1.3.6.1.4.1.3704.1.3.9",
        }
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(f"SEV-{kind}"))
            .issuer_name(self.ask.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOT_BEFORE)
            .not_valid_after(not_after or _NOT_BEFORE + timedelta(days=2555))
        )
        for component, value in tcb.items():
            builder = builder.add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier(oids[component]), _der_integer(value)
                ),
                critical=False,
            )
        if chip_id is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.4"), chip_id),
                critical=False,
            )
        if kind == "VLEK":
            builder = builder.add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.5"), b"\x16\x04test"
                ),
                critical=False,
            )
        return key, builder.sign(self.ask_key, hashes.SHA384(), rsa_padding=_PSS)


@pytest.fixture(scope="module")
def chain() -> SyntheticChain:
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ark = _rsa_certificate("ARK-Test", ark_key, "ARK-Test", ark_key)
    ask = _rsa_certificate("SEV-Test", ask_key, "ARK-Test", ark_key)
    return SyntheticChain(ark, ask, ask_key)


MILAN_TCB = {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
CHIP_ID = bytes(range(64))


def _put(report: bytearray, name: str, value: int | bytes) -> None:
    offset, size = snp.FIELDS[name]
    raw = value if isinstance(value, bytes) else value.to_bytes(size, "little")
    assert len(raw) == size
    report[offset : offset + size] = raw


def milan_tcb_bytes(tcb: dict[str, int]) -> bytes:
    return bytes([tcb["bootloader"], tcb["tee"], 0, 0, 0, 0, tcb["snp"], tcb["microcode"]])


def build_report(
    key: ec.EllipticCurvePrivateKey,
    *,
    version: int = 2,
    tcb_bytes: bytes | None = None,
    chip_id: bytes = CHIP_ID,
    flags: int = 0,
    policy: int = 0x30000,
    edit: Callable[[bytearray], None] | None = None,
) -> bytes:
    """Build and sign a report with `key` the way the firmware lays it out."""
    report = bytearray(snp.REPORT_SIZE)
    tcb_raw = tcb_bytes if tcb_bytes is not None else milan_tcb_bytes(MILAN_TCB)
    _put(report, "version", version)
    _put(report, "guest_svn", 7)
    _put(report, "policy", policy)
    _put(report, "signature_algo", 1)
    _put(report, "vmpl", 1)
    _put(report, "flags", flags)
    _put(report, "report_data", b"\xaa" * 64)
    _put(report, "measurement", b"\x11" * 48)
    _put(report, "host_data", b"\x22" * 32)
    _put(report, "chip_id", chip_id)
    for name in ("current_tcb", "reported_tcb", "committed_tcb", "launch_tcb"):
        _put(report, name, tcb_raw)
    if edit is not None:
        edit(report)
    r, s = decode_dss_signature(
        key.sign(bytes(report[: snp.SIGNED_SIZE]), ec.ECDSA(hashes.SHA384()))
    )
    _put(report, "signature_r", r.to_bytes(72, "little"))
    _put(report, "signature_s", s.to_bytes(72, "little"))
    return bytes(report)


def verify_synthetic(
    chain: SyntheticChain, report: bytes, cert: x509.Certificate, at: datetime = REPORT_TIME
) -> VerifiedEvidence:
    return snp.verify(
        report, anchors=chain.anchors, at=at, collateral=Collateral(certificates=(cert,))
    )


def test_synthetic_report_verifies(chain: SyntheticChain) -> None:
    key, vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID)
    evidence = snp.verify(
        build_report(key),
        anchors=chain.anchors,
        at=REPORT_TIME,
        collateral=Collateral(certificates=(vcek,)),
    )
    assert evidence.tcb == MILAN_TCB
    assert evidence.debug is False
    assert evidence.instance_id == CHIP_ID
    assert evidence.nonce == b"\xaa" * 64
    assert evidence.claims["vmpl"] == 1
    assert evidence.claims["guest_svn"] == 7
    assert "ARK-Test" in evidence.checks[1].detail


def test_synthetic_tcb_mismatch(chain: SyntheticChain) -> None:
    key, vcek = chain.endorsement_key({**MILAN_TCB, "snp": 7}, CHIP_ID)
    with pytest.raises(VerificationError) as caught:
        verify_synthetic(chain, build_report(key), vcek)
    assert caught.value.check == "vcek tcb"
    assert caught.value.claim == "reported_tcb.snp"
    assert caught.value.expected == 7
    assert caught.value.actual == 8


def test_synthetic_missing_tcb_extension(chain: SyntheticChain) -> None:
    tcb = {k: v for k, v in MILAN_TCB.items() if k != "microcode"}
    key, vcek = chain.endorsement_key(tcb, CHIP_ID)
    with pytest.raises(VerificationError) as caught:
        verify_synthetic(chain, build_report(key), vcek)
    assert caught.value.check == "vcek tcb"
    assert caught.value.actual == "absent"


def test_synthetic_chip_id_mismatch(chain: SyntheticChain) -> None:
    key, vcek = chain.endorsement_key(MILAN_TCB, bytes(reversed(CHIP_ID)))
    with pytest.raises(VerificationError) as caught:
        verify_synthetic(chain, build_report(key), vcek)
    assert caught.value.check == "vcek chip id"


def test_synthetic_masked_chip_id(chain: SyntheticChain) -> None:
    key, vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID)
    report = build_report(key, chip_id=bytes(64), flags=0b10)
    evidence = verify_synthetic(chain, report, vcek)
    assert evidence.instance_id is None
    assert "vcek chip id" not in [c.name for c in evidence.checks]


def test_synthetic_vlek_report(chain: SyntheticChain) -> None:
    key, vlek = chain.endorsement_key(MILAN_TCB, None, kind="VLEK")
    evidence = verify_synthetic(chain, build_report(key, flags=1 << 2), vlek)
    checks = [c.name for c in evidence.checks]
    assert "vcek chip id" not in checks
    assert evidence.claims["signing_key"] == "vlek"


def test_synthetic_vlek_signing_vcek_report(chain: SyntheticChain) -> None:
    key, vlek = chain.endorsement_key(MILAN_TCB, None, kind="VLEK")
    with pytest.raises(VerificationError) as caught:
        verify_synthetic(chain, build_report(key, flags=0), vlek)
    assert caught.value.check == "signing key type"
    assert caught.value.expected == "VCEK"
    assert caught.value.actual == "VLEK"


def test_synthetic_other_vcek_fails_signature(chain: SyntheticChain) -> None:
    key, _ = chain.endorsement_key(MILAN_TCB, CHIP_ID)
    _, other_vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID)
    with pytest.raises(SignatureError) as caught:
        verify_synthetic(chain, build_report(key), other_vcek)
    assert caught.value.check == "report signature"


def test_synthetic_vcek_picked_from_several(chain: SyntheticChain) -> None:
    key, vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID)
    _, other_vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID)
    evidence = snp.verify(
        build_report(key),
        anchors=chain.anchors,
        at=REPORT_TIME,
        collateral=Collateral(certificates=(other_vcek, chain.ask, vcek)),
    )
    assert evidence.signer is not None
    assert evidence.signer.public_numbers() == vcek.public_key().public_numbers()  # type: ignore[union-attr]


def test_synthetic_expired_vcek(chain: SyntheticChain) -> None:
    key, vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID, not_after=utc("2023-06-01T00:00:00Z"))
    with pytest.raises(ChainError) as caught:
        verify_synthetic(chain, build_report(key), vcek)
    assert caught.value.check == "certificate validity"


def test_synthetic_chain_to_foreign_ark(chain: SyntheticChain, sample: CorpusSample) -> None:
    key, vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID)
    with pytest.raises(ChainError) as caught:
        snp.verify(
            build_report(key),
            anchors=sample.anchors,
            at=REPORT_TIME,
            collateral=Collateral(certificates=(vcek, chain.ask)),
        )
    assert caught.value.check == "certificate chain"


def test_synthetic_version_3_turin(chain: SyntheticChain) -> None:
    tcb = {"fmc": 1, "bootloader": 4, "tee": 2, "snp": 9, "microcode": 200}
    key, vcek = chain.endorsement_key(tcb, CHIP_ID)
    turin_tcb = bytes([1, 4, 2, 9, 0, 0, 0, 200])

    def set_cpuid(report: bytearray) -> None:
        _put(report, "cpuid_fam_id", 0x1A)
        _put(report, "cpuid_mod_id", 0x02)
        _put(report, "cpuid_step", 0x01)

    report = build_report(key, version=3, tcb_bytes=turin_tcb, edit=set_cpuid)
    evidence = verify_synthetic(chain, report, vcek)
    assert evidence.tcb == tcb
    assert evidence.claims["cpuid"] == {"family": 0x1A, "model": 2, "stepping": 1}


def test_synthetic_version_3_milan(chain: SyntheticChain) -> None:
    key, vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID)

    def set_cpuid(report: bytearray) -> None:
        _put(report, "cpuid_fam_id", 0x19)
        _put(report, "cpuid_mod_id", 0x01)

    evidence = verify_synthetic(chain, build_report(key, version=3, edit=set_cpuid), vcek)
    assert evidence.tcb == MILAN_TCB


def test_synthetic_debug_policy(chain: SyntheticChain) -> None:
    key, vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID)
    evidence = verify_synthetic(chain, build_report(key, policy=0x30000 | 1 << 19), vcek)
    assert evidence.debug is True


@pytest.mark.parametrize(
    ("name", "value"),
    [("version", 5), ("version", 1), ("signature_algo", 2), ("vmpl", 4), ("flags", 2 << 2)],
)
def test_synthetic_signed_but_unsupported(chain: SyntheticChain, name: str, value: int) -> None:
    key, vcek = chain.endorsement_key(MILAN_TCB, CHIP_ID)
    report = build_report(key, edit=lambda r: _put(r, name, value))
    with pytest.raises(MalformedEvidence):
        verify_synthetic(chain, report, vcek)


def test_synthetic_p256_key_rejected(chain: SyntheticChain) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("SEV-VCEK"))
        .issuer_name(chain.ask.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_BEFORE + timedelta(days=30))
        .sign(chain.ask_key, hashes.SHA384(), rsa_padding=_PSS)
    )
    with pytest.raises(SignatureError) as caught:
        verify_synthetic(chain, bytes(snp.REPORT_SIZE), cert)
    assert caught.value.check == "report signature"


def test_load_vcek_rejects_garbage() -> None:
    with pytest.raises(MalformedEvidence):
        snp.load_vcek(b"not a certificate")


def test_load_vcek_serial_zero_without_warning(corpus: Path) -> None:
    # AMD's VCEK has serial number 0; only reading `serial_number` itself warns.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cert = snp.load_vcek((corpus / "sev-snp" / "gsg_vcek.der").read_bytes())
        assert cert.subject.rfc4514_string().startswith("CN=SEV-VCEK")


# Fuzzing

_DOCUMENTED = (MalformedEvidence, VerificationError)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=snp.REPORT_SIZE + 8))
def test_fuzz_parse_random_bytes(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        snp.parse(data)
    snp.looks_like(data)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(st.integers(0, snp.REPORT_SIZE - 1), st.integers(1, 255)),
        min_size=1,
        max_size=8,
    )
)
def test_fuzz_mutated_report(sample: CorpusSample, edits: list[tuple[int, int]]) -> None:
    mutated = bytearray(sample.report)
    for position, mask in edits:
        mutated[position] ^= mask
    with contextlib.suppress(MalformedEvidence):
        snp.parse(bytes(mutated))
    with contextlib.suppress(*_DOCUMENTED):
        verify_sample(sample, bytes(mutated))


def test_verified_time_is_recorded(sample: CorpusSample) -> None:
    at = datetime(2024, 6, 1, tzinfo=UTC)
    evidence = verify_sample(sample, at=at)
    assert evidence.verified_at == at
