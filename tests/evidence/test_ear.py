"""EAR verification: the Veraison sample and EARs signed with keys generated here."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from attestnet.errors import MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence import ear
from attestnet.evidence.anchors import load_anchor_file
from attestnet.evidence.model import TrustAnchors
from tests.conftest import utc
from tests.evidence.cose_builders import sign1

AT = utc("2025-06-01T00:00:00Z")
ISSUED = int(utc("2025-05-31T00:00:00Z").timestamp())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey, alg: str = "ES256") -> bytes:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    r, s = decode_dss_signature(key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{header}.{payload}.{_b64(signature)}".encode()


def _claims(**extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "eat_profile": "tag:github.com,2023:veraison/ear",
        "iat": ISSUED,
        "ear.verifier-id": {"build": "attestnet-test", "developer": "attestnet"},
        "eat_nonce": "bm9uY2Utbm9uY2Utbm9uY2U",
        "submods": {
            "PSA": {
                "ear.status": "affirming",
                "ear.trustworthiness-vector": {"instance-identity": 2, "executables": 2},
            }
        },
    }
    claims.update(extra)
    return claims


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _anchor(key: ec.EllipticCurvePrivateKey) -> TrustAnchors:
    return TrustAnchors(public_keys=(key.public_key(),))


def _sample(corpus: Path) -> tuple[bytes, TrustAnchors]:
    data = (corpus / "ear/veraison_ear_testJWT.jwt").read_bytes()
    return data, load_anchor_file(corpus / "ear/veraison_ear_pkey.jwk.json")


def test_veraison_sample_valid(corpus: Path) -> None:
    data, anchors = _sample(corpus)
    result = ear.verify_result(data, anchors=anchors, at=utc("2030-01-01T00:00:00Z"))
    assert result.form == "jwt"
    assert result.expires_at is None
    assert result.issued_at == utc("2022-10-18T11:09:33Z")
    appraisal = result.submods["test"]
    assert appraisal.status == "affirming"
    assert appraisal.trust_vector["executables"] == 3
    assert appraisal.trust_vector["instance-identity"] == 2
    assert result.raw_evidence == bytes.fromhex("deadbeef")
    assert result.verifier_id == {"build": "rrtrap-v1.0.0", "developer": "Acme Inc."}
    evidence = ear.verify(data, anchors=anchors, at=AT)
    names = [c.name for c in evidence.checks]
    assert names == ["ear signature", "ear freshness", "ear profile", "ear status"]


def test_sample_before_issue(corpus: Path) -> None:
    data, anchors = _sample(corpus)
    with pytest.raises(VerificationError) as info:
        ear.verify(data, anchors=anchors, at=utc("2022-01-01T00:00:00Z"))
    assert info.value.check == "ear freshness"
    assert info.value.claim == "iat"


def test_sample_wrong_key(corpus: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data, _ = _sample(corpus)
    with pytest.raises(SignatureError) as info:
        ear.verify(data, anchors=_anchor(key), at=AT)
    assert info.value.check == "ear signature"


def test_sample_byte_flips(corpus: Path) -> None:
    data, anchors = _sample(corpus)
    header_end, payload_end = data.index(b"."), data.rindex(b".")
    for offset in (5, header_end - 3, header_end + 10, payload_end - 5, payload_end + 5):
        flipped = bytearray(data)
        flipped[offset] = ord("A") if data[offset] != ord("A") else ord("B")
        with pytest.raises((SignatureError, MalformedEvidence)) as info:
            ear.verify(bytes(flipped), anchors=anchors, at=AT)
        if offset > payload_end:
            assert isinstance(info.value, SignatureError)


def test_payload_flip_with_valid_json(key: ec.EllipticCurvePrivateKey) -> None:
    data = _jwt(_claims(), key)
    header, payload, signature = data.split(b".")
    claims = json.loads(base64.urlsafe_b64decode(payload + b"=="))
    claims["submods"]["PSA"]["ear.trustworthiness-vector"]["executables"] = 3
    forged = b".".join([header, _b64(json.dumps(claims).encode()).encode(), signature])
    with pytest.raises(SignatureError):
        ear.verify(forged, anchors=_anchor(key), at=AT)


def test_truncations(corpus: Path) -> None:
    data, anchors = _sample(corpus)
    for length in range(len(data)):
        with pytest.raises((MalformedEvidence, VerificationError)):
            ear.verify(data[:length], anchors=anchors, at=AT)


def test_synthetic_valid(key: ec.EllipticCurvePrivateKey) -> None:
    result = ear.verify_result(_jwt(_claims(), key), anchors=_anchor(key), at=AT)
    assert result.nonce == b"bm9uY2Utbm9uY2Utbm9uY2U"
    assert result.submods["PSA"].trust_vector == {"instance-identity": 2, "executables": 2}


def test_expired(key: ec.EllipticCurvePrivateKey) -> None:
    data = _jwt(_claims(exp=ISSUED + 3600), key)
    ear.verify(data, anchors=_anchor(key), at=utc("2025-05-31T00:30:00Z"))
    with pytest.raises(VerificationError) as info:
        ear.verify(data, anchors=_anchor(key), at=AT)
    assert info.value.check == "ear freshness"
    assert info.value.claim == "exp"


def test_not_before(key: ec.EllipticCurvePrivateKey) -> None:
    data = _jwt(_claims(nbf=ISSUED + 2 * 86400), key)
    with pytest.raises(VerificationError) as info:
        ear.verify(data, anchors=_anchor(key), at=AT)
    assert info.value.claim == "nbf"


def test_unknown_profile(key: ec.EllipticCurvePrivateKey) -> None:
    data = _jwt(_claims(eat_profile="tag:example.com,2024:other"), key)
    with pytest.raises(VerificationError) as info:
        ear.verify(data, anchors=_anchor(key), at=AT)
    assert info.value.check == "ear profile"


def test_status_more_trusting_than_vector(key: ec.EllipticCurvePrivateKey) -> None:
    submods = {
        "PSA": {
            "ear.status": "affirming",
            "ear.trustworthiness-vector": {"instance-identity": 2, "executables": 96},
        }
    }
    with pytest.raises(VerificationError) as info:
        ear.verify(_jwt(_claims(submods=submods), key), anchors=_anchor(key), at=AT)
    assert info.value.check == "ear status"
    assert info.value.claim == "ear.trustworthiness-vector.executables"


def test_contraindicated_result_verifies(key: ec.EllipticCurvePrivateKey) -> None:
    submods = {
        "PSA": {"ear.status": "contraindicated", "ear.trustworthiness-vector": {"executables": 96}}
    }
    result = ear.verify_result(_jwt(_claims(submods=submods), key), anchors=_anchor(key), at=AT)
    assert result.submods["PSA"].status == "contraindicated"


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_rejected_algorithms(key: ec.EllipticCurvePrivateKey, alg: str) -> None:
    header = _b64(json.dumps({"alg": alg}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    with pytest.raises(MalformedEvidence, match="alg"):
        ear.verify(f"{header}.{payload}.AAAA".encode(), anchors=_anchor(key), at=AT)


def test_duplicate_json_member(key: ec.EllipticCurvePrivateKey) -> None:
    header = _b64(b'{"alg":"ES256","alg":"none"}')
    payload = _b64(json.dumps(_claims()).encode())
    with pytest.raises(MalformedEvidence, match="duplicate"):
        ear.verify(f"{header}.{payload}.AAAA".encode(), anchors=_anchor(key), at=AT)


def _cwt(key: ec.EllipticCurvePrivateKey, exp: int | None = None) -> bytes:
    claims: dict[int, Any] = {
        265: "tag:github.com,2023:veraison/ear",
        6: ISSUED,
        10: b"\x01" * 32,
        266: {"PSA": {1000: 2, 1001: {0: 2, 2: 2}, 1003: "policy:psa"}},
    }
    if exp is not None:
        claims[4] = exp
    return cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(sign1(cbor2.dumps(claims), key))))


def test_cwt_valid(key: ec.EllipticCurvePrivateKey) -> None:
    data = _cwt(key)
    assert ear.looks_like(data)
    result = ear.verify_result(data, anchors=_anchor(key), at=AT)
    assert result.form == "cwt"
    assert result.nonce == b"\x01" * 32
    appraisal = result.submods["PSA"]
    assert appraisal.status == "affirming"
    assert appraisal.trust_vector == {"instance-identity": 2, "executables": 2}
    assert appraisal.policy_id == "policy:psa"


def test_cwt_expired_and_wrong_key(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(VerificationError) as info:
        ear.verify(_cwt(key, exp=ISSUED + 60), anchors=_anchor(key), at=AT)
    assert info.value.claim == "exp"
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SignatureError):
        ear.verify(_cwt(key), anchors=_anchor(other), at=AT)


def test_tier_of() -> None:
    cases = {0: "none", 1: "none", -1: "none", 2: "affirming", 31: "affirming", -32: "affirming"}
    cases |= {32: "warning", 95: "warning", -96: "warning", 96: "contraindicated"}
    cases |= {127: "contraindicated", -97: "contraindicated", -128: "contraindicated"}
    for value, tier in cases.items():
        assert ear.tier_of(value) == tier, value


def test_looks_like_corpus(corpus: Path) -> None:
    matches = [p.name for p in corpus.glob("*/*") if p.is_file() and ear.looks_like(p.read_bytes())]
    assert matches == ["veraison_ear_testJWT.jwt"]


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_fuzz_parse_binary(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        ear.parse(data)


@settings(max_examples=300)
@given(st.text(alphabet="eyJABCabc019-_.=", max_size=300))
def test_fuzz_parse_jwt_shape(text: str) -> None:
    with contextlib.suppress(MalformedEvidence):
        ear.parse(text.encode())


@settings(max_examples=200)
@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=5), c),
        max_leaves=10,
    )
)
def test_fuzz_claims(value: Any) -> None:
    payload = _b64(json.dumps({"eat_profile": "x", "iat": 1, "submods": value}).encode())
    header = _b64(b'{"alg":"ES256"}')
    with contextlib.suppress(MalformedEvidence):
        ear.parse(f"{header}.{payload}.AAAA".encode())
