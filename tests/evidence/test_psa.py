"""PSA token verification against the corpus and synthetic tokens."""

from __future__ import annotations

import contextlib
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestnet.errors import ConfigError, MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence import psa
from attestnet.evidence.anchors import load_anchor_file, parse_anchors
from attestnet.evidence.model import TrustAnchors
from attestnet.evidence.signatures import record_signatures, replay
from tests.conftest import utc
from tests.evidence.cose_builders import flip, mac0, sign1

AT = utc("2025-06-01T00:00:00Z")


def _private_key_anchor(path: Path) -> TrustAnchors:
    key = load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return TrustAnchors(public_keys=(key.public_key(),))


def _e2e_anchor(corpus: Path) -> TrustAnchors:
    return parse_anchors((corpus / "corim/signed-good-corim_signer_ec-p256.jwk").read_bytes())


def _claims() -> dict[int, object]:
    return {
        10: b"\x11" * 32,
        256: b"\x01" + b"\x22" * 32,
        265: "tag:psacertified.org,2023:psa#tfm",
        2394: 1,
        2395: 0x3000,
        2396: b"\x33" * 32,
        2399: [{1: "BL", 2: b"\x44" * 32, 4: "1.0.0", 5: b"\x55" * 32}],
    }


def test_rfc9783_sign1_valid(corpus: Path) -> None:
    data = (corpus / "psa/rfc9783_psa-sign1.cbor").read_bytes()
    anchors = _private_key_anchor(corpus / "psa/rfc9783_tfm-es-iak.pem")
    evidence = psa.verify(data, anchors=anchors, at=AT)
    assert [c.name for c in evidence.checks] == ["signature"]
    assert evidence.nonce == b"\x01" * 32
    assert evidence.instance_id == b"\x01" + b"\x02" * 32
    assert evidence.measurements == {"psa/sw/PRoT": b"\x03" * 32}
    assert evidence.claims["client_id"] == 2147483647
    assert evidence.claims["boot_seed"] == "00" * 8
    assert evidence.debug is False


def test_rfc9783_mac0_valid(corpus: Path) -> None:
    data = (corpus / "psa/rfc9783_psa-mac0.cbor").read_bytes()
    key = psa.load_hmac_key(corpus / "psa/rfc9783_tfm-hs-iak.bin")
    evidence = psa.verify(data, anchors=TrustAnchors(), at=AT, hmac_key=key)
    assert [c.name for c in evidence.checks] == ["mac"]
    assert evidence.instance_id is not None
    assert evidence.instance_id.hex().startswith("01c557bd")


def test_mac0_wrong_key(corpus: Path) -> None:
    data = (corpus / "psa/rfc9783_psa-mac0.cbor").read_bytes()
    with pytest.raises(SignatureError) as info:
        psa.verify(data, anchors=TrustAnchors(), at=AT, hmac_key=b"\x00" * 64)
    assert info.value.check == "mac"


def test_mac0_without_key(corpus: Path) -> None:
    data = (corpus / "psa/rfc9783_psa-mac0.cbor").read_bytes()
    with pytest.raises(VerificationError) as info:
        psa.verify(data, anchors=TrustAnchors(), at=AT)
    assert info.value.check == "mac"


def test_mac0_byte_flips(corpus: Path) -> None:
    data = (corpus / "psa/rfc9783_psa-mac0.cbor").read_bytes()
    key = psa.load_hmac_key(corpus / "psa/rfc9783_tfm-hs-iak.bin")
    nonce_at = data.find(b"\x01" * 32)
    for offset in (nonce_at, nonce_at + 31, len(data) - 1, len(data) - 32):
        with pytest.raises(SignatureError):
            psa.verify(flip(data, offset), anchors=TrustAnchors(), at=AT, hmac_key=key)


def test_load_hmac_key_rejects_bad_size(tmp_path: Path) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(ConfigError):
        psa.load_hmac_key(path)


def test_tfm_profile2_valid(corpus: Path) -> None:
    data = (corpus / "psa/tfm_psa-2_0_0_sign1.cbor").read_bytes()
    anchors = load_anchor_file(corpus / "psa/tfm_iak_public.pem")
    evidence = psa.verify(data, anchors=anchors, at=utc("2030-01-01T00:00:00Z"))
    assert evidence.nonce == bytes(64)
    assert set(evidence.measurements) == {"psa/sw/SPE", "psa/sw/NSPE"}
    assert evidence.claims["certification_reference"] == "0604565272829-10010"
    assert evidence.claims["software_components"][0]["version"] == "1.6.0"


def test_veraison_e2e_valid(corpus: Path) -> None:
    data = (corpus / "psa/veraison_e2e_psa-evidence.cbor").read_bytes()
    evidence = psa.verify(data, anchors=_e2e_anchor(corpus), at=AT)
    assert evidence.nonce is not None
    assert evidence.nonce.hex().startswith("414a7c17")
    assert evidence.claims["implementation_id"] == b"acme-implementation-id-000000001".hex()
    assert list(evidence.measurements) == ["psa/sw/BL", "psa/sw/PRoT", "psa/sw/ARoT"]


def test_wrong_key(corpus: Path) -> None:
    data = (corpus / "psa/tfm_psa-2_0_0_sign1.cbor").read_bytes()
    with pytest.raises(SignatureError) as info:
        psa.verify(data, anchors=_e2e_anchor(corpus), at=AT)
    assert info.value.check == "signature"


