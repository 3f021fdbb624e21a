"""Tests of the TPM 2.0 parsers and of attestnet TPM quote evidence verification.

The parser tests build TPM structures by hand and sign them with software keys,
so they run without a TPM. The verification tests quote with a real swtpm and
skip when swtpm is not installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from attestnet.errors import (
    ChainError,
    MalformedEvidence,
    SignatureError,
    VerificationError,
)
from attestnet.evidence import cmw, tpm
from attestnet.evidence.model import TrustAnchors
from attestnet.evidence.x509chain import public_key_der

SHA256 = tpm.ALG_SHA256
AK_ATTRIBUTES = (
    tpm.ATTR_RESTRICTED
    | tpm.ATTR_SIGN
    | tpm.ATTR_FIXED_TPM
    | tpm.ATTR_FIXED_PARENT
    | tpm.ATTR_SENSITIVE_DATA_ORIGIN
    | (1 << 6)  # userWithAuth
)


# --- builders of TPM structures --------------------------------------------------------


def tpm2b(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def build_attest(
    extra_data: bytes,
    selection: tuple[tpm.PcrSelection, ...],
    digest: bytes,
    *,
    attest_type: int = tpm.TPM_ST_ATTEST_QUOTE,
    magic: int = tpm.TPM_GENERATED_VALUE,
) -> bytes:
    header = struct.pack(">IH", magic, attest_type)
    header += tpm2b(b"\x00\x0b" + b"\x11" * 32)  # qualifiedSigner
    header += tpm2b(extra_data)
    header += struct.pack(">QIIB", 1234, 5, 6, 1)  # clockInfo
    header += struct.pack(">Q", 0x2019102300163636)  # firmwareVersion
    if attest_type == tpm.TPM_ST_ATTEST_CERTIFY:
        return header + tpm2b(b"\x00\x0b" + b"\x22" * 32) + tpm2b(b"\x00\x0b" + b"\x33" * 32)
    body = struct.pack(">I", len(selection)) + b"".join(s.to_bytes() for s in selection)
    return header + body + tpm2b(digest)


def ecc_public(key: ec.EllipticCurvePublicKey, attributes: int = AK_ATTRIBUTES) -> bytes:
    numbers = key.public_numbers()
    area = struct.pack(">HHI", tpm.ALG_ECC, SHA256, attributes) + tpm2b(b"")
    area += struct.pack(">H", 0x0010)  # symmetric: TPM_ALG_NULL
    area += struct.pack(">HH", tpm.ALG_ECDSA, SHA256)  # scheme
    area += struct.pack(">HH", 0x0003, 0x0010)  # curveID NIST P-256, kdf NULL
    area += tpm2b(numbers.x.to_bytes(32, "big")) + tpm2b(numbers.y.to_bytes(32, "big"))
    return area


def rsa_public(key: rsa.RSAPublicKey, attributes: int = AK_ATTRIBUTES) -> bytes:
    numbers = key.public_numbers()
    area = struct.pack(">HHI", tpm.ALG_RSA, SHA256, attributes) + tpm2b(b"")
    area += struct.pack(">H", 0x0010)
    area += struct.pack(">HH", tpm.ALG_RSASSA, SHA256)
    area += struct.pack(">HI", key.key_size, 0)  # keyBits, exponent 0 = 65537
    area += tpm2b(numbers.n.to_bytes(key.key_size // 8, "big"))
    return area


def sign_ecdsa(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return (
        struct.pack(">HH", tpm.ALG_ECDSA, SHA256)
        + tpm2b(r.to_bytes(32, "big"))
        + tpm2b(s.to_bytes(32, "big"))
    )


def sign_rsa(key: rsa.RSAPrivateKey, data: bytes, *, pss: bool) -> bytes:
    if pss:
        scheme: padding.AsymmetricPadding = padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()), salt_length=32
        )
        alg = tpm.ALG_RSAPSS
    else:
        scheme, alg = padding.PKCS1v15(), tpm.ALG_RSASSA
    return struct.pack(">HH", alg, SHA256) + tpm2b(key.sign(data, scheme, hashes.SHA256()))


SELECTION = (tpm.PcrSelection(SHA256, (0, 1, 2, 7)),)
PCR_VALUES = {(SHA256, i): hashlib.sha256(bytes([i])).digest() for i in (0, 1, 2, 7)}
PCR_DIGEST = hashlib.sha256(b"".join(PCR_VALUES[(SHA256, i)] for i in (0, 1, 2, 7))).digest()


@pytest.fixture(scope="module")
def ecc_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


# --- TPMS_ATTEST ---------------------------------------------------------------------


def test_parse_attest_quote_fields() -> None:
    data = build_attest(b"\xaa" * 32, SELECTION, PCR_DIGEST)
    attest = tpm.parse_attest(data)
    assert attest.type == tpm.TPM_ST_ATTEST_QUOTE
    assert attest.extra_data == b"\xaa" * 32
    assert attest.qualified_signer == b"\x00\x0b" + b"\x11" * 32
    assert attest.clock_info == tpm.ClockInfo(1234, 5, 6, True)
    assert attest.firmware_version == 0x2019102300163636
    assert attest.quote.pcr_select == SELECTION
    assert attest.quote.pcr_digest == PCR_DIGEST
    assert attest.raw == data


def test_parse_attest_certify_fields() -> None:
    attest = tpm.parse_attest(build_attest(b"n", (), b"", attest_type=tpm.TPM_ST_ATTEST_CERTIFY))
    assert isinstance(attest.attested, tpm.CertifyInfo)
    assert attest.attested.name == b"\x00\x0b" + b"\x22" * 32
    assert attest.attested.qualified_name == b"\x00\x0b" + b"\x33" * 32
    with pytest.raises(MalformedEvidence, match="expected quote"):
        _ = attest.quote


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (build_attest(b"", SELECTION, PCR_DIGEST, magic=0xFF544348), "magic"),
        (build_attest(b"", SELECTION, PCR_DIGEST, attest_type=0x8014), "unsupported type"),
        (build_attest(b"", SELECTION, PCR_DIGEST) + b"\x00", "trailing"),
        (build_attest(b"", SELECTION, PCR_DIGEST)[:-1], "remain"),
    ],
)
def test_parse_attest_rejects(data: bytes, detail: str) -> None:
    with pytest.raises(MalformedEvidence, match=detail):
        tpm.parse_attest(data)


def test_parse_attest_truncations() -> None:
    data = build_attest(b"\xaa" * 32, SELECTION, PCR_DIGEST)
    for length in range(len(data)):
        with pytest.raises(MalformedEvidence):
            tpm.parse_attest(data[:length])


def test_parse_attest_rejects_unsafe_flag() -> None:
    data = bytearray(build_attest(b"", SELECTION, PCR_DIGEST))
    safe_offset = 4 + 2 + 2 + 34 + 2 + 8 + 4 + 4
    data[safe_offset] = 2
    with pytest.raises(MalformedEvidence, match=r"clockInfo\.safe"):
        tpm.parse_attest(bytes(data))


# --- TPMT_SIGNATURE and TPMT_PUBLIC ------------------------------------------------------


def test_signature_schemes_verify(
    ecc_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    data = build_attest(b"x", SELECTION, PCR_DIGEST)
    cases = [
        (sign_ecdsa(ecc_key, data), ecc_key.public_key(), "ecdsa-sha256"),
        (sign_rsa(rsa_key, data, pss=False), rsa_key.public_key(), "rsassa-sha256"),
        (sign_rsa(rsa_key, data, pss=True), rsa_key.public_key(), "rsapss-sha256"),
    ]
    for signature_bytes, key, name in cases:
        signature = tpm.parse_signature(signature_bytes)
        assert signature.name == name
        tpm.verify_quote_signature(data, signature, key)


def test_signature_flipped_data_fails(ecc_key: ec.EllipticCurvePrivateKey) -> None:
    data = build_attest(b"x" * 32, SELECTION, PCR_DIGEST)
    signature = tpm.parse_signature(sign_ecdsa(ecc_key, data))
    for position in (0, 10, 40, 60, len(data) - 1):
        changed = bytearray(data)
        changed[position] ^= 0x01
        with pytest.raises(SignatureError) as caught:
            tpm.verify_quote_signature(bytes(changed), signature, ecc_key.public_key())
        assert caught.value.check == "quote signature"


def test_signature_wrong_key_type(rsa_key: rsa.RSAPrivateKey) -> None:
    data = build_attest(b"x", SELECTION, PCR_DIGEST)
    signature = tpm.parse_signature(sign_rsa(rsa_key, data, pss=False))
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(SignatureError, match="key type"):
        tpm.verify_quote_signature(data, signature, other)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (struct.pack(">HH", 0x0010, SHA256), "sigAlg"),
        (struct.pack(">HH", tpm.ALG_RSASSA, 0x0012) + tpm2b(b"s"), "hash algorithm"),
        (struct.pack(">HH", tpm.ALG_RSASSA, SHA256) + tpm2b(b""), "empty"),
        (struct.pack(">HH", tpm.ALG_RSASSA, SHA256) + tpm2b(b"s") + b"\x00", "trailing"),
        (struct.pack(">HH", tpm.ALG_ECDSA, SHA256) + tpm2b(b"r"), "remain"),
    ],
)
def test_parse_signature_rejects(data: bytes, detail: str) -> None:
    with pytest.raises(MalformedEvidence, match=detail):
        tpm.parse_signature(data)


def test_parse_public_ecc_and_rsa(
    ecc_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    for area, key in (
        (ecc_public(ecc_key.public_key()), ecc_key.public_key()),
        (rsa_public(rsa_key.public_key()), rsa_key.public_key()),
    ):
        for data in (area, tpm2b(area)):
            public = tpm.parse_public(data)
            assert public.raw == area
            assert public_key_der(public.public_key()) == public_key_der(key)
            assert public.name() == b"\x00\x0b" + hashlib.sha256(area).digest()
            assert public.has_attributes(AK_ATTRIBUTES)


def test_parse_public_rejects_trailing(ecc_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(MalformedEvidence, match="trailing"):
        tpm.parse_public(ecc_public(ecc_key.public_key()) + b"\x00")


def test_parse_public_invalid_point() -> None:
    area = struct.pack(">HHI", tpm.ALG_ECC, SHA256, AK_ATTRIBUTES) + tpm2b(b"")
    area += struct.pack(">HHHHH", 0x0010, tpm.ALG_ECDSA, SHA256, 0x0003, 0x0010)
    area += tpm2b(b"\x01" * 32) + tpm2b(b"\x02" * 32)
    public = tpm.parse_public(area)
    with pytest.raises(MalformedEvidence, match="invalid public key"):
        public.public_key()


# --- PCR digest ----------------------------------------------------------------------


def test_pcr_digest_matches() -> None:
    assert tpm.pcr_digest(SELECTION, PCR_VALUES, SHA256) == PCR_DIGEST
    tpm.check_pcr_digest(
        tpm.parse_attest(build_attest(b"", SELECTION, PCR_DIGEST)), PCR_VALUES, SHA256
    )


def test_pcr_digest_changed_value_fails() -> None:
    attest = tpm.parse_attest(build_attest(b"", SELECTION, PCR_DIGEST))
    changed = dict(PCR_VALUES)
    changed[(SHA256, 7)] = b"\x00" * 32
    with pytest.raises(VerificationError) as caught:
        tpm.check_pcr_digest(attest, changed, SHA256)
    assert caught.value.check == "pcr digest"
    assert caught.value.claim == "pcrDigest"


def test_pcr_digest_missing_value_fails() -> None:
    missing = {k: v for k, v in PCR_VALUES.items() if k != (SHA256, 2)}
    with pytest.raises(VerificationError) as caught:
        tpm.pcr_digest(SELECTION, missing, SHA256)
    assert caught.value.check == "pcr digest"
    assert caught.value.claim == "pcr/sha256/2"


# --- fuzzing -------------------------------------------------------------------------

PARSERS = (tpm.parse_attest, tpm.parse_signature, tpm.parse_public, tpm.parse)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parsers_fuzz_random(data: bytes) -> None:
    for parser in PARSERS:
        with contextlib.suppress(MalformedEvidence):
            parser(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_parse_attest_fuzz_mutations(position: int, value: int) -> None:
    data = bytearray(build_attest(b"\xaa" * 32, SELECTION, PCR_DIGEST))
    data[position % len(data)] = value
    with contextlib.suppress(MalformedEvidence):
        tpm.parse_attest(bytes(data))


# --- looks_like ----------------------------------------------------------------------


def test_looks_like_rejects_corpus(corpus: Path) -> None:
    for path in sorted(corpus.rglob("*")):
        if path.is_file() and path.name != "MANIFEST.tsv":
            assert not tpm.looks_like(path.read_bytes()), path


def test_looks_like_own_record() -> None:
    record = cmw.encode_record(tpm.MEDIA_TYPE, b"\xa0")
    assert tpm.looks_like(record)
    assert not tpm.looks_like(cmw.encode_record("application/eat+cwt", b"\xa0"))
    assert not tpm.looks_like(b"")


# --- verification with a software "AK" ----------------------------------------------------


def software_evidence(
    key: ec.EllipticCurvePrivateKey, attributes: int = AK_ATTRIBUTES, nonce: bytes = b"n" * 32
) -> bytes:
    attest = build_attest(nonce, SELECTION, PCR_DIGEST)
    container = tpm.encode_container(
        attest, sign_ecdsa(key, attest), PCR_VALUES, ecc_public(key.public_key(), attributes)
    )
    return cmw.encode_record(tpm.MEDIA_TYPE, container)


def test_verify_pinned_software_key(ecc_key: ec.EllipticCurvePrivateKey) -> None:
    result = tpm.verify(
        software_evidence(ecc_key),
        anchors=TrustAnchors(public_keys=(ecc_key.public_key(),)),
        at=datetime.now(UTC),
    )
    assert result.nonce == b"n" * 32
    assert result.measurements["pcr/sha256/7"] == PCR_VALUES[(SHA256, 7)]
    assert result.instance_id == hashlib.sha256(public_key_der(ecc_key.public_key())).digest()
    assert result.claims["ak_endorsement"] == "pinned key"
    assert [c.name for c in result.checks] == [
        "ak pinned key",
        "ak attributes",
        "quote signature",
        "pcr digest",
    ]


def test_verify_unrestricted_ak_fails(ecc_key: ec.EllipticCurvePrivateKey) -> None:
    evidence = software_evidence(ecc_key, attributes=tpm.ATTR_SIGN | tpm.ATTR_FIXED_TPM)
    with pytest.raises(VerificationError) as caught:
        tpm.verify(
            evidence,
            anchors=TrustAnchors(public_keys=(ecc_key.public_key(),)),
            at=datetime.now(UTC),
        )
    assert caught.value.check == "ak attributes"


def test_verify_unpinned_key_fails(ecc_key: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(ChainError) as caught:
        tpm.verify(
            software_evidence(ecc_key),
            anchors=TrustAnchors(public_keys=(other,)),
            at=datetime.now(UTC),
        )
    assert caught.value.check == "ak pinned key"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"extra": b"x"}, "unknown container fields"),
        ({"quote": "text"}, "'quote' must be a byte string"),
        ({"pcrs": {SHA256: {0: b"short"}}}, "32-byte string"),
        ({"pcrs": {SHA256: {"0": b"\x00" * 32}}}, "invalid PCR index"),
        ({"ak-certificates": [b"not der"]}, "not a DER certificate"),
        ({"ak-certificates": []}, "non-empty array"),
    ],
)
def test_parse_container_rejects(
    ecc_key: ec.EllipticCurvePrivateKey, change: dict[str, object], detail: str
) -> None:
    record = cmw.decode(software_evidence(ecc_key))
    assert isinstance(record, cmw.CmwRecord)
    container = cbor2.loads(record.value)
    container.update(change)
    with pytest.raises(MalformedEvidence, match=detail):
        tpm.parse(cmw.encode_record(tpm.MEDIA_TYPE, cbor2.dumps(container)))


def test_parse_container_wrong_media_type(ecc_key: ec.EllipticCurvePrivateKey) -> None:
    record = cmw.decode(software_evidence(ecc_key))
    assert isinstance(record, cmw.CmwRecord)
    with pytest.raises(MalformedEvidence, match="CMW type"):
        tpm.parse(cmw.encode_record("application/octet-stream", record.value))


# --- verification of real swtpm quotes ------------------------------------------------------


@dataclass
class TpmSetup:
    attester: object
    ca_root: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    ek_certificate: x509.Certificate
    ca: object


@pytest.fixture(scope="module")
def swtpm_setup() -> Iterator[TpmSetup]:
    from attestnet.attesters.swtpm import Swtpm, SwtpmUnavailable

    try:
        swtpm = Swtpm()
    except SwtpmUnavailable as exc:
        pytest.skip(f"swtpm is not installed: {exc}")
    pytest.importorskip("tpm2_pytss")
    from attestnet.attesters.tpm import TpmAttester, enroll_ak

    with swtpm:
        ca = swtpm.local_ca()
        with TpmAttester(swtpm.tcti) as attester:
            chain = enroll_ak(attester, ca)
            ek_certificate, _ = attester.ek_certificate_and_public()
            yield TpmSetup(attester, ca.root, chain, ek_certificate, ca)


def quote(setup: TpmSetup, binder: bytes = b"\x42" * 32) -> bytes:
    from attestnet.attesters.tpm import TpmAttester

    assert isinstance(setup.attester, TpmAttester)
    return setup.attester.evidence(binder)


def container_of(evidence: bytes) -> dict[str, object]:
    record = cmw.decode(evidence)
    assert isinstance(record, cmw.CmwRecord)
    container: dict[str, object] = cbor2.loads(record.value)
    return container


def rewrap(container: dict[str, object]) -> bytes:
    return cmw.encode_record(tpm.MEDIA_TYPE, cbor2.dumps(container))


def anchors_of(setup: TpmSetup) -> TrustAnchors:
    return TrustAnchors(certificates=(setup.ca_root,))


def test_swtpm_quote_round_trip(swtpm_setup: TpmSetup) -> None:
    binder = hashlib.sha256(b"connection").digest()
    result = tpm.verify(
        quote(swtpm_setup, binder), anchors=anchors_of(swtpm_setup), at=datetime.now(UTC)
    )
    assert result.nonce == binder
    assert result.claims["extra_data"] == binder.hex()
    assert sorted(result.measurements) == sorted(f"pcr/sha256/{i}" for i in range(8))
    ek_id = hashlib.sha256(public_key_der(swtpm_setup.ek_certificate.public_key())).digest()
    assert result.instance_id == ek_id
    assert result.claims["swtpm"] is True
    assert result.claims["tpm_model"] == "swtpm"
    assert result.simulated is False
    assert result.tcb["firmware_version"] > 0
    assert [c.name for c in result.checks] == [
        "ak certificate chain",
        "ak certificate key",
        "ak attributes",
        "quote signature",
        "pcr digest",
    ]


def test_swtpm_wrong_anchor(swtpm_setup: TpmSetup) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swtpm-localca-rootca")])
    now = datetime.now(UTC)
    other_root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(ChainError) as caught:
        tpm.verify(quote(swtpm_setup), anchors=TrustAnchors(certificates=(other_root,)), at=now)
    assert caught.value.check == "certificate chain"


def test_swtpm_expired_ak_certificate(swtpm_setup: TpmSetup) -> None:
    from attestnet.attesters.swtpm import LocalCa
    from attestnet.attesters.tpm import TpmAttester, issue_ak_certificate

    assert isinstance(swtpm_setup.attester, TpmAttester)
    assert isinstance(swtpm_setup.ca, LocalCa)
    now = datetime.now(UTC)
    expired = issue_ak_certificate(
        swtpm_setup.attester.ak_public,
        swtpm_setup.ca,
        ek_certificate=swtpm_setup.ek_certificate,
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    container = container_of(quote(swtpm_setup))
    container["ak-certificates"] = [
        expired.public_bytes(Encoding.DER),
        swtpm_setup.chain[1].public_bytes(Encoding.DER),
    ]
    with pytest.raises(ChainError) as caught:
        tpm.verify(rewrap(container), anchors=anchors_of(swtpm_setup), at=now)
    assert caught.value.check == "certificate validity"
    assert caught.value.claim == "notAfter"


def test_swtpm_certificate_for_other_key(swtpm_setup: TpmSetup) -> None:
    from attestnet.attesters.swtpm import LocalCa
    from attestnet.attesters.tpm import issue_ak_certificate

    assert isinstance(swtpm_setup.ca, LocalCa)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    certificate = issue_ak_certificate(
        tpm.parse_public(ecc_public(other)),
        swtpm_setup.ca,
        ek_certificate=swtpm_setup.ek_certificate,
    )
    container = container_of(quote(swtpm_setup))
    container["ak-certificates"] = [
        certificate.public_bytes(Encoding.DER),
        swtpm_setup.chain[1].public_bytes(Encoding.DER),
    ]
    with pytest.raises(VerificationError) as caught:
        tpm.verify(rewrap(container), anchors=anchors_of(swtpm_setup), at=datetime.now(UTC))
    assert caught.value.check == "ak certificate key"


def test_swtpm_tampered_quote(swtpm_setup: TpmSetup) -> None:
    container = container_of(quote(swtpm_setup))
    original = container["quote"]
    assert isinstance(original, bytes)
    extra_data_offset = 4 + 2 + 2 + 34 + 2
    for position in (
        extra_data_offset,
        extra_data_offset + 31,
        extra_data_offset + 40,
        len(original) - 1,
    ):
        changed = bytearray(original)
        changed[position] ^= 0x80
        container["quote"] = bytes(changed)
        with pytest.raises(SignatureError) as caught:
            tpm.verify(rewrap(container), anchors=anchors_of(swtpm_setup), at=datetime.now(UTC))
        assert caught.value.check == "quote signature"


def test_swtpm_tampered_signature(swtpm_setup: TpmSetup) -> None:
    container = container_of(quote(swtpm_setup))
    original = container["signature"]
    assert isinstance(original, bytes)
    for position in (8, 20, len(original) - 1):
        changed = bytearray(original)
        changed[position] ^= 0x01
        container["signature"] = bytes(changed)
        with pytest.raises(SignatureError) as caught:
            tpm.verify(rewrap(container), anchors=anchors_of(swtpm_setup), at=datetime.now(UTC))
        assert caught.value.check == "quote signature"


def test_swtpm_changed_pcr_value(swtpm_setup: TpmSetup) -> None:
    container = container_of(quote(swtpm_setup))
    pcrs = container["pcrs"]
    assert isinstance(pcrs, dict)
    pcrs[SHA256][7] = b"\x01" * 32
    with pytest.raises(VerificationError) as caught:
        tpm.verify(rewrap(container), anchors=anchors_of(swtpm_setup), at=datetime.now(UTC))
    assert caught.value.check == "pcr digest"
    assert caught.value.claim == "pcrDigest"


def test_swtpm_unquoted_pcr_value(swtpm_setup: TpmSetup) -> None:
    container = container_of(quote(swtpm_setup))
    pcrs = container["pcrs"]
    assert isinstance(pcrs, dict)
    pcrs[SHA256][16] = b"\x00" * 32
    with pytest.raises(VerificationError) as caught:
        tpm.verify(rewrap(container), anchors=anchors_of(swtpm_setup), at=datetime.now(UTC))
    assert caught.value.check == "pcr digest"
    assert caught.value.claim == "pcr/sha256/16"


def test_swtpm_pinned_ak(swtpm_setup: TpmSetup) -> None:
    from attestnet.attesters.tpm import TpmAttester

    assert isinstance(swtpm_setup.attester, TpmAttester)
    container = container_of(quote(swtpm_setup))
    del container["ak-certificates"]
    ak_key = swtpm_setup.attester.ak_public.public_key()
    result = tpm.verify(
        rewrap(container), anchors=TrustAnchors(public_keys=(ak_key,)), at=datetime.now(UTC)
    )
    assert result.instance_id == hashlib.sha256(public_key_der(ak_key)).digest()
    assert result.claims["ak_endorsement"] == "pinned key"
    with pytest.raises(ChainError) as caught:
        tpm.verify(rewrap(container), anchors=anchors_of(swtpm_setup), at=datetime.now(UTC))
    assert caught.value.check == "ak pinned key"


def test_swtpm_evidence_truncations(swtpm_setup: TpmSetup) -> None:
    evidence = quote(swtpm_setup)
    for length in list(range(0, 64)) + list(range(64, len(evidence), 37)):
        with pytest.raises((MalformedEvidence, VerificationError)):
            tpm.verify(evidence[:length], anchors=anchors_of(swtpm_setup), at=datetime.now(UTC))


def test_swtpm_looks_like(swtpm_setup: TpmSetup) -> None:
    assert tpm.looks_like(quote(swtpm_setup))


def test_swtpm_quote_fields_parse(swtpm_setup: TpmSetup) -> None:
    container = container_of(quote(swtpm_setup, b"\x07" * 32))
    quote_bytes = container["quote"]
    assert isinstance(quote_bytes, bytes)
    attest = tpm.parse_attest(quote_bytes)
    assert attest.extra_data == b"\x07" * 32
    assert attest.quote.pcr_select == (tpm.PcrSelection(SHA256, tuple(range(8))),)
    assert attest.clock_info.safe is True


# --- a real GCE vTPM quote from the corpus ----------------------------------------------


def protobuf_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Split protobuf wire format into (field number, varint or bytes); enough for attest.proto."""
    fields: list[tuple[int, int | bytes]] = []
    offset = 0

    def varint() -> int:
        nonlocal offset
        value, shift = 0, 0
        while True:
            byte = data[offset]
            offset += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while offset < len(data):
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            fields.append((number, varint()))
        elif wire_type == 2:
            length = varint()
            fields.append((number, data[offset : offset + length]))
            offset += length
        else:
            raise AssertionError(f"unexpected wire type {wire_type}")
    return fields


