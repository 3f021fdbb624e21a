"""Tests of the NVIDIA SPDM measurement report verifier.

The corpus contains a real Hopper report, its certificate chain, the NVIDIA Device
Identity CA and a chain with a missing link. Reports for the other cases (expired
leaf, SPDM 1.0, P-256) are built here with a throwaway chain.
"""

from __future__ import annotations

import contextlib
import re
import struct
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from attestnet.errors import ChainError, MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence import spdm
from attestnet.evidence.anchors import load_anchor_file, load_collateral_file
from attestnet.evidence.model import Collateral, TrustAnchors
from tests.conftest import utc

AT = utc("2025-07-01T00:00:00Z")
REPORT = "nvidia/nvtrust_hopperAttestationReport.hex.txt"
DOCUMENTED_ERRORS = (MalformedEvidence, VerificationError)

# Offsets in the corpus report (raw bytes): request 0..37 (nonce 4..36, slot 36),
# response header 37..45, measurement record 45..3565, responder nonce 3565..3597,
# opaque length 3597..3599, opaque data 3599..4021, signature 4021..4117.
RECORD_START = 45
RESPONDER_NONCE = 3565
OPAQUE_START = 3599
SIGNATURE_START = 4021


@pytest.fixture(scope="module")
def report_hex(corpus: Path) -> bytes:
    return (corpus / REPORT).read_bytes()


@pytest.fixture(scope="module")
def report(report_hex: bytes) -> bytes:
    return bytes.fromhex(report_hex.decode().strip())


@pytest.fixture(scope="module")
def nvidia_root(corpus: Path) -> TrustAnchors:
    return load_anchor_file(corpus / "nvidia" / "nvidia_device_identity_ca.pem")


@pytest.fixture(scope="module")
def chain(corpus: Path) -> Collateral:
    return load_collateral_file(corpus / "nvidia" / "nvtrust_hopperCertChain.pem")


@pytest.fixture(scope="module")
def manifest_nonce(corpus: Path) -> bytes:
    for line in (corpus / "MANIFEST.tsv").read_text().splitlines():
        if line.startswith(REPORT + "\t"):
            match = re.search(r"requester nonce ([0-9a-f]{64})", line)
            assert match is not None, "MANIFEST.tsv names no requester nonce for the report"
            return bytes.fromhex(match.group(1))
    raise AssertionError(f"{REPORT} is not in MANIFEST.tsv")


def _flip(data: bytes, position: int) -> bytes:
    mutated = bytearray(data)
    mutated[position] ^= 0x01
    return bytes(mutated)


# --- corpus ---------------------------------------------------------------------------------


def test_corpus_report_valid(
    report_hex: bytes, nvidia_root: TrustAnchors, chain: Collateral, manifest_nonce: bytes
) -> None:
    evidence = spdm.verify(report_hex, anchors=nvidia_root, at=AT, collateral=chain)
    assert evidence.format == "spdm"
    assert evidence.nonce == manifest_nonce
    assert evidence.claims["spdm_version"] == "1.1"
    assert evidence.claims["opaque"]["driver_version"] == "550.90.07"
    assert len(evidence.measurements) == 64
    assert set(evidence.measurements) == {f"spdm/{i}" for i in range(1, 65)}
    assert all(len(value) == 48 for value in evidence.measurements.values())
    assert evidence.measurements["spdm/2"].hex().startswith("8048dfd1")
    assert isinstance(evidence.signer, ec.EllipticCurvePublicKey)
    assert [c.name for c in evidence.checks] == [
        "device certificate chain",
        "measurement signature",
    ]


def test_corpus_raw_and_hex_agree(
    report: bytes, report_hex: bytes, nvidia_root: TrustAnchors, chain: Collateral
) -> None:
    from_raw = spdm.verify(report, anchors=nvidia_root, at=AT, collateral=chain)
    from_hex = spdm.verify(report_hex, anchors=nvidia_root, at=AT, collateral=chain)
    assert from_raw.measurements == from_hex.measurements
    assert from_raw.claims == from_hex.claims


def test_corpus_parse_fields(report: bytes) -> None:
    parsed = spdm.parse(report)
    assert parsed.version == 0x11
    assert parsed.measurement_operation == 0xFF
    assert parsed.slot_id == 0
    assert len(parsed.blocks) == 64
    assert parsed.blocks[0].index == 1
    assert parsed.blocks[0].value_type == 1
    assert len(parsed.signature) == 96
    assert parsed.signed_data == report[:-96]


def test_corpus_broken_chain_fails(corpus: Path, report: bytes, nvidia_root: TrustAnchors) -> None:
    broken = load_collateral_file(corpus / "nvidia" / "trustee_hopper_cert_chain_case3_broken.pem")
    with pytest.raises(ChainError) as info:
        spdm.verify(report, anchors=nvidia_root, at=AT, collateral=broken)
    assert info.value.check == "certificate chain"
    assert "GSP BROM" in str(info.value)