def test_no_anchor(corpus: Path) -> None:
    data = (corpus / "psa/tfm_psa-2_0_0_sign1.cbor").read_bytes()
    with pytest.raises(SignatureError):
        psa.verify(data, anchors=TrustAnchors(), at=AT)


def test_tfmtools_malformed(corpus: Path) -> None:
    data = (corpus / "psa/tfmtools_malformed.cbor").read_bytes()
    anchors = _private_key_anchor(corpus / "psa/tfmtools_key.pem")
    with pytest.raises(MalformedEvidence):
        psa.verify(data, anchors=anchors, at=AT)
    # Without its trailing byte the token still fails: the protected header has no alg.
    with pytest.raises(MalformedEvidence, match="algorithm"):
        psa.verify(data[:-1], anchors=anchors, at=AT)


def test_byte_flips_fail_signature(corpus: Path) -> None:
    data = (corpus / "psa/veraison_e2e_psa-evidence.cbor").read_bytes()
    anchors = _e2e_anchor(corpus)
    nonce_at = data.find(bytes.fromhex("414a7c17"))
    protected_alg_at = data.find(b"\x43\xa1\x01\x26") + 3
    offsets = [protected_alg_at, nonce_at, nonce_at + 20, len(data) - 1, len(data) - 40]
    for offset in offsets:
        with pytest.raises(SignatureError):
            psa.verify(flip(data, offset), anchors=anchors, at=AT)


def test_truncations(corpus: Path) -> None:
    data = (corpus / "psa/veraison_e2e_psa-evidence.cbor").read_bytes()
    anchors = _e2e_anchor(corpus)
    for length in range(len(data)):
        with pytest.raises((MalformedEvidence, VerificationError)):
            psa.verify(data[:length], anchors=anchors, at=AT)


def test_signature_recorded_for_benchmark(corpus: Path) -> None:
    data = (corpus / "psa/veraison_e2e_psa-evidence.cbor").read_bytes()
    extra = ec.generate_private_key(ec.SECP256R1()).public_key()
    anchors = TrustAnchors(public_keys=(extra, *_e2e_anchor(corpus).public_keys))
    with record_signatures() as checks:
        psa.verify(data, anchors=anchors, at=AT)
    assert len(checks) == 1
    replay(checks)


def test_legacy_profile1_claims() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    claims = {
        -75000: "PSA_IOT_PROFILE_1",
        -75001: 1,
        -75002: 0x3000,
        -75003: b"\x01" * 32,
        -75004: b"\x02" * 32,
        -75006: [{1: "BL", 2: b"\x03" * 32, 5: b"\x04" * 32}],
        -75008: b"\x05" * 32,
        -75009: b"\x01" + b"\x06" * 32,
    }
    data = sign1(cbor2.dumps(claims), key)
    evidence = psa.verify(data, anchors=TrustAnchors(public_keys=(key.public_key(),)), at=AT)
    assert evidence.claims["legacy_profile"] is True
    assert evidence.nonce == b"\x05" * 32
    assert evidence.measurements == {"psa/sw/BL": b"\x03" * 32}


@pytest.mark.parametrize(
    ("curve", "alg", "name"), [(ec.SECP384R1(), -35, "ES384"), (ec.SECP521R1(), -36, "ES512")]
)
def test_es384_es512(curve: ec.EllipticCurve, alg: int, name: str) -> None:
    key = ec.generate_private_key(curve)
    data = sign1(cbor2.dumps(_claims()), key, alg=alg)
    evidence = psa.verify(data, anchors=TrustAnchors(public_keys=(key.public_key(),)), at=AT)
    assert evidence.checks[0].detail.startswith(name)


def test_alg_only_unprotected_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = sign1(cbor2.dumps(_claims()), key)
    message = cbor2.loads(data).value
    message[0], message[1] = b"", {1: -7}
    with pytest.raises(MalformedEvidence, match="unprotected"):
        psa.parse(cbor2.dumps(cbor2.CBORTag(18, message)))


def test_wrong_claim_type_malformed() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bad = sign1(cbor2.dumps({**_claims(), 2396: 5}), key)
    with pytest.raises(MalformedEvidence, match="implementation id"):
        psa.parse(bad)


def test_synthetic_mac0_roundtrip() -> None:
    key = b"\x42" * 32
    data = mac0(cbor2.dumps(_claims()), key)
    evidence = psa.verify(data, anchors=TrustAnchors(), at=AT, hmac_key=key)
    assert evidence.checks[0].name == "mac"


def test_looks_like_corpus(corpus: Path) -> None:
    matches = {
        str(p.relative_to(corpus))
        for p in corpus.glob("*/*")
        if p.is_file() and psa.looks_like(p.read_bytes())
    }
    assert matches == {
        "psa/rfc9783_psa-mac0.cbor",
        "psa/rfc9783_psa-sign1.cbor",
        "psa/tfm_psa-2_0_0_sign1.cbor",
        "psa/tfmtools_malformed.cbor",
        "psa/veraison_e2e_psa-evidence.cbor",
    }


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_fuzz_parse(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        psa.parse(data)


_SEED = sign1(cbor2.dumps(_claims()), ec.generate_private_key(ec.SECP256R1()))


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=4))
def test_fuzz_mutations(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for offset, value in edits:
        data[offset] = value
    with contextlib.suppress(MalformedEvidence, VerificationError):
        psa.verify(bytes(data), anchors=TrustAnchors(), at=AT)
