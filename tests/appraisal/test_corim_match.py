"""PSA appraisal against the Veraison end-to-end CoRIM."""

from __future__ import annotations

from pathlib import Path

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attestnet.appraisal.corim_match import appraise_psa, status_of
from attestnet.evidence import corim
from tests.conftest import utc

AT = utc("2025-06-01T00:00:00Z")

AFFIRMING_VECTOR = {
    "instance-identity": 2,
    "configuration": 0,
    "executables": 2,
    "file-system": 0,
    "hardware": 2,
    "runtime-opaque": 2,
    "storage-opaque": 2,
    "sourced-data": 0,
}


def _evidence(corpus: Path) -> bytes:
    return (corpus / "psa/veraison_e2e_psa-evidence.cbor").read_bytes()


def _corim_bytes(corpus: Path) -> bytes:
    return (corpus / "corim/veraison_e2e_psa-endorsements.corim.cbor").read_bytes()


def _edit_comids(data: bytes, edit: object) -> corim.Corim:
    """Decode the CoRIM, let `edit(comid_map)` change each CoMID, and parse the result."""
    item = cbor2.loads(data)
    for tag in item.value[1]:
        comid = cbor2.loads(tag.value)
        edit(comid)  # type: ignore[operator]
        tag.value = cbor2.dumps(comid)
    return corim.parse(cbor2.dumps(item))


def test_e2e_affirming(corpus: Path) -> None:
    result = appraise_psa(_evidence(corpus), corim.parse(_corim_bytes(corpus)), at=AT)
    assert result.status == "affirming"
    assert result.trust_vector == AFFIRMING_VECTOR
    assert [c.name for c in result.components] == ["BL", "PRoT", "ARoT"]
    assert all(c.matched for c in result.components)
    assert result.evidence is not None
    assert result.evidence.nonce is not None
    assert result.evidence.nonce.hex().startswith("414a7c17")
    assert result.attestation_key is not None


def test_mismatching_measurement(corpus: Path) -> None:
    def change_prot_digest(comid: dict) -> None:  # type: ignore[type-arg]
        for triple in comid[4].get(0, []):
            for measurement in triple[1]:
                if measurement[0].value[1] == "PRoT":
                    measurement[1][2][0][1] = b"\x00" * 32

    edited = _edit_comids(_corim_bytes(corpus), change_prot_digest)
    result = appraise_psa(_evidence(corpus), edited, at=AT)
    assert result.status == "warning"
    assert result.trust_vector["executables"] == 33
    assert result.trust_vector["instance-identity"] == 2
    failed = [c for c in result.components if not c.matched]
    assert [c.name for c in failed] == ["PRoT"]
    assert "PRoT" in result.detail
    assert failed[0].expected == (b"\x00" * 32,)


def test_component_without_reference(corpus: Path) -> None:
    def drop_arot(comid: dict) -> None:  # type: ignore[type-arg]
        for triple in comid[4].get(0, []):
            triple[1] = [m for m in triple[1] if m[0].value[1] != "ARoT"]

    result = appraise_psa(_evidence(corpus), _edit_comids(_corim_bytes(corpus), drop_arot), at=AT)
    assert result.status != "affirming"
    assert "ARoT" in result.detail


def test_wrong_iak(corpus: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()

    def replace_key(comid: dict) -> None:  # type: ignore[type-arg]
        for triple in comid[4].get(3, []):
            triple[1] = [cbor2.CBORTag(554, pem)]

    result = appraise_psa(_evidence(corpus), _edit_comids(_corim_bytes(corpus), replace_key), at=AT)
    assert result.status == "contraindicated"
    assert result.trust_vector["instance-identity"] == 99
    assert result.evidence is None


def test_unknown_instance(corpus: Path) -> None:
    def replace_instance(comid: dict) -> None:  # type: ignore[type-arg]
        for triple in comid[4].get(3, []):
            triple[0][1] = cbor2.CBORTag(550, b"\x01" + b"\xff" * 32)

    edited = _edit_comids(_corim_bytes(corpus), replace_instance)
    result = appraise_psa(_evidence(corpus), edited, at=AT)
    assert result.status == "contraindicated"
    assert result.trust_vector["instance-identity"] == 97
    assert "instance id" in result.detail


def test_status_of() -> None:
    assert status_of({"a": 0, "b": 2}) == "affirming"
    assert status_of({"a": 2, "b": 33}) == "warning"
    assert status_of({"a": 97, "b": 33}) == "contraindicated"
    assert status_of({"a": 0, "b": 1}) == "none"