def test_gce_quotes_parse_and_verify(corpus: Path) -> None:
    data = (corpus / "tpm" / "gce-cos-85-nonce9009.attestation.pb").read_bytes()
    fields = protobuf_fields(data)
    ak_pub = next(value for number, value in fields if number == 1)
    assert isinstance(ak_pub, bytes)
    ak = tpm.parse_public(ak_pub)
    assert ak.type == tpm.ALG_RSA
    quotes = [value for number, value in fields if number == 2]
    assert len(quotes) == 3
    for quote_message in quotes:
        assert isinstance(quote_message, bytes)
        parts = dict(protobuf_fields(quote_message))
        attest_bytes, signature_bytes, pcrs_message = parts[1], parts[2], parts[3]
        assert isinstance(attest_bytes, bytes)
        assert isinstance(signature_bytes, bytes)
        assert isinstance(pcrs_message, bytes)
        attest = tpm.parse_attest(attest_bytes)
        signature = tpm.parse_signature(signature_bytes)
        assert attest.extra_data == b"\x90\x09"
        assert signature.name == "rsassa-sha256"
        tpm.verify_quote_signature(attest.raw, signature, ak.public_key())

        bank = 0
        values: dict[tuple[int, int], bytes] = {}
        for number, value in protobuf_fields(pcrs_message):
            if number == 1:
                assert isinstance(value, int)
                bank = value
            else:
                assert isinstance(value, bytes)
                entry = dict(protobuf_fields(value))
                index, digest = entry.get(1, 0), entry[2]
                assert isinstance(index, int)
                assert isinstance(digest, bytes)
                values[(bank, index)] = digest
        tpm.check_pcr_digest(attest, values, signature.hash_alg)
        assert attest.quote.pcr_select[0].pcrs == tuple(range(24))
