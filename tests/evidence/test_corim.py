"""CoRIM parsing and signed-CoRIM verification."""

from __future__ import annotations

import contextlib
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from attestnet.errors import MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence import corim
from attestnet.evidence.anchors import load_anchor_file
from attestnet.evidence.model import TrustAnchors
from tests.conftest import corpus_path, utc
from tests.evidence.cose_builders import flip, sign1

IN_WINDOW = utc("2024-01-01T00:00:00Z")


def _signed(corpus: Path) -> bytes:
    return (corpus / "corim/signed-good-corim.cbor").read_bytes()


def _signer(corpus: Path) -> TrustAnchors:
    return load_anchor_file(corpus / "corim/signed-good-corim_signer_ec-p256.jwk")


def _e2e(corpus: Path) -> bytes:
    return (corpus / "corim/veraison_e2e_psa-endorsements.corim.cbor").read_bytes()


def test_unsigned_e2e_structure(corpus: Path) -> None:
    parsed = corim.parse(_e2e(corpus))
    assert not parsed.signed
    assert parsed.profile == "http://arm.com/psa/iot/1"
    assert len(parsed.comids) == 2
    (reference,) = parsed.reference_values
    assert reference.environment.class_id == corim.TypedValue(
        "psa.impl-id", b"acme-implementation-id-000000001"
    )
    labels = [m.psa_refval_id.label for m in reference.measurements if m.psa_refval_id]
    assert labels == ["BL", "PRoT", "ARoT"]
    assert reference.measurements[0].digests[0].algorithm == 1
    assert reference.measurements[0].digests[0].value.hex().startswith("87428fc5")
    (triple,) = parsed.attest_keys
    assert triple.environment.instance is not None
    assert triple.environment.instance.type == "ueid"
    assert triple.environment.instance.value.hex().startswith("01ceebae")
    assert triple.keys[0].type == "pkix-base64-key"
    assert isinstance(triple.keys[0].public_key, ec.EllipticCurvePublicKey)


def test_unsigned_verify_rejected(corpus: Path) -> None:
    with pytest.raises(VerificationError) as info:
        corim.verify(_e2e(corpus), anchors=_signer(corpus), at=IN_WINDOW)
    assert info.value.check == "corim signature"


def test_signed_valid_in_window(corpus: Path) -> None:
    evidence = corim.verify(_signed(corpus), anchors=_signer(corpus), at=IN_WINDOW)
    assert [c.name for c in evidence.checks] == ["corim signature", "signer validity"]
    assert evidence.claims["signer"]["signer_name"] == "ACME Ltd signing key"
    parsed = corim.verify_corim(_signed(corpus), anchors=_signer(corpus), at=IN_WINDOW)
    assert parsed.id == "test corim id"
    assert parsed.meta is not None
    assert parsed.meta.not_after == utc("2025-12-31T00:00:00Z")
    (reference,) = parsed.reference_values
    assert reference.environment.class_id is not None
    assert reference.environment.class_id.type == "bytes"
    assert len(reference.measurements) == 3


def test_signed_expired(corpus: Path) -> None:
    with pytest.raises(VerificationError) as info:
        corim.verify(_signed(corpus), anchors=_signer(corpus), at=utc("2026-06-01T00:00:00Z"))
    assert info.value.check == "signer validity"
    assert info.value.claim == "corim-meta.not-after"


def test_signed_not_yet_valid(corpus: Path) -> None:
    with pytest.raises(VerificationError) as info:
        corim.verify(_signed(corpus), anchors=_signer(corpus), at=utc("2021-06-01T00:00:00Z"))
    assert info.value.check == "signer validity"
    assert info.value.claim == "corim-meta.not-before"


def test_signed_wrong_key(corpus: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(SignatureError) as info:
        corim.verify(_signed(corpus), anchors=TrustAnchors(public_keys=(other,)), at=IN_WINDOW)
    assert info.value.check == "corim signature"


def test_signed_byte_flips(corpus: Path) -> None:
    data = _signed(corpus)
    offsets = [
        data.find(b"ACME Ltd signing key") + 3,  # corim-meta in the protected header
        data.find(b"test corim id") + 2,  # payload
        data.find(b"RoadRunner") + 1,  # payload, inside the CoMID
        len(data) - 1,  # signature
        len(data) - 50,
    ]
    for offset in offsets:
        with pytest.raises(SignatureError):
            corim.verify(flip(data, offset), anchors=_signer(corpus), at=IN_WINDOW)


def test_truncations(corpus: Path) -> None:
    data = _signed(corpus)
    for length in range(len(data)):
        with pytest.raises((MalformedEvidence, VerificationError)):
            corim.verify(data[:length], anchors=_signer(corpus), at=IN_WINDOW)
    e2e = _e2e(corpus)
    for length in range(len(e2e)):
        with pytest.raises(MalformedEvidence):
            corim.parse(e2e[:length])


def test_synthetic_signed_without_meta() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    unsigned = cbor2.dumps(
        cbor2.CBORTag(501, {0: "x", 1: [cbor2.CBORTag(506, cbor2.dumps({1: {0: "t"}, 4: {}}))]})
    )
    data = sign1(unsigned, key, protected={3: "application/rim+cbor"})
    with pytest.raises(MalformedEvidence, match="corim-meta"):
        corim.parse(data)


def test_looks_like_corpus(corpus: Path) -> None:
    matches = sorted(
        p.name for p in corpus.glob("*/*") if p.is_file() and corim.looks_like(p.read_bytes())
    )
    assert matches == ["signed-good-corim.cbor", "veraison_e2e_psa-endorsements.corim.cbor"]


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_fuzz_parse(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        corim.parse(b"\xd9\x01\xf5" + data)


@settings(max_examples=300)
@given(st.data())
def test_fuzz_mutations(draw: st.DataObject) -> None:

    path = corpus_path() / "corim/veraison_e2e_psa-endorsements.corim.cbor"
    if not path.is_file():
        pytest.skip("evidence corpus not found")
    data = bytearray(path.read_bytes())
    for _ in range(draw.draw(st.integers(1, 4))):
        data[draw.draw(st.integers(0, len(data) - 1))] = draw.draw(st.integers(0, 255))
    with contextlib.suppress(MalformedEvidence):
        corim.parse(bytes(data))
