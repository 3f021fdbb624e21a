"""Tests for go-tpm-tools Attestation verification.

The real GCE attestation comes from the corpus. Negative cases that need a
re-signed quote use a synthetic AK, CA and container built here at run time.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestnet.errors import (
    ChainError,
    ConfigError,
    MalformedEvidence,
    SignatureError,
    VerificationError,
)
from attestnet.evidence import gotpm, tcg_eventlog
from attestnet.evidence.anchors import load_anchor_file, load_collateral_file
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.protobuf_wire import parse_message
from tests.conftest import utc

SAMPLE = "tpm/gce-cos-85-nonce9009.attestation.pb"
ROOT = "tpm/gce_tpm_ek_root_1.cer"
INTERMEDIATE = "tpm/gce_tpm_ek_intermediate_2.crt"
AT = utc("2024-01-01T00:00:00Z")

SHA1 = 0x0004
SHA256 = 0x000B
SHA384 = 0x000C


# --- protobuf and TPM encoders for synthetic evidence -------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def tpm2b(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


def tpmt_public(key: rsa.RSAPublicKey) -> bytes:
    modulus = key.public_numbers().n.to_bytes(256, "big")
    return (
        struct.pack(">HHI", 0x0001, SHA256, 0x00050072)
        + tpm2b(b"")
        + struct.pack(">H", 0x0010)  # symmetric: TPM_ALG_NULL
        + struct.pack(">HH", 0x0014, SHA256)  # scheme: RSASSA with SHA-256
        + struct.pack(">HI", 2048, 0)
        + tpm2b(modulus)
    )


def tpm_name(public: bytes) -> bytes:
    return struct.pack(">H", SHA256) + hashlib.sha256(public).digest()


def tpms_attest(
    signer: bytes, extra_data: bytes, selection: list[tuple[int, list[int]]], digest: bytes
) -> bytes:
    encoded_selection = struct.pack(">I", len(selection))
    for alg, pcrs in selection:
        bitmap = bytearray(3)
        for pcr in pcrs:
            bitmap[pcr // 8] |= 1 << (pcr % 8)
        encoded_selection += struct.pack(">HB", alg, 3) + bytes(bitmap)
    return (
        struct.pack(">IH", 0xFF544347, 0x8018)
        + tpm2b(signer)
        + tpm2b(extra_data)
        + struct.pack(">QIIBQ", 123456, 7, 0, 1, 0x2016051100162800)
        + encoded_selection
        + tpm2b(digest)
    )


def pcr_values(alg: int, pcrs: list[int]) -> dict[int, bytes]:
    size = {SHA1: 20, SHA256: 32, SHA384: 48}[alg]
    return {pcr: bytes([pcr + 1]) * size for pcr in pcrs}


class Synthetic:
    """A synthetic AK with a CA, able to build and sign go-tpm-tools containers."""

    def __init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ak_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ak_pub = tpmt_public(self.ak_key.public_key())
        self.not_before = datetime(2020, 1, 1, tzinfo=UTC)
        self.not_after = datetime(2040, 1, 1, tzinfo=UTC)
        self.ca_cert = self._certificate("synthetic AK CA", self.ca_key.public_key(), ca=True)
        self.ak_cert = self._certificate("", self.ak_key.public_key(), ca=False)

    def _certificate(self, common_name: str, key: object, *, ca: bool) -> x509.Certificate:
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
        )
        issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "synthetic AK CA")])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(self.not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )

    def certificate_for(self, key: rsa.RSAPublicKey) -> x509.Certificate:
        return self._certificate("", key, ca=False)

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors(certificates=(self.ca_cert,))

    def quote(
        self,
        alg: int,
        pcrs: list[int],
        extra_data: bytes = b"\x90\x09",
        *,
        values: dict[int, bytes] | None = None,
        supplied: dict[int, bytes] | None = None,
        selection: list[tuple[int, list[int]]] | None = None,
    ) -> bytes:
        """Sign a quote over `values` (default: pcr_values) and supply `supplied` PCRs."""
        values = pcr_values(alg, pcrs) if values is None else values
        digest = hashlib.sha256(b"".join(values[p] for p in sorted(values))).digest()
        attest = tpms_attest(tpm_name(self.ak_pub), extra_data, selection or [(alg, pcrs)], digest)
        signature = self.ak_key.sign(attest, padding.PKCS1v15(), hashes.SHA256())
        raw_sig = struct.pack(">HH", 0x0014, SHA256) + tpm2b(signature)
        supplied = values if supplied is None else supplied
        entries = b"".join(
            field(2, field(1, pcr) + field(2, value)) for pcr, value in supplied.items()
        )
        return field(1, attest) + field(2, raw_sig) + field(3, field(1, alg) + entries)

    def container(
        self,
        quotes: list[bytes],
        *,
        event_log: bytes = b"",
        ak_cert: x509.Certificate | None = None,
        with_cert: bool = True,
    ) -> bytes:
        data = field(1, self.ak_pub) + b"".join(field(2, q) for q in quotes)
        if event_log:
            data += field(3, event_log)
        if with_cert:
            cert = ak_cert or self.ak_cert
            data += field(6, cert.public_bytes(Encoding.DER))
        return data


@pytest.fixture(scope="module")
def synthetic() -> Synthetic:
    return Synthetic()


def event_log(algorithms: list[tuple[int, int]], events: list[tuple[int, bytes]]) -> bytes:
    """Build a crypto-agile log whose events extend hash(data) into each bank."""
    header_body = (
        b"Spec ID Event03\x00"
        + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(algorithms))
        + b"".join(struct.pack("<HH", alg, size) for alg, size in algorithms)
        + b"\x00"
    )
    log = struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(header_body)) + header_body
    names = {SHA1: "sha1", SHA256: "sha256", SHA384: "sha384"}
    for pcr, data in events:
        digests = b"".join(
            struct.pack("<H", alg) + hashlib.new(names[alg], data).digest() for alg, _ in algorithms
        )
        log += struct.pack("<III", pcr, 0x80000007, len(algorithms)) + digests
        log += struct.pack("<I", len(data)) + data
    return log


# --- corpus fixtures -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(corpus: Path) -> bytes:
    return (corpus / SAMPLE).read_bytes()


@pytest.fixture(scope="module")
def gce_anchors(corpus: Path) -> TrustAnchors:
    return load_anchor_file(corpus / ROOT)


@pytest.fixture(scope="module")
def gce_collateral(corpus: Path) -> Collateral:
    return load_collateral_file(corpus / INTERMEDIATE)


def verify_sample(
    data: bytes, anchors: TrustAnchors, collateral: Collateral, at: datetime = AT
) -> VerifiedEvidence:
    return gotpm.verify(data, anchors=anchors, at=at, collateral=collateral)


def flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


# --- the GCE corpus sample -----------------------------------------------------------


def test_sample_verifies(sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral):
    evidence = verify_sample(sample, gce_anchors, gce_collateral)

    assert evidence.format == "gotpm"
    assert evidence.nonce == bytes.fromhex("9009")
    assert evidence.verified_at == AT
    assert len(evidence.measurements) == 3 * 24
    assert evidence.measurements["pcr/sha256/0"] == bytes.fromhex(
        "0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf"
    )
    assert evidence.measurements["pcr/sha1/17"] == b"\xff" * 20
    assert set(evidence.measurements) >= {"pcr/sha384/23", "pcr/sha1/0"}
    assert evidence.signer is not None
    assert evidence.instance_id == (6797026933021542085).to_bytes(8, "big")


def test_sample_checks_in_order(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral
) -> None:
    names = [check.name for check in verify_sample(sample, gce_anchors, gce_collateral).checks]
    assert names == [
        "ak certificate chain",
        "ak certificate key",
        *(["quote signature", "pcr digest"] * 3),
        "quote nonce",
        *(["event log replay"] * 3),
    ]


def test_sample_claims(sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral):
    claims = verify_sample(sample, gce_anchors, gce_collateral).claims

    assert [q["bank"] for q in claims["quotes"]] == ["sha1", "sha256", "sha384"]
    assert all(q["extra_data"] == "9009" for q in claims["quotes"])
    assert claims["ak"]["primary_in_hierarchy"] == "endorsement"
    assert claims["ak"]["public_area_verified"] is True
    assert claims["ak"]["object_attributes"] == "0x00050072"
    assert claims["ak"]["key_bits"] == 2048
    assert claims["event_log"]["events"] == 44
    assert claims["event_log"]["replayed"] == {
        "sha1": list(range(10)),
        "sha256": list(range(10)),
        "sha384": list(range(10)),
    }
    assert claims["event_log"]["pcrs"]["4"]["types"]["EV_EFI_BOOT_SERVICES_APPLICATION"] == 3
    assert claims["gce_instance"]["instance_name"] == "cos-test"
    assert claims["gce_instance"]["zone"] == "us-central1-a"
    assert claims["ak_certificate"]["not_after"].startswith("2051-08-24")


def test_sample_raises_no_long_name_warning(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verify_sample(sample, gce_anchors, gce_collateral)


def test_sample_valid_until_2051(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral
) -> None:
    evidence = verify_sample(sample, gce_anchors, gce_collateral, utc("2051-08-01T00:00:00Z"))
    assert evidence.nonce == b"\x90\x09"


def test_sample_before_ak_cert(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral
) -> None:
    with pytest.raises(ChainError) as info:
        verify_sample(sample, gce_anchors, gce_collateral, utc("2021-08-30T00:00:00Z"))
    assert info.value.check == "certificate validity"


def test_sample_after_ak_cert(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral
) -> None:
    with pytest.raises(ChainError) as info:
        verify_sample(sample, gce_anchors, gce_collateral, utc("2052-01-01T00:00:00Z"))
    assert info.value.check == "certificate validity"


def test_sample_wrong_anchor(
    sample: bytes, synthetic: Synthetic, gce_collateral: Collateral
) -> None:
    with pytest.raises(ChainError) as info:
        verify_sample(sample, synthetic.anchors, gce_collateral)
    assert info.value.check == "certificate chain"


def test_sample_missing_intermediate(sample: bytes, gce_anchors: TrustAnchors) -> None:
    with pytest.raises(ChainError) as info:
        verify_sample(sample, gce_anchors, Collateral())
    assert info.value.check == "certificate chain"


def test_sample_naive_time_rejected(sample: bytes, gce_anchors: TrustAnchors) -> None:
    with pytest.raises(ConfigError):
        gotpm.verify(sample, anchors=gce_anchors, at=datetime(2024, 1, 1))


# TPMS_ATTEST offsets in the sample quotes: extraData (44), clock (50),
# qualifiedSigner (10), firmwareVersion (65), the PCR bitmap (79), pcrDigest (-1).
_ATTEST_POSITIONS = [10, 44, 45, 50, 65, 79, -1]


@pytest.mark.parametrize("quote_index", [0, 1, 2])
def test_sample_quote_byte_flip(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral, quote_index: int
) -> None:
    attest = gotpm.parse(sample).quotes[quote_index].attest.raw
    start = sample.index(attest)
    for position in _ATTEST_POSITIONS:
        offset = start + (position % len(attest))
        with pytest.raises(SignatureError) as info:
            verify_sample(flip(sample, offset), gce_anchors, gce_collateral)
        assert info.value.check == "quote signature", position


@pytest.mark.parametrize("quote_index", [0, 1, 2])
def test_sample_signature_byte_flip(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral, quote_index: int
) -> None:
    signature = gotpm.parse(sample).quotes[quote_index].signature.signature
    start = sample.index(signature)
    for position in (0, 100, len(signature) - 1):
        with pytest.raises(SignatureError) as info:
            verify_sample(flip(sample, start + position), gce_anchors, gce_collateral)
        assert info.value.check == "quote signature"


@pytest.mark.parametrize(("bank", "pcr"), [("sha1", 0), ("sha256", 0), ("sha384", 7)])
def test_sample_pcr_value_flip(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral, bank: str, pcr: int
) -> None:
    value = verify_sample(sample, gce_anchors, gce_collateral).measurements[f"pcr/{bank}/{pcr}"]
    assert sample.count(value) == 1
    tampered = flip(sample, sample.index(value) + 3)

    with pytest.raises(VerificationError) as info:
        verify_sample(tampered, gce_anchors, gce_collateral)

    assert info.value.check == "pcr digest"
    assert not isinstance(info.value, SignatureError)


def test_sample_event_log_digest_tampered(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral
) -> None:
    log = gotpm.parse(sample).event_log
    assert log is not None
    event = next(e for e in log.events if e.pcr == 4)
    # The Spec ID signature follows the 32-byte header of the log's first event.
    log_start = sample.index(b"Spec ID Event03") - 32
    # TCG_PCR_EVENT2: pcrIndex, eventType, count (12 bytes), then SHA-1 (2 + 20)
    # and the SHA-256 algorithm id (2) before the SHA-256 digest.
    position = log_start + event.offset + 12 + 2 + 20 + 2 + 5

    with pytest.raises(VerificationError) as info:
        verify_sample(flip(sample, position), gce_anchors, gce_collateral)

    assert info.value.check == "event log replay"
    assert info.value.claim == "pcr/sha256/4"
    assert info.value.expected == bytes.fromhex(
        "d690bdac2aa8b73a1d718cb91990df07d0747b07ea57b3b2d0f0d511f0d90491"
    )
    assert info.value.actual != info.value.expected


def test_sample_event_log_pcr_index_tampered(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral
) -> None:
    log = gotpm.parse(sample).event_log
    assert log is not None
    event = next(e for e in log.events if e.pcr == 9)
    log_start = sample.index(b"Spec ID Event03") - 32  # see the test above
    tampered = bytearray(sample)
    tampered[log_start + event.offset] = 8

    with pytest.raises(VerificationError) as info:
        verify_sample(bytes(tampered), gce_anchors, gce_collateral)

    assert info.value.check == "event log replay"
    assert info.value.claim == "pcr/sha1/8"


def test_sample_ak_attributes_tampered(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral
) -> None:
    ak = gotpm.parse(sample).ak_public
    # objectAttributes follow the 2-byte type and nameAlg in TPMT_PUBLIC.
    position = sample.index(ak.raw) + 4 + 3
    tampered = flip(sample, position)
    assert gotpm.parse(tampered).ak_public.object_attributes != ak.object_attributes

    claims = verify_sample(tampered, gce_anchors, gce_collateral).claims

    assert claims["ak"]["public_area_verified"] is False
    assert "object_attributes" not in claims["ak"]
    assert "primary_in_hierarchy" not in claims["ak"]


def test_sample_truncations(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral
) -> None:
    for length in [0, 1, 2, 5, 100, 283, 284, 1000, 5000, 20000, 27000, 28262, len(sample) - 1]:
        with pytest.raises((MalformedEvidence, VerificationError)):
            verify_sample(sample[:length], gce_anchors, gce_collateral)


def test_sample_parse_truncations_inside_fields(sample: bytes) -> None:
    # A cut at a top-level field boundary leaves a shorter valid message.
    boundaries = {item.offset for item in parse_message(sample).fields}
    for length in range(1, len(sample), 211):
        if length in boundaries:
            continue
        with pytest.raises(MalformedEvidence):
            gotpm.parse(sample[:length])


def test_sample_trailing_byte(sample: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        gotpm.parse(sample + b"\x00")


def test_sample_duplicate_ak_pub(sample: bytes) -> None:
    ak_pub = gotpm.parse(sample).ak_public.raw
    with pytest.raises(MalformedEvidence, match="singular field 1"):
        gotpm.parse(field(1, ak_pub) + sample)


def test_looks_like_sample(sample: bytes) -> None:
    assert gotpm.looks_like(sample)


def test_looks_like_rejects_other_corpus_files(corpus: Path) -> None:
    others = [
        path
        for path in corpus.rglob("*")
        if path.is_file() and path.name != "MANIFEST.tsv" and path.name != Path(SAMPLE).name
    ]
    assert others
    for path in others:
        assert not gotpm.looks_like(path.read_bytes()), path


def test_looks_like_rejects_junk() -> None:
    assert not gotpm.looks_like(b"")
    assert not gotpm.looks_like(b"\x0a")
    assert not gotpm.looks_like(field(1, b"\x00\x01") + field(2, b""))


# --- synthetic evidence --------------------------------------------------------------


def test_synthetic_verifies(synthetic: Synthetic) -> None:
    data = synthetic.container(
        [synthetic.quote(SHA1, [0, 1, 2]), synthetic.quote(SHA256, [0, 1, 2])]
    )
    evidence = gotpm.verify(data, anchors=synthetic.anchors, at=AT)
    assert evidence.nonce == b"\x90\x09"
    assert evidence.measurements["pcr/sha256/2"] == b"\x03" * 32
    assert evidence.instance_id is None
    assert "event_log" not in evidence.claims
    # The synthetic quotes carry the AK's name, not a primary key's qualified name.
    assert evidence.claims["ak"]["public_area_verified"] is False


def test_synthetic_quote_nonce_mismatch(synthetic: Synthetic) -> None:
    data = synthetic.container(
        [synthetic.quote(SHA1, [0], b"\x01"), synthetic.quote(SHA256, [0], b"\x02")]
    )
    with pytest.raises(VerificationError) as info:
        gotpm.verify(data, anchors=synthetic.anchors, at=AT)
    assert info.value.check == "quote nonce"
    assert info.value.expected == b"\x01"
    assert info.value.actual == b"\x02"


def test_synthetic_ak_cert_for_other_key(synthetic: Synthetic) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    data = synthetic.container(
        [synthetic.quote(SHA256, [0])], ak_cert=synthetic.certificate_for(other)
    )
    with pytest.raises(VerificationError) as info:
        gotpm.verify(data, anchors=synthetic.anchors, at=AT)
    assert info.value.check == "ak certificate key"


def test_synthetic_extra_supplied_pcr(synthetic: Synthetic) -> None:
    supplied = pcr_values(SHA256, [0, 1, 5])
    data = synthetic.container([synthetic.quote(SHA256, [0, 1], supplied=supplied)])
    with pytest.raises(VerificationError) as info:
        gotpm.verify(data, anchors=synthetic.anchors, at=AT)
    assert info.value.check == "pcr selection"
    assert info.value.expected == [0, 1]
    assert info.value.actual == [0, 1, 5]


def test_synthetic_missing_supplied_pcr(synthetic: Synthetic) -> None:
    supplied = pcr_values(SHA256, [0])
    data = synthetic.container([synthetic.quote(SHA256, [0, 1], supplied=supplied)])
    with pytest.raises(VerificationError) as info:
        gotpm.verify(data, anchors=synthetic.anchors, at=AT)
    assert info.value.check == "pcr selection"


def test_synthetic_selection_of_other_bank(synthetic: Synthetic) -> None:
    quote = synthetic.quote(SHA256, [0], selection=[(SHA1, [0])])
    with pytest.raises(VerificationError) as info:
        gotpm.verify(synthetic.container([quote]), anchors=synthetic.anchors, at=AT)
    assert info.value.check == "pcr selection"


def test_synthetic_two_quotes_same_bank(synthetic: Synthetic) -> None:
    quote = synthetic.quote(SHA256, [0])
    with pytest.raises(VerificationError) as info:
        gotpm.verify(synthetic.container([quote, quote]), anchors=synthetic.anchors, at=AT)
    assert info.value.check == "pcr selection"


def test_synthetic_ak_key_as_anchor(synthetic: Synthetic) -> None:
    data = synthetic.container([synthetic.quote(SHA256, [0])], with_cert=False)
    anchors = TrustAnchors(public_keys=(synthetic.ak_key.public_key(),))
    evidence = gotpm.verify(data, anchors=anchors, at=AT)
    assert evidence.checks[0].name == "ak trust"


def test_synthetic_no_cert_no_key_anchor(synthetic: Synthetic) -> None:
    data = synthetic.container([synthetic.quote(SHA256, [0])], with_cert=False)
    with pytest.raises(ChainError) as info:
        gotpm.verify(data, anchors=synthetic.anchors, at=AT)
    assert info.value.check == "ak certificate chain"


def test_synthetic_expired_ak_cert(synthetic: Synthetic) -> None:
    data = synthetic.container([synthetic.quote(SHA256, [0])])
    later = synthetic.not_after + timedelta(days=1)
    with pytest.raises(ChainError) as info:
        gotpm.verify(data, anchors=synthetic.anchors, at=later)
    assert info.value.check == "certificate validity"


def test_synthetic_event_log_replays(synthetic: Synthetic) -> None:
    events = [(0, b"firmware"), (0, b"separator"), (4, b"bootloader"), (9, b"kernel")]
    log = event_log([(SHA256, 32)], events)
    replayed = tcg_eventlog.parse(log).replay(SHA256)
    # PCR 9 is extended by the log but not quoted, so its events stay unverified.
    values = {0: replayed[0], 4: replayed[4], 7: bytes(32)}
    quote = synthetic.quote(SHA256, [0, 4, 7], values=values)
    data = synthetic.container([quote], event_log=log)

    evidence = gotpm.verify(data, anchors=synthetic.anchors, at=AT)

    assert evidence.checks[-1].name == "event log replay"
    assert evidence.claims["event_log"]["replayed"] == {"sha256": [0, 4]}
    assert evidence.claims["event_log"]["unverified_pcrs"] == {"sha256": [9]}
    assert evidence.measurements["pcr/sha256/4"] == replayed[4]


def test_synthetic_event_log_bank_not_quoted(synthetic: Synthetic) -> None:
    log = event_log([(SHA384, 48)], [(0, b"firmware")])
    data = synthetic.container([synthetic.quote(SHA256, [0])], event_log=log)
    with pytest.raises(VerificationError) as info:
        gotpm.verify(data, anchors=synthetic.anchors, at=AT)
    assert info.value.check == "event log replay"
    assert info.value.claim == "event_log"


def test_synthetic_event_log_mismatch(synthetic: Synthetic) -> None:
    log = event_log([(SHA256, 32)], [(0, b"firmware")])
    data = synthetic.container([synthetic.quote(SHA256, [0])], event_log=log)
    with pytest.raises(VerificationError) as info:
        gotpm.verify(data, anchors=synthetic.anchors, at=AT)
    assert info.value.check == "event log replay"
    assert info.value.claim == "pcr/sha256/0"


# --- property tests ------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_sample(
    sample: bytes, gce_anchors: TrustAnchors, gce_collateral: Collateral, data: st.DataObject
) -> None:
    # Mutations land anywhere, in the AK and quotes (the first 4 KiB), or in the
    # AK certificate at the end. A cut is drawn only sometimes, so that most
    # examples reach the signature and chain checks.
    mutated = bytearray(sample)
    ak_cert = gotpm.parse(sample).ak_cert
    assert ak_cert is not None
    cert_start = sample.index(ak_cert.public_bytes(Encoding.DER))
    anywhere = st.integers(0, len(sample) - 1)
    positions = st.one_of(anywhere, st.integers(0, 4288), st.integers(cert_start, len(sample) - 1))
    for _ in range(data.draw(st.integers(1, 3))):
        mutated[data.draw(positions)] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.just(len(mutated)), st.integers(0, len(mutated))))
    with contextlib.suppress(MalformedEvidence, VerificationError), warnings.catch_warnings():
        # A mutated serial number makes cryptography warn that it is not positive.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        verify_sample(bytes(mutated[:cut]), gce_anchors, gce_collateral)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        gotpm.parse(data)
    gotpm.looks_like(data)
