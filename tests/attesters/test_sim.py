from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.attesters.sim import SimAttester, load_or_create_platform_key, measure_code
from attestnet.errors import MalformedEvidence, SignatureError
from attestnet.evidence import cmw
from attestnet.evidence import sim as sim_evidence
from attestnet.evidence.model import TrustAnchors

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def make_attester(tmp_path: Path) -> SimAttester:
    return SimAttester.from_files(tmp_path / "platform.pem", config=b"mode = 'demo'\n")


def test_evidence_verifies_with_platform_key(tmp_path: Path) -> None:
    attester = make_attester(tmp_path)
    record = cmw.decode(attester.evidence(b"\x07" * 32))
    assert isinstance(record, cmw.CmwRecord)
    assert record.type == sim_evidence.MEDIA_TYPE

    anchors = TrustAnchors(public_keys=(attester.platform_key.public_key(),))
    verified = sim_evidence.verify(record.value, anchors=anchors, at=NOW)
    assert verified.nonce == b"\x07" * 32
    assert verified.simulated is True
    assert verified.measurements == attester.reference_values()
    assert verified.instance_id == attester.ueid


def test_platform_key_persists_with_private_mode(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "platform.pem"
    first = load_or_create_platform_key(path)
    second = load_or_create_platform_key(path)
    assert first.private_numbers() == second.private_numbers()
    assert path.stat().st_mode & 0o777 == 0o600


def test_changed_code_changes_measurement(tmp_path: Path) -> None:
    code = tmp_path / "agent"
    code.mkdir()
    (code / "main.py").write_text("print('agent')\n")
    before = measure_code(code)
    (code / "main.py").write_text("print('agent')  # changed\n")
    assert measure_code(code) != before


def test_other_platform_key_rejected(tmp_path: Path) -> None:
    attester = make_attester(tmp_path)
    record = cmw.decode(attester.evidence(b"\x01" * 32))
    assert isinstance(record, cmw.CmwRecord)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(SignatureError, match="no trust anchor"):
        sim_evidence.verify(record.value, anchors=TrustAnchors(public_keys=(other,)), at=NOW)


def test_tampered_token_rejected(tmp_path: Path) -> None:
    attester = make_attester(tmp_path)
    record = cmw.decode(attester.evidence(b"\x01" * 32))
    assert isinstance(record, cmw.CmwRecord)
    anchors = TrustAnchors(public_keys=(attester.platform_key.public_key(),))
    token = bytearray(record.value)
    token[-1] ^= 0x01  # last byte of the signature
    with pytest.raises(SignatureError, match="signature"):
        sim_evidence.verify(bytes(token), anchors=anchors, at=NOW)


def test_truncated_token_is_malformed(tmp_path: Path) -> None:
    attester = make_attester(tmp_path)
    record = cmw.decode(attester.evidence(b"\x01" * 32))
    assert isinstance(record, cmw.CmwRecord)
    anchors = TrustAnchors(public_keys=(attester.platform_key.public_key(),))
    for length in range(0, len(record.value), 7):
        with pytest.raises(MalformedEvidence):
            sim_evidence.verify(record.value[:length], anchors=anchors, at=NOW)


def test_iat_comes_from_clock(tmp_path: Path) -> None:
    key = load_or_create_platform_key(tmp_path / "p.pem")
    issued = NOW - timedelta(minutes=5)
    attester = SimAttester(key, b"c" * 32, b"f" * 32, clock=issued.timestamp)
    record = cmw.decode(attester.evidence(b"\x02" * 32))
    assert isinstance(record, cmw.CmwRecord)
    anchors = TrustAnchors(public_keys=(key.public_key(),))
    verified = sim_evidence.verify(record.value, anchors=anchors, at=NOW)
    assert verified.claims["iat"] == issued.isoformat()
