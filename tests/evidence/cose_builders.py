"""Build COSE_Sign1 / COSE_Mac0 messages with keys generated at test time."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_HASHES = {-7: hashes.SHA256(), -35: hashes.SHA384(), -36: hashes.SHA512()}


def sign1(
    payload: bytes,
    key: ec.EllipticCurvePrivateKey,
    alg: int = -7,
    protected: dict[Any, Any] | None = None,
    tag: bool = True,
) -> bytes:
    """Return a COSE_Sign1 over `payload` signed with an ECDSA key (r||s signature)."""
    header = cbor2.dumps({1: alg, **(protected or {})})
    to_sign = cbor2.dumps(["Signature1", header, b"", payload])
    der = key.sign(to_sign, ec.ECDSA(_HASHES[alg]))
    r, s = decode_dss_signature(der)
    size = (key.curve.key_size + 7) // 8
    signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    message = [header, {}, payload, signature]
    return cbor2.dumps(cbor2.CBORTag(18, message) if tag else message)


def mac0(payload: bytes, key: bytes) -> bytes:
    """Return a tagged COSE_Mac0 over `payload` with HMAC 256/256."""
    header = cbor2.dumps({1: 5})
    to_mac = cbor2.dumps(["MAC0", header, b"", payload])
    tag = hmac.new(key, to_mac, hashlib.sha256).digest()
    return cbor2.dumps(cbor2.CBORTag(17, [header, {}, payload, tag]))


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]
