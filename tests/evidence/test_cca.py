"""Arm CCA token verification: the corpus example and synthetic tokens."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from attestnet.errors import MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence import cca
from attestnet.evidence.anchors import load_anchor_file
from attestnet.evidence.model import TrustAnchors
from tests.conftest import utc
from tests.evidence.cose_builders import flip, sign1

AT = utc("2025-06-01T00:00:00Z")


def _token(corpus: Path) -> bytes:
    return (corpus / "cca/tfmtools_cca_example_token.cbor").read_bytes()


def _cpak(corpus: Path) -> TrustAnchors:
    return load_anchor_file(corpus / "cca/cca_cpak_public.pem")


def _cose_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    return cbor2.dumps(
        {1: 2, -1: 2, -2: numbers.x.to_bytes(48, "big"), -3: numbers.y.to_bytes(48, "big")}
    )


def _synthetic(
    cpak: ec.EllipticCurvePrivateKey,
    rak: ec.EllipticCurvePrivateKey,
    *,
    legacy: bool = False,
    challenge: bytes | None = None,
) -> bytes:
    rak_claim = _cose_key(rak)
    if legacy:  # earlier RMMs carry the RAK as a raw SEC1 point
        numbers = rak.public_key().public_numbers()
        rak_claim = b"\x04" + numbers.x.to_bytes(48, "big") + numbers.y.to_bytes(48, "big")
    realm = {
        10: b"\x01" * 64,
        44235: b"\x02" * 64,
        44236: "sha-256",
        44237: rak_claim,
        44238: b"\x03" * 32,
        44239: [b"\x04" * 32] * 4,
        44240: "sha-256",
    }
    platform = {
        10: challenge if challenge is not None else hashlib.sha256(rak_claim).digest(),
        256: b"\x01" + b"\x05" * 32,
        265: "tag:arm.com,2023:cca_platform#1.0.0",
        2395: 0x3000,
        2396: b"\x06" * 32,
        2399: [{1: "RMM", 2: b"\x07" * 32, 5: b"\x08" * 32}],
    }
    platform_token = sign1(cbor2.dumps(platform), cpak, alg=-35)
    realm_token = sign1(cbor2.dumps(realm), rak, alg=-35)
    if legacy:
        collection: dict[int, Any] = {44234: platform_token, 44241: realm_token}
        return cbor2.dumps(cbor2.CBORTag(399, collection))
    collection = {44234: [263, platform_token], 44241: [263, realm_token]}
    return cbor2.dumps(cbor2.CBORTag(907, collection))


def test_example_token_valid(corpus: Path) -> None:
    evidence = cca.verify(_token(corpus), anchors=_cpak(corpus), at=AT)
    assert [c.name for c in evidence.checks] == [
        "platform signature",
        "realm signature",
        "rak binding",
    ]
    assert evidence.nonce is not None
    assert evidence.nonce.hex().startswith("6e86d6d9")
    assert evidence.nonce.hex().endswith("1d6b1504")
    assert evidence.measurements["cca/realm/rim"].hex().startswith("311314ab")
    assert evidence.instance_id is not None
    assert evidence.instance_id.hex().startswith("0107")
    assert evidence.claims["platform"]["implementation_id"].startswith("7f454c46")
    assert "cca/platform/sw/RMM" in evidence.measurements


def test_wrong_cpak(corpus: Path) -> None:
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(SignatureError) as info:
        cca.verify(_token(corpus), anchors=TrustAnchors(public_keys=(other,)), at=AT)
    assert info.value.check == "platform signature"


def test_byte_flips(corpus: Path) -> None:
    data = _token(corpus)
    rim = bytes.fromhex("311314ab")
    realm_challenge = bytes.fromhex("6e86d6d9")
    platform_sw = data.find(b"RSE_BL1_2") + 20
    cases = {
        data.find(rim) + 2: "realm signature",
        data.find(realm_challenge) + 1: "realm signature",
        platform_sw: "platform signature",
        1500: "platform signature",  # inside the platform signature
        len(data) - 1: "realm signature",
    }
    for offset, check in cases.items():
        with pytest.raises(SignatureError) as info:
            cca.verify(flip(data, offset), anchors=_cpak(corpus), at=AT)
        assert info.value.check == check, offset


def test_truncations(corpus: Path) -> None:
    data = _token(corpus)
    for length in range(0, len(data), 7):
        with pytest.raises((MalformedEvidence, VerificationError)):
            cca.verify(data[:length], anchors=_cpak(corpus), at=AT)


def test_synthetic_valid() -> None:
    cpak, rak = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    evidence = cca.verify(
        _synthetic(cpak, rak), anchors=TrustAnchors(public_keys=(cpak.public_key(),)), at=AT
    )
    assert evidence.nonce == b"\x01" * 64
    assert evidence.claims["legacy_encoding"] is False


def test_legacy_tag_399() -> None:
    cpak, rak = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    data = _synthetic(cpak, rak, legacy=True)
    assert cca.looks_like(data)
    evidence = cca.verify(data, anchors=TrustAnchors(public_keys=(cpak.public_key(),)), at=AT)
    assert evidence.claims["legacy_encoding"] is True


def test_binding_mismatch() -> None:
    cpak, rak = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    data = _synthetic(cpak, rak, challenge=b"\x00" * 32)
    with pytest.raises(VerificationError) as info:
        cca.verify(data, anchors=TrustAnchors(public_keys=(cpak.public_key(),)), at=AT)
    assert info.value.check == "rak binding"
    assert info.value.claim == "cca-platform-challenge"


def test_realm_signed_by_other_key() -> None:
    cpak, rak = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    data = cbor2.loads(_synthetic(cpak, rak))
    realm = cbor2.loads(cbor2.loads(data.value[44241][1]).value[2])
    other = ec.generate_private_key(ec.SECP384R1())
    data.value[44241][1] = sign1(cbor2.dumps(realm), other, alg=-35)
    with pytest.raises(SignatureError) as info:
        cca.verify(cbor2.dumps(data), anchors=TrustAnchors(public_keys=(cpak.public_key(),)), at=AT)
    assert info.value.check == "realm signature"


def test_looks_like_corpus(corpus: Path) -> None:
    matches = [p.name for p in corpus.glob("*/*") if p.is_file() and cca.looks_like(p.read_bytes())]
    assert matches == ["tfmtools_cca_example_token.cbor"]


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_fuzz_parse(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        cca.parse(b"\xd9\x03\x8b" + data)


_CPAK = ec.generate_private_key(ec.SECP384R1())
_SEED = _synthetic(_CPAK, ec.generate_private_key(ec.SECP384R1()))


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=4))
def test_fuzz_mutations(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for offset, value in edits:
        data[offset] = value
    with contextlib.suppress(MalformedEvidence, VerificationError):
        cca.verify(bytes(data), anchors=TrustAnchors(public_keys=(_CPAK.public_key(),)), at=AT)
