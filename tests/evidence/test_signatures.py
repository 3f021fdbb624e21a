"""The shared signature entry point: schemes, key checks and recording."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from attestnet.errors import SignatureError
from attestnet.evidence.signatures import record_signatures, replay, verify_signature

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
DATA = b"signed bytes"


def pss_signature(salt_length: int) -> bytes:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)
    return RSA_KEY.sign(DATA, pss, hashes.SHA256())


def test_pss_any_salt_accepted_by_rsa_pss() -> None:
    for salt in (0, 32, 64):
        verify_signature(
            RSA_KEY.public_key(),
            pss_signature(salt),
            DATA,
            scheme="rsa-pss",
            hash_algorithm=hashes.SHA256(),
        )


def test_pss_digest_salt_enforced() -> None:
    verify_signature(
        RSA_KEY.public_key(),
        pss_signature(32),
        DATA,
        scheme="rsa-pss-digest-salt",
        hash_algorithm=hashes.SHA256(),
    )
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signature(
            RSA_KEY.public_key(),
            pss_signature(64),
            DATA,
            scheme="rsa-pss-digest-salt",
            hash_algorithm=hashes.SHA256(),
        )


def test_key_type_must_match_scheme() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(SignatureError, match="key type does not match"):
        verify_signature(
            ec_key, pss_signature(32), DATA, scheme="rsa-pss", hash_algorithm=hashes.SHA256()
        )


def test_only_passed_checks_are_recorded() -> None:
    with record_signatures() as checks:
        verify_signature(
            RSA_KEY.public_key(),
            pss_signature(32),
            DATA,
            scheme="rsa-pss",
            hash_algorithm=hashes.SHA256(),
        )
        with pytest.raises(SignatureError):
            verify_signature(
                RSA_KEY.public_key(),
                b"\x00" * 256,
                DATA,
                scheme="rsa-pss",
                hash_algorithm=hashes.SHA256(),
            )
    assert len(checks) == 1
    replay(checks)


def test_hmac_scheme() -> None:
    import hashlib
    import hmac

    key = b"k" * 32
    tag = hmac.new(key, DATA, hashlib.sha256).digest()
    verify_signature(key, tag, DATA, scheme="hmac", hash_algorithm=hashes.SHA256())
    with pytest.raises(SignatureError):
        verify_signature(
            key, tag[:-1] + b"\x00", DATA, scheme="hmac", hash_algorithm=hashes.SHA256()
        )