def test_corpus_wrong_anchor_fails(corpus: Path, report: bytes, chain: Collateral) -> None:
    intel_root = load_anchor_file(corpus / "tdx" / "intel_sgx_root_ca.pem")
    with pytest.raises(ChainError) as info:
        spdm.verify(report, anchors=intel_root, at=AT, collateral=chain)
    assert info.value.check == "certificate chain"


def test_corpus_without_chain_fails(report: bytes, nvidia_root: TrustAnchors) -> None:
    with pytest.raises(ChainError) as info:
        spdm.verify(report, anchors=nvidia_root, at=AT, collateral=None)
    assert info.value.check == "device certificate chain"


def test_corpus_chain_order_does_not_matter(
    report: bytes, nvidia_root: TrustAnchors, chain: Collateral
) -> None:
    reversed_chain = Collateral(certificates=tuple(reversed(chain.certificates)))
    evidence = spdm.verify(report, anchors=nvidia_root, at=AT, collateral=reversed_chain)
    assert len(evidence.measurements) == 64


@pytest.mark.parametrize(
    "position",
    [
        2,  # request param1 (attributes), signature still requested
        3,  # request param2 (operation)
        10,  # requester nonce
        36,  # SlotIDParam
        39,  # response param1
        RECORD_START + 100,  # a measurement value
        RESPONDER_NONCE + 3,
        OPAQUE_START + 50,
        SIGNATURE_START + 5,  # r
        SIGNATURE_START + 60,  # s
    ],
)
def test_corpus_byte_flip_fails_signature(
    report: bytes, nvidia_root: TrustAnchors, chain: Collateral, position: int
) -> None:
    mutated = _flip(report, position)
    if position == 2:
        mutated = bytearray(report)
        mutated[2] = 0x03  # keep bit 0 (signature requested) set
        mutated = bytes(mutated)
    with pytest.raises(SignatureError) as info:
        spdm.verify(mutated, anchors=nvidia_root, at=AT, collateral=chain)
    assert info.value.check == "measurement signature"


def test_corpus_truncations_fail(
    report: bytes, nvidia_root: TrustAnchors, chain: Collateral
) -> None:
    for length in [*range(0, len(report), 37), len(report) - 1, len(report) - 32]:
        with pytest.raises(DOCUMENTED_ERRORS):
            spdm.verify(report[:length], anchors=nvidia_root, at=AT, collateral=chain)
    for length in range(0, SIGNATURE_START + 1, 41):
        with pytest.raises(MalformedEvidence):
            spdm.parse(report[:length])


def test_corpus_short_signature_fails(
    report: bytes, nvidia_root: TrustAnchors, chain: Collateral
) -> None:
    # 64 bytes is a P-256 size, so it parses, but the leaf key is P-384.
    with pytest.raises(SignatureError) as info:
        spdm.verify(report[:-32], anchors=nvidia_root, at=AT, collateral=chain)
    assert info.value.check == "measurement signature"
    assert info.value.claim == "signature"


@pytest.mark.parametrize(
    ("position", "value", "message"),
    [
        (0, 0x12, "SPDM version 1.2"),
        (1, 0xE1, "GET_MEASUREMENTS"),
        (2, 0x00, "did not ask for a signature"),
        (37, 0x10, "versions differ"),
        (38, 0x61, "MEASUREMENTS response"),
        (41, 63, "NumberOfBlocks is 63"),
        (RECORD_START + 1, 0x02, "not DMTF"),
    ],
)
def test_corpus_malformed_fields_rejected(
    report: bytes, position: int, value: int, message: str
) -> None:
    mutated = bytearray(report)
    mutated[position] = value
    with pytest.raises(MalformedEvidence, match=message):
        spdm.parse(bytes(mutated))


def test_odd_hex_text_rejected() -> None:
    with pytest.raises(MalformedEvidence, match="odd number"):
        spdm.parse(b"11e001f")


def test_looks_like_corpus(corpus: Path, report: bytes, report_hex: bytes) -> None:
    assert spdm.looks_like(report)
    assert spdm.looks_like(report_hex)
    for line in (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]:
        name = line.split("\t", 1)[0]
        path = corpus / name
        if name == REPORT or not path.is_file():
            continue
        assert not spdm.looks_like(path.read_bytes()), name


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parse_fuzz_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        spdm.parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_parse_fuzz_after_valid_request(data: bytes) -> None:
    request = bytes([0x11, 0xE0, 0x01, 0xFF]) + bytes(32) + b"\x00"
    with contextlib.suppress(MalformedEvidence):
        spdm.parse(request + bytes([0x11, 0x60]) + data)


@pytest.fixture(scope="module")
def corpus_inputs(
    report: bytes, nvidia_root: TrustAnchors, chain: Collateral
) -> tuple[bytes, TrustAnchors, Collateral]:
    return report, nvidia_root, chain


