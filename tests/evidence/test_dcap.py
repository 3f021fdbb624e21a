"""Tests of the Intel DCAP (TDX and SGX) quote verifier.

The corpus contains two real TDX quotes with collateral. SGX quotes, TD report 1.5
module identities, revoked PCK certificates and other negative cases are built here
at run time: a throwaway root CA, PCK Platform CA, PCK leaf with the SGX extension,
TCB signing certificate, CRLs, signed TCB info and QE identity, and the quote itself.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestnet.errors import ChainError, MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence import dcap
from attestnet.evidence import dcap_collateral as dc
from attestnet.evidence.anchors import load_anchor_file, load_collateral_file
from attestnet.evidence.model import Collateral, TrustAnchors
from tests.conftest import utc

V4_TIME = utc("2025-07-01T00:00:00Z")
V5_TIME = utc("2026-03-01T00:00:00Z")
DOCUMENTED_ERRORS = (MalformedEvidence, VerificationError)


# --- corpus fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def intel_root(corpus: Path) -> TrustAnchors:
    return load_anchor_file(corpus / "tdx" / "intel_sgx_root_ca.pem")


@pytest.fixture(scope="module")
def v4_quote(corpus: Path) -> bytes:
    return (corpus / "tdx" / "dq_tdx_quote_v4.dat").read_bytes()


@pytest.fixture(scope="module")
def v4_collateral(corpus: Path) -> Collateral:
    return load_collateral_file(corpus / "tdx" / "dq_tdx_quote_v4_collateral.json")


@pytest.fixture(scope="module")
def v5_quote(corpus: Path) -> bytes:
    return (corpus / "tdx" / "dq_tdx_quote_outdated_v5.dat").read_bytes()


@pytest.fixture(scope="module")
def v5_collateral(corpus: Path) -> Collateral:
    return load_collateral_file(corpus / "tdx" / "dq_tdx_quote_outdated_v5_collateral.json")


def _flip(data: bytes, position: int) -> bytes:
    mutated = bytearray(data)
    mutated[position] ^= 0x01
    return bytes(mutated)


# --- corpus: outcomes as the manifest states --------------------------------------------


def test_corpus_v4_quote_valid_up_to_date(
    v4_quote: bytes, intel_root: TrustAnchors, v4_collateral: Collateral
) -> None:
    evidence = dcap.verify(v4_quote, anchors=intel_root, at=V4_TIME, collateral=v4_collateral)
    assert evidence.format == "tdx"
    assert evidence.claims["tcb_status"] == "UpToDate"
    assert evidence.claims["qe_tcb_status"] == "UpToDate"
    assert evidence.claims["tdx_module_tcb_status"] == "UpToDate"
    assert evidence.claims["advisory_ids"] == []
    assert evidence.claims["pck"]["fmspc"] == "b0c06f000000"
    assert evidence.claims["quote_version"] == 4
    assert evidence.claims["padding"] == 70
    assert evidence.debug is False
    assert evidence.nonce is not None
    assert len(evidence.nonce) == 64
    assert evidence.nonce.hex() == evidence.claims["td_report"]["report_data"]
    assert evidence.tcb["tdx/tee_tcb_svn/0"] == 6
    assert evidence.tcb["tdx/tee_tcb_svn/1"] == 1
    assert evidence.tcb["pck/pcesvn"] == 11
    for name in ("tdx/mrtd", "tdx/mrseam", "tdx/rtmr0", "tdx/rtmr3", "tdx/mrconfigid"):
        assert len(evidence.measurements[name]) == 48
    assert [c.name for c in evidence.checks] == [
        "quote signature",
        "pck certificate chain",
        "qe report signature",
        "qe report data",
        "tcb info signature",
        "qe identity signature",
        "qe identity",
        "tcb status",
    ]


def test_corpus_v5_quote_tcb_level_not_supported(
    v5_quote: bytes, intel_root: TrustAnchors, v5_collateral: Collateral
) -> None:
    with pytest.raises(VerificationError, match="TCB level not supported") as info:
        dcap.verify(v5_quote, anchors=intel_root, at=V5_TIME, collateral=v5_collateral)
    assert info.value.check == "tcb status"


def test_corpus_v5_quote_signatures_and_chain_pass(v5_quote: bytes) -> None:
    quote = dcap.parse(v5_quote)
    assert quote.header.version == 5
    assert quote.body_type == dcap.BODY_TYPE_TD15
    assert isinstance(quote.body, dcap.TdReport)
    assert quote.body.mr_servicetd is not None
    assert quote.body.tee_tcb_svn[:3] == bytes([7, 1, 3])
    assert quote.padding == 0


def test_corpus_v4_wrong_root_fails(v4_quote: bytes, v4_collateral: Collateral) -> None:
    other_root = _Pki.create().root_cert
    with pytest.raises(ChainError) as info:
        dcap.verify(
            v4_quote,
            anchors=TrustAnchors(certificates=(other_root,)),
            at=V4_TIME,
            collateral=v4_collateral,
        )
    assert info.value.check == "certificate chain"


def test_corpus_v4_expired_crl_fails(
    v4_quote: bytes, intel_root: TrustAnchors, v4_collateral: Collateral
) -> None:
    # The PCK CRL's nextUpdate (10:00:35) comes before the TCB info's (10:16:03).
    with pytest.raises(ChainError) as info:
        dcap.verify(
            v4_quote,
            anchors=intel_root,
            at=utc("2025-07-19T10:05:00Z"),
            collateral=v4_collateral,
        )
    assert info.value.check == "crl validity"


def test_corpus_v4_collateral_not_yet_valid(
    v4_quote: bytes, intel_root: TrustAnchors, v4_collateral: Collateral
) -> None:
    # The QE identity was issued at 10:32:27, after the CRLs and the TCB info.
    with pytest.raises(VerificationError) as info:
        dcap.verify(
            v4_quote,
            anchors=intel_root,
            at=utc("2025-06-19T10:20:00Z"),
            collateral=v4_collateral,
        )
    assert info.value.check == "collateral validity"


def test_corpus_v4_long_after_fails(
    v4_quote: bytes, intel_root: TrustAnchors, v4_collateral: Collateral
) -> None:
    with pytest.raises(VerificationError):
        dcap.verify(
            v4_quote, anchors=intel_root, at=utc("2026-01-01T00:00:00Z"), collateral=v4_collateral
        )


def test_corpus_v4_without_crls_fails_closed(v4_quote: bytes, intel_root: TrustAnchors) -> None:
    with pytest.raises(ChainError) as info:
        dcap.verify(v4_quote, anchors=intel_root, at=V4_TIME, collateral=None)
    assert info.value.check == "pck certificate revocation"


def test_corpus_v4_tcb_info_text_tampered(
    v4_quote: bytes, intel_root: TrustAnchors, v4_collateral: Collateral
) -> None:
    name, document = v4_collateral.documents[0]
    tampered = dict(document)
    tampered["tcb_info"] = document["tcb_info"].replace('"pcesvn":11', '"pcesvn":10', 1)
    assert tampered["tcb_info"] != document["tcb_info"]
    with pytest.raises(SignatureError) as info:
        dcap.verify(
            v4_quote,
            anchors=intel_root,
            at=V4_TIME,
            collateral=dataclasses.replace(v4_collateral, documents=((name, tampered),)),
        )
    assert info.value.check == "tcb info signature"


def test_corpus_v4_qe_identity_signature_flipped(
    v4_quote: bytes, intel_root: TrustAnchors, v4_collateral: Collateral
) -> None:
    name, document = v4_collateral.documents[0]
    tampered = dict(document)
    signature = bytes.fromhex(document["qe_identity_signature"])
    tampered["qe_identity_signature"] = _flip(signature, 40).hex()
    with pytest.raises(SignatureError) as info:
        dcap.verify(
            v4_quote,
            anchors=intel_root,
            at=V4_TIME,
            collateral=dataclasses.replace(v4_collateral, documents=((name, tampered),)),
        )
    assert info.value.check == "qe identity signature"


# Offsets in the v4 quote: header 0..48, TD report 48..632, signature data length
# 632..636, quote signature 636..700, attestation key 700..764, certification data
# header 764..770, QE report 770..1154, QE report signature 1154..1218, QE auth data
# size 1218..1220, QE auth data 1220..1252.
@pytest.mark.parametrize(
    ("position", "check"),
    [
        (12, "quote signature"),  # QE vendor id
        (30, "quote signature"),  # user data
        (48, "quote signature"),  # TEE_TCB_SVN
        (48 + 136, "quote signature"),  # MRTD
        (48 + 328 + 5, "quote signature"),  # RTMR0
        (48 + 520, "quote signature"),  # REPORTDATA
        (48 + 583, "quote signature"),  # last byte of the body
        (640, "quote signature"),  # the signature itself
        (700 + 10, "quote signature"),  # attestation key
        (770 + 64, "qe report signature"),  # QE report MRENCLAVE
        (770 + 320, "qe report signature"),  # QE report REPORTDATA
        (1154 + 3, "qe report signature"),  # QE report signature
        (1220 + 7, "qe report data"),  # QE auth data
    ],
)
def test_corpus_v4_byte_flip_fails_signature(
    v4_quote: bytes,
    intel_root: TrustAnchors,
    v4_collateral: Collateral,
    position: int,
    check: str,
) -> None:
    with pytest.raises(SignatureError) as info:
        dcap.verify(
            _flip(v4_quote, position), anchors=intel_root, at=V4_TIME, collateral=v4_collateral
        )
    assert info.value.check == check


def test_corpus_v4_trailing_nonzero_rejected(v4_quote: bytes) -> None:
    with pytest.raises(MalformedEvidence, match="not all zero"):
        dcap.parse(v4_quote[:-1] + b"\x01")


def test_corpus_v4_truncations_fail(
    v4_quote: bytes, intel_root: TrustAnchors, v4_collateral: Collateral
) -> None:
    quote_end = 4936  # the 70 bytes after it are zero padding
    lengths = [*range(0, 1300, 7), *range(1300, quote_end, 97), quote_end - 1]
    for length in lengths:
        with pytest.raises(DOCUMENTED_ERRORS):
            dcap.verify(v4_quote[:length], anchors=intel_root, at=V4_TIME, collateral=v4_collateral)
    for length in range(0, quote_end, 61):
        with pytest.raises(MalformedEvidence):
            dcap.parse(v4_quote[:length])


def test_corpus_v4_padding_may_be_cut(
    v4_quote: bytes, intel_root: TrustAnchors, v4_collateral: Collateral
) -> None:
    evidence = dcap.verify(
        v4_quote[:4936], anchors=intel_root, at=V4_TIME, collateral=v4_collateral
    )
    assert "padding" not in evidence.claims


def test_looks_like_corpus(corpus: Path, v4_quote: bytes, v5_quote: bytes) -> None:
    assert dcap.looks_like(v4_quote)
    assert dcap.looks_like(v5_quote)
    for line in (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]:
        name = line.split("\t", 1)[0]
        path = corpus / name
        if name.startswith("tdx/") or not path.is_file():
            continue
        assert not dcap.looks_like(path.read_bytes()), name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_parse_fuzz_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        dcap.parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=700))
def test_parse_fuzz_after_valid_header(data: bytes) -> None:
    header = bytes.fromhex("0400020081000000") + bytes(40)
    with contextlib.suppress(MalformedEvidence):
        dcap.parse(header + data)


@pytest.fixture(scope="module")
def corpus_inputs(
    v4_quote: bytes, intel_root: TrustAnchors, v4_collateral: Collateral
) -> tuple[bytes, TrustAnchors, Collateral]:
    return v4_quote, intel_root, v4_collateral


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0, max_value=4935), value=st.integers(0, 255))
def test_verify_fuzz_mutations_raise_documented_errors(
    corpus_inputs: tuple[bytes, TrustAnchors, Collateral], position: int, value: int
) -> None:
    quote, anchors, collateral = corpus_inputs
    mutated = bytearray(quote)
    if mutated[position] == value:
        return
    mutated[position] = value
    # Some bytes are not covered by any signature (PEM line breaks), so a mutation may
    # still verify; the test asserts that nothing but the documented errors escapes.
    with contextlib.suppress(*DOCUMENTED_ERRORS):
        dcap.verify(bytes(mutated), anchors=anchors, at=V4_TIME, collateral=collateral)


# --- synthetic PKI and quotes ---------------------------------------------------------------

NOT_BEFORE = utc("2024-01-01T00:00:00Z")
NOT_AFTER = utc("2030-01-01T00:00:00Z")
AT = utc("2025-01-15T00:00:00Z")
ISSUE_DATE = "2025-01-01T00:00:00Z"
NEXT_UPDATE = "2025-02-01T00:00:00Z"
FMSPC = bytes.fromhex("00906ed50000")
PCE_ID = bytes.fromhex("0000")
QE_MRSIGNER = bytes(range(32))
SGX_PREFIX = "1.2.840.113741.1.13.1"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "attestnet test"),
        ]
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    extensions: tuple[x509.ExtensionType, ...] = (),
    serial: int | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(
    issuer: str, key: ec.EllipticCurvePrivateKey, revoked: tuple[int, ...] = ()
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name(issuer))
        .last_update(utc("2025-01-01T00:00:00Z"))
        .next_update(utc("2025-02-01T00:00:00Z"))
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(utc("2025-01-02T00:00:00Z"))
            .build()
        )
    return builder.sign(key, hashes.SHA256())


def _der(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _der_oid(dotted: str) -> bytes:
    numbers = [int(part) for part in dotted.split(".")]
    body = bytes([numbers[0] * 40 + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        body += bytes(reversed(chunk))
    return _der(0x06, body)


def _der_int(value: int, tag: int = 0x02) -> bytes:
    return _der(tag, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _pair(suffix: str, value: bytes) -> bytes:
    return _der(0x30, _der_oid(f"{SGX_PREFIX}.{suffix}") + value)


def _sgx_extension(components: list[int], pce_svn: int) -> x509.UnrecognizedExtension:
    tcb = b"".join(_pair(f"2.{i}", _der_int(svn)) for i, svn in enumerate(components, 1))
    tcb += _pair("2.17", _der_int(pce_svn)) + _pair("2.18", _der(0x04, bytes(components)))
    content = (
        _pair("1", _der(0x04, bytes(range(16))))
        + _pair("2", _der(0x30, tcb))
        + _pair("3", _der(0x04, PCE_ID))
        + _pair("4", _der(0x04, FMSPC))
        + _pair("5", _der_int(0, tag=0x0A))
    )
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX_PREFIX), _der(0x30, content))


def _raw_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


@dataclass
class _Pki:
    root_key: ec.EllipticCurvePrivateKey
    root_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    tcb_key: ec.EllipticCurvePrivateKey
    tcb_cert: x509.Certificate

    @classmethod
    def create(cls, prefix: str = "Test SGX") -> _Pki:
        root_key = ec.generate_private_key(ec.SECP256R1())
        ca_key = ec.generate_private_key(ec.SECP256R1())
        tcb_key = ec.generate_private_key(ec.SECP256R1())
        root = f"{prefix} Root CA"
        return cls(
            root_key,
            _cert(root, root_key, root, root_key, ca=True),
            ca_key,
            _cert(f"{prefix} PCK Platform CA", ca_key, root, root_key, ca=True),
            tcb_key,
            _cert(f"{prefix} TCB Signing", tcb_key, root, root_key, ca=False),
        )


def _components(svn: int, length: int = 16) -> list[dict[str, int]]:
    return [{"svn": svn} for _ in range(length)]


@dataclass
class QuoteSpec:
    """Parameters of one synthetic quote and its collateral; tests change a few."""

    tee: str = "sgx"
    version: int = 3
    td15: bool = False
    pck_components: list[int] = field(default_factory=lambda: [4] * 16)
    pck_pce_svn: int = 13
    revoke_pck: bool = False
    revoke_platform_ca: bool = False
    debug: bool = False
    qe_isv_svn: int = 8
    qe_mrsigner: bytes = QE_MRSIGNER
    tee_tcb_svn: bytes = bytes([5, 1, 3]) + bytes(13)
    mr_signer_seam: bytes = bytes(48)
    certification_data_type: int = 5
    tcb_levels: list[dict[str, Any]] | None = None
    tcb_info_changes: dict[str, Any] = field(default_factory=dict)
    qe_identity_changes: dict[str, Any] = field(default_factory=dict)


_PKI = _Pki.create()


def _default_tcb_levels(spec: QuoteSpec) -> list[dict[str, Any]]:
    def level(sgx: int, pce: int, status: str, advisories: list[str]) -> dict[str, Any]:
        tcb: dict[str, Any] = {"sgxtcbcomponents": _components(sgx), "pcesvn": pce}
        if spec.tee == "tdx":
            tcb["tdxtcbcomponents"] = [*_components(0, 2), {"svn": 3}, *_components(0, 13)]
        result: dict[str, Any] = {"tcb": tcb, "tcbDate": "2024-03-13T00:00:00Z"}
        result["tcbStatus"] = status
        if advisories:
            result["advisoryIDs"] = advisories
        return result

    return [
        level(4, 13, "UpToDate", []),
        level(2, 11, "OutOfDate", ["INTEL-SA-00001", "INTEL-SA-00002"]),
        level(1, 5, "Revoked", ["INTEL-SA-00003"]),
    ]


def _tcb_info(spec: QuoteSpec) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": spec.tee.upper(),
        "version": 3,
        "issueDate": ISSUE_DATE,
        "nextUpdate": NEXT_UPDATE,
        "fmspc": FMSPC.hex().upper(),
        "pceId": PCE_ID.hex().upper(),
        "tcbType": 0,
        "tcbEvaluationDataNumber": 17,
        "tcbLevels": spec.tcb_levels or _default_tcb_levels(spec),
    }
    if spec.tee == "tdx":
        info["tdxModule"] = {
            "mrsigner": "00" * 48,
            "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF",
        }
        info["tdxModuleIdentities"] = [
            {
                "id": "TDX_01",
                "mrsigner": "00" * 48,
                "attributes": "0000000000000000",
                "attributesMask": "FFFFFFFFFFFFFFFF",
                "tcbLevels": [
                    {"tcb": {"isvsvn": 4}, "tcbDate": ISSUE_DATE, "tcbStatus": "UpToDate"},
                    {"tcb": {"isvsvn": 2}, "tcbDate": ISSUE_DATE, "tcbStatus": "OutOfDate"},
                ],
            }
        ]
    info.update(spec.tcb_info_changes)
    return info


def _qe_identity(spec: QuoteSpec) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "id": "TD_QE" if spec.tee == "tdx" else "QE",
        "version": 2,
        "issueDate": ISSUE_DATE,
        "nextUpdate": NEXT_UPDATE,
        "tcbEvaluationDataNumber": 17,
        "miscselect": "00000000",
        "miscselectMask": "FFFFFFFF",
        "attributes": "11000000000000000000000000000000",
        "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": QE_MRSIGNER.hex().upper(),
        "isvprodid": 1 if spec.tee == "sgx" else 2,
        "tcbLevels": [
            {"tcb": {"isvsvn": 8}, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"},
            {"tcb": {"isvsvn": 6}, "tcbDate": "2023-08-09T00:00:00Z", "tcbStatus": "OutOfDate"},
        ],
    }
    identity.update(spec.qe_identity_changes)
    return identity


def _sgx_report(
    *,
    attributes: bytes,
    mr_enclave: bytes,
    mr_signer: bytes,
    isv_prod_id: int,
    isv_svn: int,
    report_data: bytes,
) -> bytes:
    report = bytearray(384)
    report[0:16] = bytes([4] * 16)
    report[48:64] = attributes
    report[64:96] = mr_enclave
    report[128:160] = mr_signer
    report[256:258] = isv_prod_id.to_bytes(2, "little")
    report[258:260] = isv_svn.to_bytes(2, "little")
    report[320:384] = report_data
    return bytes(report)


def _td_report(spec: QuoteSpec) -> bytes:
    report = bytearray(648 if spec.td15 else 584)
    report[0:16] = spec.tee_tcb_svn
    report[16:64] = b"\x5e" * 48  # MRSEAM
    report[64:112] = spec.mr_signer_seam
    report[120] = 0x01 if spec.debug else 0x00
    report[136:184] = b"\x7d" * 48  # MRTD
    for index in range(4):
        report[328 + 48 * index : 376 + 48 * index] = bytes([0x40 + index]) * 48
    report[520:584] = b"\x99" * 64  # REPORTDATA
    if spec.td15:
        report[600:648] = b"\x5d" * 48  # MRSERVICETD
    return bytes(report)


def build(spec: QuoteSpec | None = None) -> tuple[bytes, Collateral, TrustAnchors]:
    """Build a signed quote, its collateral (QuoteCollateralV3 shape) and the anchors."""
    spec = spec or QuoteSpec()
    pki = _PKI
    pck_key = ec.generate_private_key(ec.SECP256R1())
    pck_cert = _cert(
        "Test SGX PCK Certificate",
        pck_key,
        "Test SGX PCK Platform CA",
        pki.ca_key,
        ca=False,
        extensions=(_sgx_extension(spec.pck_components, spec.pck_pce_svn),),
    )
    attestation_key = ec.generate_private_key(ec.SECP256R1())
    numbers = attestation_key.public_key().public_numbers()
    attestation_raw = numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    auth_data = bytes(range(32))

    qe_report = _sgx_report(
        attributes=bytes.fromhex("11000000000000000700000000000000"),
        mr_enclave=b"\xee" * 32,
        mr_signer=spec.qe_mrsigner,
        isv_prod_id=1 if spec.tee == "sgx" else 2,
        isv_svn=spec.qe_isv_svn,
        report_data=hashlib.sha256(attestation_raw + auth_data).digest() + bytes(32),
    )
    chain_pem = (_pem(pck_cert, pki.ca_cert, pki.root_cert)).encode() + b"\x00"
    qe_data = (
        qe_report
        + _raw_signature(pck_key, qe_report)
        + struct.pack("<H", len(auth_data))
        + auth_data
        + struct.pack("<HI", spec.certification_data_type, len(chain_pem))
        + chain_pem
    )

    tee_type = 0x81 if spec.tee == "tdx" else 0
    header = struct.pack("<HHIHH", spec.version, 2, tee_type, 0, 0)
    header += dcap.INTEL_QE_VENDOR_ID + bytes(20)
    if spec.tee == "tdx":
        body = _td_report(spec)
    else:
        body = _sgx_report(
            attributes=bytes([0x07 if spec.debug else 0x05]) + bytes(7) + bytes([3]) + bytes(7),
            mr_enclave=b"\xab" * 32,
            mr_signer=b"\xcd" * 32,
            isv_prod_id=7,
            isv_svn=2,
            report_data=b"\x42" * 64,
        )
    if spec.version == 5:
        body_type = 1 if spec.tee == "sgx" else (3 if spec.td15 else 2)
        body = struct.pack("<HI", body_type, len(body)) + body
    signed = header + body
    certification = qe_data
    if spec.version != 3:
        certification = struct.pack("<HI", 6, len(qe_data)) + qe_data
    signature_data = _raw_signature(attestation_key, signed) + attestation_raw + certification
    quote = signed + struct.pack("<I", len(signature_data)) + signature_data

    tcb_info_text = json.dumps(_tcb_info(spec), separators=(",", ":"))
    qe_identity_text = json.dumps(_qe_identity(spec), separators=(",", ":"))
    revoked = (pck_cert.serial_number,) if spec.revoke_pck else ()
    pck_crl = _crl("Test SGX PCK Platform CA", pki.ca_key, revoked)
    revoked_cas = (pki.ca_cert.serial_number,) if spec.revoke_platform_ca else ()
    root_crl = _crl("Test SGX Root CA", pki.root_key, revoked_cas)
    document = {
        "pck_crl_issuer_chain": _pem(pki.ca_cert, pki.root_cert),
        "root_ca_crl": root_crl.public_bytes(serialization.Encoding.DER).hex(),
        "pck_crl": pck_crl.public_bytes(serialization.Encoding.DER).hex(),
        "tcb_info_issuer_chain": _pem(pki.tcb_cert, pki.root_cert),
        "tcb_info": tcb_info_text,
        "tcb_info_signature": _raw_signature(pki.tcb_key, tcb_info_text.encode()).hex(),
        "qe_identity_issuer_chain": _pem(pki.tcb_cert, pki.root_cert),
        "qe_identity": qe_identity_text,
        "qe_identity_signature": _raw_signature(pki.tcb_key, qe_identity_text.encode()).hex(),
    }
    collateral = Collateral(documents=(("collateral.json", document),))
    return quote, collateral, TrustAnchors(certificates=(pki.root_cert,))


def _verify(spec: QuoteSpec | None = None, at: datetime = AT) -> Any:
    quote, collateral, anchors = build(spec)
    return dcap.verify(quote, anchors=anchors, at=at, collateral=collateral)


# --- synthetic: SGX -------------------------------------------------------------------------


def test_sgx_v3_quote_valid() -> None:
    evidence = _verify()
    assert evidence.format == "sgx"
    assert evidence.claims["tcb_status"] == "UpToDate"
    assert evidence.claims["quote_version"] == 3
    assert evidence.measurements["sgx/mrenclave"] == b"\xab" * 32
    assert evidence.measurements["sgx/mrsigner"] == b"\xcd" * 32
    assert evidence.nonce == b"\x42" * 64
    assert evidence.debug is False
    assert evidence.tcb["sgx/isvsvn"] == 2
    assert evidence.tcb["pck/comp01"] == 4
    assert evidence.instance_id == bytes(range(16))


def test_sgx_v4_quote_valid() -> None:
    evidence = _verify(QuoteSpec(version=4))
    assert evidence.claims["quote_version"] == 4
    assert evidence.format == "sgx"


def test_sgx_v5_quote_valid() -> None:
    evidence = _verify(QuoteSpec(version=5))
    assert evidence.claims["body_type"] == dcap.BODY_TYPE_SGX


def test_sgx_debug_enclave_reported() -> None:
    assert _verify(QuoteSpec(debug=True)).debug is True


def test_sgx_revoked_pck_fails() -> None:
    with pytest.raises(ChainError) as info:
        _verify(QuoteSpec(revoke_pck=True))
    assert info.value.check == "certificate revocation"


def test_sgx_revoked_platform_ca_fails() -> None:
    with pytest.raises(ChainError) as info:
        _verify(QuoteSpec(revoke_platform_ca=True))
    assert info.value.check == "certificate revocation"
    assert "PCK Platform CA" in str(info.value)


def _pcs_collateral(
    document: dict[str, Any], crl_keys: tuple[str, ...], *, raw_text: bool = True
) -> Collateral:
    """Re-shape QuoteCollateralV3 collateral as Intel PCS responses plus PEM/DER files."""
    tcb_info_response = (
        f'{{"tcbInfo":{document["tcb_info"]},"signature":"{document["tcb_info_signature"]}"}}'
    )
    qe_identity_response = (
        f'{{"enclaveIdentity":{document["qe_identity"]},'
        f'"signature":"{document["qe_identity_signature"]}"}}'
    )
    documents: tuple[tuple[str, Any], ...] = (
        ("tcb.json", tcb_info_response),
        ("qe.json", qe_identity_response),
    )
    if not raw_text:
        documents = tuple((name, json.loads(text)) for name, text in documents)
    crls = tuple(x509.load_der_x509_crl(bytes.fromhex(document[key])) for key in crl_keys)
    return Collateral(certificates=(_PKI.tcb_cert, _PKI.root_cert), crls=crls, documents=documents)


def test_sgx_missing_pck_crl_fails_closed() -> None:
    quote, collateral, anchors = build()
    _, document = collateral.documents[0]
    only_root_crl = _pcs_collateral(document, ("root_ca_crl",))
    with pytest.raises(ChainError) as info:
        dcap.verify(quote, anchors=anchors, at=AT, collateral=only_root_crl)
    assert info.value.check == "pck certificate revocation"
    assert "PCK Platform CA" in str(info.value.expected)


def test_sgx_wrong_root_fails() -> None:
    quote, collateral, _ = build()
    other = TrustAnchors(certificates=(_Pki.create().root_cert,))
    with pytest.raises(ChainError) as info:
        dcap.verify(quote, anchors=other, at=AT, collateral=collateral)
    assert info.value.check == "certificate chain"


def test_sgx_expired_tcb_info_fails() -> None:
    spec = QuoteSpec(tcb_info_changes={"nextUpdate": "2025-01-10T00:00:00Z"})
    with pytest.raises(VerificationError) as info:
        _verify(spec)
    assert info.value.check == "collateral validity"
    assert info.value.claim == "issueDate..nextUpdate"


def test_sgx_expired_crl_fails() -> None:
    with pytest.raises(ChainError) as info:
        _verify(at=utc("2025-02-02T00:00:00Z"))
    assert info.value.check == "crl validity"


def test_sgx_expired_certificates_fail() -> None:
    with pytest.raises(ChainError) as info:
        _verify(at=NOT_AFTER + timedelta(days=1))
    assert info.value.check == "certificate validity"


def test_sgx_out_of_date_tcb_reported() -> None:
    evidence = _verify(QuoteSpec(pck_components=[3] * 16))
    assert evidence.claims["tcb_status"] == "OutOfDate"
    assert evidence.claims["advisory_ids"] == ["INTEL-SA-00001", "INTEL-SA-00002"]


def test_sgx_low_pce_svn_lowers_level() -> None:
    evidence = _verify(QuoteSpec(pck_pce_svn=12))
    assert evidence.claims["tcb_status"] == "OutOfDate"


def test_sgx_revoked_tcb_level_fails() -> None:
    with pytest.raises(VerificationError) as info:
        _verify(QuoteSpec(pck_components=[1] * 16))
    assert info.value.check == "tcb status"
    assert info.value.claim == "tcbStatus"


def test_sgx_no_tcb_level_fails() -> None:
    with pytest.raises(VerificationError, match="TCB level not supported") as info:
        _verify(QuoteSpec(pck_components=[0] * 16))
    assert info.value.check == "tcb status"


def test_sgx_tcb_info_version_2_levels() -> None:
    levels = [
        {
            "tcb": {**{f"sgxtcbcomp{i:02d}svn": 4 for i in range(1, 17)}, "pcesvn": 13},
            "tcbDate": "2024-03-13T00:00:00Z",
            "tcbStatus": "SWHardeningNeeded",
            "advisoryIDs": ["INTEL-SA-00615"],
        }
    ]
    spec = QuoteSpec(tcb_levels=levels, tcb_info_changes={"version": 2})
    evidence = _verify(spec)
    assert evidence.claims["tcb_status"] == "SWHardeningNeeded"
    assert evidence.claims["advisory_ids"] == ["INTEL-SA-00615"]


def test_sgx_qe_out_of_date_lowers_status() -> None:
    evidence = _verify(QuoteSpec(qe_isv_svn=7))
    assert evidence.claims["qe_tcb_status"] == "OutOfDate"
    assert evidence.claims["tcb_status"] == "OutOfDate"


def test_sgx_qe_below_every_level_is_revoked() -> None:
    with pytest.raises(VerificationError) as info:
        _verify(QuoteSpec(qe_isv_svn=5))
    assert info.value.check == "tcb status"


def test_sgx_qe_mrsigner_mismatch_fails() -> None:
    with pytest.raises(VerificationError) as info:
        _verify(QuoteSpec(qe_mrsigner=b"\x01" * 32))
    assert info.value.check == "qe identity"
    assert info.value.claim == "mrsigner"


def test_sgx_qe_attributes_mismatch_fails() -> None:
    spec = QuoteSpec(qe_identity_changes={"attributes": "13000000000000000000000000000000"})
    with pytest.raises(VerificationError) as info:
        _verify(spec)
    assert info.value.check == "qe identity"
    assert info.value.claim == "attributes"


def test_sgx_qe_identity_for_tdx_not_used() -> None:
    with pytest.raises(VerificationError) as info:
        _verify(QuoteSpec(qe_identity_changes={"id": "TD_QE"}))
    assert info.value.check == "qe identity"


def test_sgx_fmspc_mismatch_fails() -> None:
    with pytest.raises(VerificationError) as info:
        _verify(QuoteSpec(tcb_info_changes={"fmspc": "00906EA10000"}))
    assert info.value.check == "tcb info"


def test_sgx_pce_id_mismatch_fails() -> None:
    with pytest.raises(VerificationError) as info:
        _verify(QuoteSpec(tcb_info_changes={"pceId": "0001"}))
    assert info.value.check == "tcb info"
    assert info.value.claim == "pceId"


def test_sgx_unsupported_certification_data_fails() -> None:
    with pytest.raises(ChainError) as info:
        _verify(QuoteSpec(certification_data_type=3))
    assert info.value.check == "pck certificate chain"


def test_sgx_tcb_info_signed_by_other_key_fails() -> None:
    quote, collateral, anchors = build()
    name, document = collateral.documents[0]
    document = dict(document)
    other_key = ec.generate_private_key(ec.SECP256R1())
    document["tcb_info_signature"] = _raw_signature(other_key, document["tcb_info"].encode()).hex()
    with pytest.raises(SignatureError) as info:
        dcap.verify(
            quote, anchors=anchors, at=AT, collateral=Collateral(documents=((name, document),))
        )
    assert info.value.check == "tcb info signature"


def test_sgx_tcb_signing_chain_to_other_root_fails() -> None:
    quote, collateral, anchors = build()
    name, document = collateral.documents[0]
    other = _Pki.create("Other")
    document = dict(document)
    document["tcb_info_issuer_chain"] = _pem(other.tcb_cert, other.root_cert)
    signature = _raw_signature(other.tcb_key, document["tcb_info"].encode())
    document["tcb_info_signature"] = signature.hex()
    with pytest.raises(ChainError) as info:
        dcap.verify(
            quote, anchors=anchors, at=AT, collateral=Collateral(documents=((name, document),))
        )
    assert info.value.check == "certificate chain"


def test_sgx_missing_collateral_document_fails() -> None:
    quote, collateral, anchors = build()
    _, document = collateral.documents[0]
    crls = tuple(
        x509.load_der_x509_crl(bytes.fromhex(document[key])) for key in ("pck_crl", "root_ca_crl")
    )
    with pytest.raises(VerificationError) as info:
        dcap.verify(quote, anchors=anchors, at=AT, collateral=Collateral(crls=crls))
    assert info.value.check == "tcb info"


def test_sgx_malformed_collateral_fails_as_verification_error() -> None:
    quote, collateral, anchors = build()
    name, document = collateral.documents[0]
    for key, value in (("tcb_info", "{not json"), ("pck_crl", "zz"), ("tcb_info_signature", 5)):
        broken = dict(document)
        broken[key] = value
        with pytest.raises(VerificationError) as info:
            dcap.verify(
                quote, anchors=anchors, at=AT, collateral=Collateral(documents=((name, broken),))
            )
        assert info.value.check == "collateral", key


@pytest.mark.parametrize("raw_text", [True, False])
def test_sgx_pcs_shaped_collateral(raw_text: bool) -> None:
    quote, collateral, anchors = build()
    _, document = collateral.documents[0]
    pcs_collateral = _pcs_collateral(document, ("pck_crl", "root_ca_crl"), raw_text=raw_text)
    evidence = dcap.verify(quote, anchors=anchors, at=AT, collateral=pcs_collateral)
    assert evidence.claims["tcb_status"] == "UpToDate"


def test_sgx_byte_flips_fail_signature() -> None:
    quote, collateral, anchors = build()
    # Header, report body (MRENCLAVE, REPORTDATA), quote signature, attestation key,
    # QE report, QE report signature, QE auth data.
    positions = {
        20: "quote signature",
        48 + 64: "quote signature",
        48 + 320: "quote signature",
        436 + 5: "quote signature",
        436 + 64 + 5: "quote signature",
        436 + 128 + 64: "qe report signature",
        436 + 128 + 384 + 1: "qe report signature",
        436 + 128 + 384 + 64 + 2 + 4: "qe report data",
    }
    for position, check in positions.items():
        with pytest.raises(SignatureError) as info:
            dcap.verify(_flip(quote, position), anchors=anchors, at=AT, collateral=collateral)
        assert info.value.check == check, position


def test_sgx_truncations_fail() -> None:
    quote, collateral, anchors = build()
    for length in range(0, len(quote), 13):
        with pytest.raises(DOCUMENTED_ERRORS):
            dcap.verify(quote[:length], anchors=anchors, at=AT, collateral=collateral)


def test_sgx_trailing_bytes_in_signature_data_rejected() -> None:
    quote, _, _ = build(QuoteSpec(version=4))
    length_offset = 48 + 384
    (size,) = struct.unpack_from("<I", quote, length_offset)
    longer = quote[:length_offset] + struct.pack("<I", size + 1) + quote[length_offset + 4 :]
    longer += b"\x00"
    with pytest.raises(MalformedEvidence, match="after the certification data"):
        dcap.parse(longer)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (struct.pack("<HHI", 2, 2, 0), "version 2"),
        (struct.pack("<HHI", 4, 3, 0), "attestation key type 3"),
        (struct.pack("<HHI", 4, 2, 0x11), "neither SGX nor TDX"),
        (struct.pack("<HHI", 3, 2, 0x81), "version 3 quote must be an SGX"),
    ],
)
def test_bad_header_rejected(header: bytes, message: str) -> None:
    quote, _, _ = build()
    with pytest.raises(MalformedEvidence, match=message):
        dcap.parse(header + quote[8:])


def test_v5_body_type_mismatch_rejected() -> None:
    quote, _, _ = build(QuoteSpec(version=5))
    mutated = quote[:48] + struct.pack("<HI", 2, 384) + quote[54:]
    with pytest.raises(MalformedEvidence, match="body type 2 with size 384"):
        dcap.parse(mutated)


# --- synthetic: TDX ---------------------------------------------------------------------------


def test_tdx_v4_synthetic_valid() -> None:
    evidence = _verify(QuoteSpec(tee="tdx", version=4))
    assert evidence.format == "tdx"
    assert evidence.claims["tcb_status"] == "UpToDate"
    assert evidence.measurements["tdx/mrtd"] == b"\x7d" * 48
    assert evidence.measurements["tdx/rtmr2"] == b"\x42" * 48
    assert "tdx/mrservicetd" not in evidence.measurements


def test_tdx_v5_td15_synthetic_valid() -> None:
    evidence = _verify(QuoteSpec(tee="tdx", version=5, td15=True))
    assert evidence.claims["body_type"] == dcap.BODY_TYPE_TD15
    assert evidence.measurements["tdx/mrservicetd"] == b"\x5d" * 48
    assert evidence.tcb["tdx/tee_tcb_svn2/0"] == 0


def test_tdx_debug_bit_reported() -> None:
    assert _verify(QuoteSpec(tee="tdx", version=4, debug=True)).debug is True


def test_tdx_module_out_of_date_lowers_status() -> None:
    spec = QuoteSpec(tee="tdx", version=4, tee_tcb_svn=bytes([3, 1, 3]) + bytes(13))
    evidence = _verify(spec)
    assert evidence.claims["tdx_module_tcb_status"] == "OutOfDate"
    assert evidence.claims["tcb_status"] == "OutOfDate"


def test_tdx_module_below_every_level_fails() -> None:
    spec = QuoteSpec(tee="tdx", version=4, tee_tcb_svn=bytes([1, 1, 3]) + bytes(13))
    with pytest.raises(VerificationError, match="TCB level not supported") as info:
        _verify(spec)
    assert info.value.check == "tcb status"


def test_tdx_module_version_without_identity_fails() -> None:
    spec = QuoteSpec(tee="tdx", version=4, tee_tcb_svn=bytes([5, 2, 3]) + bytes(13))
    with pytest.raises(VerificationError) as info:
        _verify(spec)
    assert info.value.check == "tdx module identity"
    assert info.value.expected == "TDX_02"


def test_tdx_module_version_zero_uses_tdx_module() -> None:
    spec = QuoteSpec(tee="tdx", version=4, tee_tcb_svn=bytes([0, 0, 3]) + bytes(13))
    evidence = _verify(spec)
    assert evidence.claims["tdx_module_tcb_status"] == "UpToDate"


def test_tdx_mrsignerseam_mismatch_fails() -> None:
    spec = QuoteSpec(tee="tdx", version=4, mr_signer_seam=b"\x01" * 48)
    with pytest.raises(VerificationError) as info:
        _verify(spec)
    assert info.value.check == "tdx module identity"
    assert info.value.claim == "mrsignerseam"


def test_tdx_low_tee_tcb_svn_component_fails() -> None:
    spec = QuoteSpec(tee="tdx", version=4, tee_tcb_svn=bytes([5, 1, 2]) + bytes(13))
    with pytest.raises(VerificationError, match="TCB level not supported"):
        _verify(spec)


def test_tdx_quote_with_sgx_tcb_info_fails() -> None:
    spec = QuoteSpec(tee="tdx", version=4, tcb_info_changes={"id": "SGX"})
    with pytest.raises(VerificationError) as info:
        _verify(spec)
    assert info.value.check == "tcb info"


# --- collateral helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "other", "expected"),
    [
        ("UpToDate", "UpToDate", "UpToDate"),
        ("UpToDate", "OutOfDate", "OutOfDate"),
        ("SWHardeningNeeded", "OutOfDate", "OutOfDate"),
        ("ConfigurationNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
        ("ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
        ("ConfigurationNeeded", "UpToDate", "ConfigurationNeeded"),
        ("UpToDate", "Revoked", "Revoked"),
        ("Revoked", "UpToDate", "Revoked"),
    ],
)
def test_converge_status(platform: str, other: str, expected: str) -> None:
    assert dc.converge_status(platform, other) == expected


def test_json_member_text_exact() -> None:
    text = '{ "a" : [1, 2],\n "tcbInfo" : {"x": 1,  "y":"}"} , "signature":"ab"}'
    assert dc.json_member_text(text, "tcbInfo") == '{"x": 1,  "y":"}"}'
    with pytest.raises(VerificationError):
        dc.json_member_text(text, "missing")
    with pytest.raises(VerificationError):
        dc.json_member_text('{"tcbInfo": ', "tcbInfo")


def test_pck_extension_missing_fails() -> None:
    with pytest.raises(VerificationError, match="no SGX extension"):
        dc.parse_pck_extensions(_PKI.ca_cert)


def test_tcb_info_with_bad_level_fails_as_collateral_error() -> None:
    spec = QuoteSpec()
    info = _tcb_info(spec)
    broken = copy.deepcopy(info)
    broken["tcbLevels"][0]["tcb"]["sgxtcbcomponents"] = [{"svn": 1}]
    pck = dc.PckExtensions(bytes(16), (4,) * 16, 13, bytes(16), PCE_ID, FMSPC, 0)
    with pytest.raises(VerificationError) as error:
        dc.platform_tcb_match(broken, pck, None)
    assert error.value.check == "collateral"
