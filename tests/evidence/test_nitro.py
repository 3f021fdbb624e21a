"""Tests of the AWS Nitro attestation document verifier.

The corpus has two real documents: Evervault's GA document (base64, debug-mode
enclave) with the TLS certificate it binds, and an Evervault Cages attested-TLS
certificate with a document in a DNS subjectAltName. Parser rules and negative
cases the corpus has no sample of use documents signed here by a P-384 chain
built at run time.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestnet.errors import ChainError, MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence import nitro
from attestnet.evidence.anchors import load_anchor_file
from attestnet.evidence.model import TrustAnchors, VerifiedEvidence
from attestnet.evidence.x509chain import public_key_der
from tests.conftest import utc

GA_TIME = utc("2023-09-18T15:03:31Z")
RATLS_TIME = utc("2023-01-18T13:07:19Z")


@dataclasses.dataclass(frozen=True, repr=False)
class CorpusFiles:
    ga_text: bytes
    ga_tls_certificate: bytes
    ratls_certificate: bytes
    root: TrustAnchors
    amd_anchors: TrustAnchors

    @property
    def ga_cbor(self) -> bytes:
        return base64.b64decode(self.ga_text)


@pytest.fixture(scope="module")
def files(corpus: Path) -> CorpusFiles:
    return CorpusFiles(
        ga_text=(corpus / "nitro" / "evervault_ga_attestation_doc.b64").read_bytes(),
        ga_tls_certificate=(corpus / "nitro" / "evervault_ga_tls_certificate.der").read_bytes(),
        ratls_certificate=(
            corpus / "ratls" / "evervault_nitro_atls_cert_nondebug.der"
        ).read_bytes(),
        root=load_anchor_file(corpus / "nitro" / "aws_nitro_root_g1.pem"),
        amd_anchors=load_anchor_file(corpus / "sev-snp" / "amd_ask_ark_milan.pem"),
    )


def flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    changed = bytearray(data)
    changed[position] ^= mask
    return bytes(changed)


# Corpus: the GA document


def test_ga_document_verifies(files: CorpusFiles) -> None:
    evidence = nitro.verify(files.ga_text, anchors=files.root, at=GA_TIME)

    assert evidence.format == "nitro"
    assert [c.name for c in evidence.checks] == ["certificate chain", "document signature"]
    assert evidence.checks[0].detail.endswith("CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US")
    assert evidence.debug is True
    assert evidence.nonce is not None
    assert len(evidence.nonce) == 256
    assert evidence.instance_id == b"i-0918f6c55e3b61d89-enc018aa8b8e2285d13"
    assert sorted(evidence.measurements) == sorted(f"nitro/pcr/{i}" for i in range(16))
    assert evidence.measurements["nitro/pcr/0"] == bytes(48)
    assert evidence.measurements["nitro/pcr/3"] != bytes(48)
    assert evidence.claims["digest"] == "SHA384"
    assert evidence.claims["timestamp"] == 1695049410860
    assert evidence.claims["public_key"] is None
    assert evidence.claims["user_data"] is not None
    assert evidence.signer is not None


def test_ga_document_raw_and_tagged_cbor(files: CorpusFiles) -> None:
    raw = nitro.verify(files.ga_cbor, anchors=files.root, at=GA_TIME)
    assert raw.nonce is not None

    tagged = b"\xd2" + files.ga_cbor  # CBOR tag 18 (COSE_Sign1) in one byte
    evidence = nitro.verify(tagged, anchors=files.root, at=GA_TIME)
    assert evidence.nonce == raw.nonce


def test_ga_document_parses(files: CorpusFiles) -> None:
    signed = nitro.parse(files.ga_text)

    assert signed.algorithm == -35
    assert signed.unprotected == {}
    assert len(signed.signature) == 96
    document = signed.document
    assert document.module_id == "i-0918f6c55e3b61d89-enc018aa8b8e2285d13"
    assert document.time().isoformat() == "2023-09-18T15:03:30.860000+00:00"
    assert len(document.cabundle) == 4
    assert document.public_key is None
    assert document.user_data is not None
    assert len(document.user_data) == 91


def test_ga_document_expired_now(files: CorpusFiles) -> None:
    with pytest.raises(ChainError) as caught:
        nitro.verify(files.ga_text, anchors=files.root, at=utc("2024-01-01T00:00:00Z"))
    assert caught.value.check == "certificate validity"


def test_ga_document_before_leaf(files: CorpusFiles) -> None:
    with pytest.raises(ChainError) as caught:
        nitro.verify(files.ga_text, anchors=files.root, at=utc("2023-09-18T14:00:00Z"))
    assert caught.value.check == "certificate validity"


def test_ga_document_wrong_anchor(files: CorpusFiles) -> None:
    with pytest.raises(ChainError) as caught:
        nitro.verify(files.ga_text, anchors=files.amd_anchors, at=GA_TIME)
    assert caught.value.check == "certificate chain"


def test_ga_document_without_anchor(files: CorpusFiles) -> None:
    # The document's own cabundle root must not end the chain.
    with pytest.raises(ChainError) as caught:
        nitro.verify(files.ga_text, anchors=TrustAnchors(), at=GA_TIME)
    assert caught.value.check == "certificate chain"


def test_ga_tls_certificate_binding(files: CorpusFiles) -> None:
    evidence = nitro.verify(files.ga_text, anchors=files.root, at=GA_TIME)
    nitro.check_tls_key_binding(evidence, files.ga_tls_certificate)

    assert evidence.checks[-1].name == "tls key binding"
    certificate = x509.load_der_x509_certificate(files.ga_tls_certificate)
    assert evidence.claims["user_data"] == public_key_der(certificate.public_key()).hex()


def test_ga_binding_to_other_certificate(files: CorpusFiles) -> None:
    evidence = nitro.verify(files.ga_text, anchors=files.root, at=GA_TIME)
    with pytest.raises(VerificationError) as caught:
        nitro.check_tls_key_binding(evidence, files.ratls_certificate)
    assert caught.value.check == "tls key binding"
    assert caught.value.claim == "user_data"


def _offset_of(haystack: bytes, needle: bytes) -> int:
    position = haystack.find(needle)
    assert position >= 0
    assert haystack.find(needle, position + 1) < 0
    return position


def test_signed_payload_flips_fail(files: CorpusFiles) -> None:
    raw = files.ga_cbor
    document = nitro.parse(raw).document
    assert document.nonce is not None
    assert document.user_data is not None
    positions = [
        _offset_of(raw, document.nonce),
        _offset_of(raw, document.nonce) + 255,
        _offset_of(raw, document.user_data) + 40,
        _offset_of(raw, document.pcrs[3]) + 10,
        _offset_of(raw, document.pcrs[4]),
        # The leaf certificate's subject repeats the module id; the first copy is the field.
        raw.find(document.module_id.encode()) + 5,
        _offset_of(raw, (document.timestamp).to_bytes(8, "big")) + 7,
    ]
    for position in positions:
        with pytest.raises(SignatureError) as caught:
            nitro.verify(flip(raw, position), anchors=files.root, at=GA_TIME)
        assert caught.value.check == "document signature", position


def test_signature_flips_fail(files: CorpusFiles) -> None:
    raw = files.ga_cbor
    for position in (len(raw) - 96, len(raw) - 49, len(raw) - 1):
        with pytest.raises(SignatureError) as caught:
            nitro.verify(flip(raw, position), anchors=files.root, at=GA_TIME)
        assert caught.value.check == "document signature"


def test_leaf_certificate_flip_fails(files: CorpusFiles) -> None:
    raw = files.ga_cbor
    leaf = nitro.parse(raw).document.certificate
    # A byte inside the leaf's subject public key: the certificate signature fails.
    position = _offset_of(raw, leaf) + len(leaf) - 150
    with pytest.raises((SignatureError, MalformedEvidence)):
        nitro.verify(flip(raw, position), anchors=files.root, at=GA_TIME)


def test_leaf_invalid_version_is_malformed(files: CorpusFiles) -> None:
    raw = files.ga_cbor
    leaf = nitro.parse(raw).document.certificate
    assert leaf[8:13] == bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (X.509 v3)
    changed = bytearray(raw)
    changed[_offset_of(raw, leaf) + 12] = 0x77
    with pytest.raises(MalformedEvidence):
        nitro.verify(bytes(changed), anchors=files.root, at=GA_TIME)


def test_truncations_fail_cleanly(files: CorpusFiles) -> None:
    raw = files.ga_cbor
    for length in [*range(0, 64), *range(64, len(raw), 37), len(raw) - 1]:
        with pytest.raises(MalformedEvidence):
            nitro.verify(raw[:length], anchors=files.root, at=GA_TIME)


def test_base64_truncations_fail_cleanly(files: CorpusFiles) -> None:
    text = files.ga_text.strip()
    for length in range(1, len(text), 97):
        with pytest.raises((MalformedEvidence, VerificationError)):
            nitro.verify(text[:length], anchors=files.root, at=GA_TIME)


def test_trailing_bytes_are_malformed(files: CorpusFiles) -> None:
    with pytest.raises(MalformedEvidence):
        nitro.parse(files.ga_cbor + b"\x00")


def test_looks_like_only_nitro_documents(files: CorpusFiles, corpus: Path) -> None:
    assert nitro.looks_like(files.ga_text)
    assert nitro.looks_like(files.ga_cbor)
    others = [
        p for p in corpus.rglob("*") if p.is_file() and p.name != "evervault_ga_attestation_doc.b64"
    ]
    assert others
    for path in others:
        assert not nitro.looks_like(path.read_bytes()), path


# Corpus: the attested-TLS certificate


def test_ratls_certificate_verifies(files: CorpusFiles) -> None:
    evidence = nitro.verify_ratls_certificate(
        files.ratls_certificate, anchors=files.root, at=RATLS_TIME
    )

    assert [c.name for c in evidence.checks] == [
        "certificate chain",
        "document signature",
        "tls key binding",
    ]
    assert evidence.debug is False
    assert evidence.measurements["nitro/pcr/0"].hex().startswith("d265a83f")
    assert evidence.measurements["nitro/pcr/1"].hex().startswith("bcdf05fe")
    assert evidence.measurements["nitro/pcr/2"].hex().startswith("e4f634d2")
    assert evidence.measurements["nitro/pcr/8"].hex().startswith("97c5395a")


def test_ratls_certificate_expired_later(files: CorpusFiles) -> None:
    with pytest.raises(ChainError) as caught:
        nitro.verify_ratls_certificate(
            files.ratls_certificate, anchors=files.root, at=utc("2023-01-19T00:00:00Z")
        )
    assert caught.value.check == "certificate validity"


def test_ratls_certificate_wrong_anchor(files: CorpusFiles) -> None:
    with pytest.raises(ChainError) as caught:
        nitro.verify_ratls_certificate(
            files.ratls_certificate, anchors=files.amd_anchors, at=RATLS_TIME
        )
    assert caught.value.check == "certificate chain"


def test_ratls_extract_document(files: CorpusFiles) -> None:
    certificate = x509.load_der_x509_certificate(files.ratls_certificate)
    document = nitro.extract_document(certificate)
    user_data = nitro.parse(document).document.user_data
    assert user_data == public_key_der(certificate.public_key())


def test_ratls_without_document(files: CorpusFiles) -> None:
    with pytest.raises(MalformedEvidence):
        nitro.verify_ratls_certificate(files.ga_tls_certificate, anchors=files.root, at=GA_TIME)


def test_ratls_garbage_certificate(files: CorpusFiles) -> None:
    with pytest.raises(MalformedEvidence):
        nitro.verify_ratls_certificate(b"\x30\x03\x02\x01\x00", anchors=files.root, at=GA_TIME)


# Synthetic documents


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


NOT_BEFORE = utc("2024-03-01T00:00:00Z")
SYNTHETIC_TIME = NOT_BEFORE + timedelta(hours=1)


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    hours: int = 3,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + timedelta(hours=hours))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA384())
    )


@dataclasses.dataclass
class SyntheticChain:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors(certificates=(self.root,))

    def payload(self, **changes: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "module_id": "i-test-enc0001",
            "digest": "SHA384",
            "timestamp": int(SYNTHETIC_TIME.timestamp() * 1000),
            "pcrs": {i: bytes([i + 1]) * 48 for i in range(16)},
            "certificate": self.leaf.public_bytes(Encoding.DER),
            "cabundle": [
                self.root.public_bytes(Encoding.DER),
                self.intermediate.public_bytes(Encoding.DER),
            ],
            "public_key": None,
            "user_data": b"user data",
            "nonce": b"\x42" * 32,
        }
        for name, value in changes.items():
            if value is _DROP:
                del payload[name]
            else:
                payload[name] = value
        return payload

    def sign(
        self,
        payload: dict[str, Any] | bytes,
        *,
        protected: dict[int, Any] | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
        tagged: bool = False,
    ) -> bytes:
        """Encode `payload` as a COSE_Sign1 with ES384 by the leaf key (or `key`)."""
        protected_bytes = cbor2.dumps(protected if protected is not None else {1: -35})
        payload_bytes = payload if isinstance(payload, bytes) else cbor2.dumps(payload)
        to_be_signed = cbor2.dumps(["Signature1", protected_bytes, b"", payload_bytes])
        r, s = decode_dss_signature(
            (key or self.leaf_key).sign(to_be_signed, ec.ECDSA(hashes.SHA384()))
        )
        signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
        message = [protected_bytes, {}, payload_bytes, signature]
        if tagged:
            return bytes(cbor2.dumps(cbor2.CBORTag(18, message)))
        return bytes(cbor2.dumps(message))


_DROP = object()


@pytest.fixture(scope="module")
def chain() -> SyntheticChain:
    root_key = ec.generate_private_key(ec.SECP384R1())
    intermediate_key = ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    root = _certificate("test.nitro-enclaves", root_key, "test.nitro-enclaves", root_key, ca=True)
    intermediate = _certificate(
        "zonal.test.nitro-enclaves", intermediate_key, "test.nitro-enclaves", root_key, ca=True
    )
    leaf = _certificate(
        "i-test-enc0001", leaf_key, "zonal.test.nitro-enclaves", intermediate_key, ca=False
    )
    return SyntheticChain(root, intermediate, leaf, leaf_key)


def verify_synthetic(chain: SyntheticChain, data: bytes) -> VerifiedEvidence:
    return nitro.verify(data, anchors=chain.anchors, at=SYNTHETIC_TIME)


def test_synthetic_document_verifies(chain: SyntheticChain) -> None:
    evidence = verify_synthetic(chain, chain.sign(chain.payload(), tagged=True))
    assert evidence.nonce == b"\x42" * 32
    assert evidence.debug is False
    assert evidence.claims["user_data"] == b"user data".hex()
    assert evidence.measurements["nitro/pcr/15"] == b"\x10" * 48


def test_synthetic_debug_document(chain: SyntheticChain) -> None:
    pcrs = {i: bytes(48) for i in range(16)}
    evidence = verify_synthetic(chain, chain.sign(chain.payload(pcrs=pcrs)))
    assert evidence.debug is True


def test_synthetic_partial_pcrs_debug_unknown(chain: SyntheticChain) -> None:
    evidence = verify_synthetic(chain, chain.sign(chain.payload(pcrs={4: bytes(32)})))
    assert evidence.debug is None


def test_synthetic_optional_fields_absent(chain: SyntheticChain) -> None:
    payload = chain.payload(public_key=_DROP, user_data=_DROP, nonce=_DROP)
    evidence = verify_synthetic(chain, chain.sign(payload))
    assert evidence.nonce is None
    assert evidence.claims["user_data"] is None


def test_synthetic_other_key_signature(chain: SyntheticChain) -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(SignatureError) as caught:
        verify_synthetic(chain, chain.sign(chain.payload(), key=other))
    assert caught.value.check == "document signature"


def test_synthetic_es256_rejected(chain: SyntheticChain) -> None:
    with pytest.raises(VerificationError) as caught:
        verify_synthetic(chain, chain.sign(chain.payload(), protected={1: -7}))
    assert caught.value.check == "document signature"
    assert caught.value.claim == "alg"


def test_synthetic_crit_header_rejected(chain: SyntheticChain) -> None:
    with pytest.raises(MalformedEvidence):
        verify_synthetic(chain, chain.sign(chain.payload(), protected={1: -35, 2: [99]}))


def test_synthetic_expired_intermediate(chain: SyntheticChain) -> None:
    with pytest.raises(ChainError) as caught:
        nitro.verify(
            chain.sign(chain.payload()),
            anchors=chain.anchors,
            at=NOT_BEFORE + timedelta(hours=4),
        )
    assert caught.value.check == "certificate validity"


def test_synthetic_missing_intermediate(chain: SyntheticChain) -> None:
    payload = chain.payload(cabundle=[chain.root.public_bytes(Encoding.DER)])
    with pytest.raises(ChainError) as caught:
        verify_synthetic(chain, chain.sign(payload))
    assert caught.value.check == "certificate chain"


def test_synthetic_self_made_root_rejected(chain: SyntheticChain) -> None:
    # A bundle whose root is an attacker's own CA does not chain to the pinned root.
    fake_root_key = ec.generate_private_key(ec.SECP384R1())
    fake_root = _certificate(
        "test.nitro-enclaves", fake_root_key, "test.nitro-enclaves", fake_root_key, ca=True
    )
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    leaf = _certificate("i-test-enc0001", leaf_key, "test.nitro-enclaves", fake_root_key, ca=False)
    payload = chain.payload(
        certificate=leaf.public_bytes(Encoding.DER),
        cabundle=[fake_root.public_bytes(Encoding.DER)],
    )
    with pytest.raises((ChainError, SignatureError)):
        verify_synthetic(chain, chain.sign(payload, key=leaf_key))


@pytest.mark.parametrize(
    "changes",
    [
        {"module_id": ""},
        {"module_id": 5},
        {"module_id": _DROP},
        {"digest": "SHA256"},
        {"timestamp": 0},
        {"timestamp": -1},
        {"timestamp": "now"},
        {"timestamp": 2**64 - 1},
        {"pcrs": {}},
        {"pcrs": {32: bytes(48)}},
        {"pcrs": {"0": bytes(48)}},
        {"pcrs": {0: bytes(20)}},
        {"pcrs": {i: bytes(48) for i in range(33)}},
        {"pcrs": [bytes(48)]},
        {"certificate": b""},
        {"certificate": bytes(1025)},
        {"cabundle": []},
        {"cabundle": [b""]},
        {"cabundle": "root"},
        {"public_key": b""},
        {"user_data": bytes(513)},
        {"nonce": bytes(513)},
        {"nonce": "text"},
        {"extra": b"field"},
    ],
)
def test_synthetic_payload_rules(chain: SyntheticChain, changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvidence):
        nitro.parse(chain.sign(chain.payload(**changes)))


@pytest.mark.parametrize(
    "message",
    [
        [],
        [b"", {}, b"", b""],
        [cbor2.dumps({1: -35}), {}, None, bytes(96)],
        [cbor2.dumps([1]), {}, cbor2.dumps({}), bytes(96)],
        [cbor2.dumps({1: -35}), [], cbor2.dumps({}), bytes(96)],
        cbor2.CBORTag(61, [cbor2.dumps({1: -35}), {}, cbor2.dumps({}), bytes(96)]),
        {"not": "cose"},
    ],
)
def test_synthetic_cose_structure_rules(message: object) -> None:
    with pytest.raises(MalformedEvidence):
        nitro.parse(cbor2.dumps(message))


def test_synthetic_short_signature(chain: SyntheticChain) -> None:
    signed = cbor2.loads(chain.sign(chain.payload()))
    signed[3] = signed[3][:64]
    with pytest.raises(SignatureError) as caught:
        verify_synthetic(chain, cbor2.dumps(signed))
    assert caught.value.check == "document signature"


def test_synthetic_payload_trailing_bytes(chain: SyntheticChain) -> None:
    payload_bytes = cbor2.dumps(chain.payload()) + b"\x00"
    with pytest.raises(MalformedEvidence):
        nitro.parse(chain.sign(payload_bytes))


def test_synthetic_ratls_binding_mismatch(chain: SyntheticChain) -> None:
    # The certificate carries a valid document whose user_data is not its own key.
    document = chain.sign(chain.payload())
    tls_key = ec.generate_private_key(ec.SECP384R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("cage.example"))
        .issuer_name(_name("cage.example"))
        .public_key(tls_key.public_key())
        .serial_number(1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("cage.example"), x509.DNSName(f"{document.hex()}.cage.example")]
            ),
            critical=False,
        )
        .sign(tls_key, hashes.SHA256())
    )
    with pytest.raises(VerificationError) as caught:
        nitro.verify_ratls_certificate(
            certificate.public_bytes(Encoding.DER), anchors=chain.anchors, at=SYNTHETIC_TIME
        )
    assert caught.value.check == "tls key binding"


def test_base64_variants(chain: SyntheticChain) -> None:
    raw = chain.sign(chain.payload())
    standard = base64.b64encode(raw)
    urlsafe = base64.urlsafe_b64encode(raw).rstrip(b"=")
    wrapped = b"\n".join(standard[i : i + 76] for i in range(0, len(standard), 76)) + b"\n"
    for text in (standard, urlsafe, wrapped):
        assert verify_synthetic(chain, text).nonce == b"\x42" * 32


def test_non_base64_text_is_malformed() -> None:
    for data in (b"", b"   ", b"not base64!", "é".encode(), b"\xff\xfe"):
        with pytest.raises(MalformedEvidence):
            nitro.parse(data)


# Fuzzing

_DOCUMENTED = (MalformedEvidence, VerificationError)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_parse_random_bytes(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        nitro.parse(data)
    nitro.looks_like(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200).map(lambda body: b"\x84" + body))
def test_fuzz_parse_cbor_arrays(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        nitro.parse(data)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_fuzz_mutated_document(files: CorpusFiles, data: st.DataObject) -> None:
    raw = bytearray(files.ga_cbor)
    edits = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(raw) - 1), st.integers(1, 255)),
            min_size=1,
            max_size=6,
        )
    )
    for position, mask in edits:
        raw[position] ^= mask
    with contextlib.suppress(*_DOCUMENTED):
        nitro.verify(bytes(raw), anchors=files.root, at=GA_TIME)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.dictionaries(
        st.sampled_from(["module_id", "digest", "timestamp", "pcrs", "nonce", "cabundle"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.binary(max_size=80) | st.text(),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.integers(-2, 40), inner, max_size=4)
            ),
            max_leaves=10,
        ),
    )
)
def test_fuzz_payload_fields(chain: SyntheticChain, changes: dict[str, Any]) -> None:
    with contextlib.suppress(*_DOCUMENTED):
        verify_synthetic(chain, chain.sign(chain.payload(**changes)))


def test_verified_time_is_recorded(files: CorpusFiles) -> None:
    at: datetime = GA_TIME + timedelta(minutes=1)
    evidence = nitro.verify(files.ga_text, anchors=files.root, at=at)
    assert evidence.verified_at == at