@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0, max_value=4116), value=st.integers(0, 255))
def test_verify_fuzz_mutations_raise_documented_errors(
    corpus_inputs: tuple[bytes, TrustAnchors, Collateral], position: int, value: int
) -> None:
    report, anchors, chain = corpus_inputs
    mutated = bytearray(report)
    if mutated[position] == value:
        return
    mutated[position] = value
    with pytest.raises(DOCUMENTED_ERRORS):
        spdm.verify(bytes(mutated), anchors=anchors, at=AT, collateral=chain)


# --- synthetic reports ------------------------------------------------------------------------

NOT_BEFORE = utc("2024-01-01T00:00:00Z")
NOT_AFTER = utc("2026-01-01T00:00:00Z")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    return builder.sign(issuer_key, hashes.SHA384())


def _build(curve: ec.EllipticCurve, version: int = 0x11) -> tuple[bytes, TrustAnchors, Collateral]:
    """Build request || response || signature with a two-level throwaway chain."""
    root_key = ec.generate_private_key(curve)
    leaf_key = ec.generate_private_key(curve)
    root = _cert("Test Device CA", root_key, "Test Device CA", root_key, ca=True)
    leaf = _cert("Test GPU leaf", leaf_key, "Test Device CA", root_key, ca=False)

    request = bytes([version, 0xE0, 0x01, 0xFF]) + b"\x31" * 32
    if version >= 0x11:
        request += b"\x00"
    blocks = b""
    for index, value in ((1, b"\xaa" * 48), (2, b"\xbb" * 48), (3, b"raw config")):
        value_type = 0x83 if index == 3 else 0x01
        measurement = struct.pack("<BH", value_type, len(value)) + value
        blocks += struct.pack("<BBH", index, 0x01, len(measurement)) + measurement
    opaque = struct.pack("<HH", 3, 8) + b"1.2.3\x00\x00\x00"
    response = bytes([version, 0x60, 0x00, 0x00, 3]) + len(blocks).to_bytes(3, "little")
    response += blocks + b"\x52" * 32 + struct.pack("<H", len(opaque)) + opaque
    signed = request + response
    digest = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[curve.key_size]
    r, s = decode_dss_signature(leaf_key.sign(signed, ec.ECDSA(digest)))
    size = (curve.key_size + 7) // 8
    signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return signed + signature, TrustAnchors(certificates=(root,)), Collateral(certificates=(leaf,))


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_synthetic_report_valid(curve: ec.EllipticCurve) -> None:
    report, anchors, collateral = _build(curve)
    evidence = spdm.verify(report, anchors=anchors, at=AT, collateral=collateral)
    assert evidence.nonce == b"\x31" * 32
    assert evidence.measurements == {
        "spdm/1": b"\xaa" * 48,
        "spdm/2": b"\xbb" * 48,
        "spdm/3": b"raw config",
    }
    assert evidence.claims["measurements"]["3"]["raw_bitstream"] is True
    assert evidence.claims["measurements"]["3"]["type"] == "firmware configuration"
    assert evidence.claims["opaque"]["driver_version"] == "1.2.3"


def test_synthetic_spdm_10_report_valid() -> None:
    report, anchors, collateral = _build(ec.SECP384R1(), version=0x10)
    evidence = spdm.verify(report, anchors=anchors, at=AT, collateral=collateral)
    assert evidence.claims["spdm_version"] == "1.0"
    assert evidence.claims["slot_id"] == 0


def test_synthetic_expired_leaf_fails() -> None:
    report, anchors, collateral = _build(ec.SECP384R1())
    with pytest.raises(ChainError) as info:
        spdm.verify(
            report, anchors=anchors, at=NOT_AFTER + timedelta(days=1), collateral=collateral
        )
    assert info.value.check == "certificate validity"


def test_synthetic_not_yet_valid_leaf_fails() -> None:
    report, anchors, collateral = _build(ec.SECP384R1())
    with pytest.raises(ChainError) as info:
        spdm.verify(
            report, anchors=anchors, at=NOT_BEFORE - timedelta(days=1), collateral=collateral
        )
    assert info.value.check == "certificate validity"


def test_synthetic_other_device_key_fails() -> None:
    report, anchors, _ = _build(ec.SECP384R1())
    _, other_anchors, other_collateral = _build(ec.SECP384R1())
    with pytest.raises(SignatureError) as info:
        spdm.verify(
            report,
            anchors=anchors.merged(other_anchors),
            at=AT,
            collateral=other_collateral,
        )
    assert info.value.check == "measurement signature"


def test_synthetic_duplicate_block_index_rejected() -> None:
    report, _, _ = _build(ec.SECP256R1())
    mutated = bytearray(report)
    second_block = 37 + 8 + 4 + 3 + 48
    mutated[second_block] = 1
    with pytest.raises(MalformedEvidence, match="repeats a block index"):
        spdm.parse(bytes(mutated))
