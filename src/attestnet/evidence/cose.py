"""COSE_Sign1 and COSE_Mac0 (RFC 9052) parsing and verification, and CBOR claim helpers.

The PSA, CCA, CoRIM and EAR (CWT form) verifiers share this module. It builds the
Sig_structure and MAC_structure itself and checks them through
`attestnet.evidence.signatures.verify_signature`, so that the benchmark can record
every signature check. The algorithm must sit in the protected header: an algorithm
in the unprotected header is not covered by the signature and is rejected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from attestnet.errors import MalformedEvidence, SignatureError
from attestnet.evidence.cbor import decode_strict
from attestnet.evidence.model import TrustAnchors
from attestnet.evidence.signatures import Scheme, record_signatures, verify_signature
from attestnet.evidence.x509chain import check_chain_inputs, check_validity

__all__ = [
    "ALGORITHMS",
    "TAG_COSE_MAC0",
    "TAG_COSE_SIGN1",
    "TAG_CWT",
    "ClaimMap",
    "CoseAlgorithm",
    "CoseMessage",
    "cose_key_to_public_key",
    "decode_cbor",
    "jsonable",
    "key_fits",
    "parse_cose",
    "verify_mac0",
    "verify_sign1",
    "verify_sign1_with_anchors",
    "verify_with_algorithm",
    "verify_with_anchors",
]

TAG_CWT = 61
TAG_COSE_SIGN1 = 18
TAG_COSE_MAC0 = 17

# COSE header parameters (RFC 9052, section 3.1).
HEADER_ALG = 1
HEADER_CONTENT_TYPE = 3
HEADER_KID = 4


@dataclass(frozen=True)
class CoseAlgorithm:
    """A COSE algorithm identifier and how `verify_signature` checks it."""

    id: int
    name: str
    scheme: Scheme
    hash_algorithm: hashes.HashAlgorithm | None
    curve: type[ec.EllipticCurve] | None = None


ALGORITHMS: dict[int, CoseAlgorithm] = {
    alg.id: alg
    for alg in (
        CoseAlgorithm(-7, "ES256", "ecdsa-raw", hashes.SHA256(), ec.SECP256R1),
        CoseAlgorithm(-35, "ES384", "ecdsa-raw", hashes.SHA384(), ec.SECP384R1),
        CoseAlgorithm(-36, "ES512", "ecdsa-raw", hashes.SHA512(), ec.SECP521R1),
        CoseAlgorithm(-8, "EdDSA", "eddsa", None),
        CoseAlgorithm(-37, "PS256", "rsa-pss", hashes.SHA256()),
        CoseAlgorithm(-38, "PS384", "rsa-pss", hashes.SHA384()),
        CoseAlgorithm(-39, "PS512", "rsa-pss", hashes.SHA512()),
        CoseAlgorithm(-257, "RS256", "rsa-pkcs1", hashes.SHA256()),
        CoseAlgorithm(-258, "RS384", "rsa-pkcs1", hashes.SHA384()),
        CoseAlgorithm(-259, "RS512", "rsa-pkcs1", hashes.SHA512()),
        CoseAlgorithm(5, "HMAC 256/256", "hmac", hashes.SHA256()),
        CoseAlgorithm(6, "HMAC 384/384", "hmac", hashes.SHA384()),
        CoseAlgorithm(7, "HMAC 512/512", "hmac", hashes.SHA512()),
    )
}


def decode_cbor(data: bytes | bytearray, format: str, what: str = "CBOR item") -> Any:
    """Decode exactly one CBOR item; raise MalformedEvidence on bad or trailing bytes."""
    return decode_strict(data, format, what)


def jsonable(value: Any) -> Any:
    """Convert decoded CBOR to JSON-friendly values: bytes become hex, keys strings."""
    # Exact types first: decoded claims are nearly all of them, and the isinstance
    # checks against ABCs below cost more than the conversion itself.
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if kind is dict:
        return {str(k): jsonable(v) for k, v in value.items()}
    if kind is bytes:
        return value.hex()
    if kind is list:
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, cbor2.CBORTag):
        return {"tag": value.tag, "value": jsonable(value.value)}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class ClaimMap:
    """Typed access to a CBOR map of claims; wrong types raise MalformedEvidence."""

    def __init__(self, mapping: Any, format: str, where: str) -> None:
        if not isinstance(mapping, Mapping):
            raise MalformedEvidence(
                format, f"{where}: expected a map, got {type(mapping).__name__}"
            )
        self.data: Mapping[Any, Any] = mapping
        self.format = format
        self.where = where

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def _missing(self, key: Any, name: str) -> MalformedEvidence:
        return MalformedEvidence(self.format, f"{self.where}: missing claim {name} ({key})")

    def _wrong(self, key: Any, name: str, expected: str, value: Any) -> MalformedEvidence:
        return MalformedEvidence(
            self.format,
            f"{self.where}: claim {name} ({key}) must be {expected}, got {type(value).__name__}",
        )

    def get_bytes(self, key: Any, name: str, sizes: Iterable[int] = ()) -> bytes | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, bytes):
            raise self._wrong(key, name, "a byte string", value)
        allowed = tuple(sizes)
        if allowed and len(value) not in allowed:
            raise MalformedEvidence(
                self.format,
                f"{self.where}: claim {name} ({key}) has {len(value)} bytes, expected {allowed}",
            )
        return value

    def need_bytes(self, key: Any, name: str, sizes: Iterable[int] = ()) -> bytes:
        value = self.get_bytes(key, name, sizes)
        if value is None:
            raise self._missing(key, name)
        return value

    def get_text(self, key: Any, name: str) -> str | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, str):
            raise self._wrong(key, name, "a text string", value)
        return value

    def need_text(self, key: Any, name: str) -> str:
        value = self.get_text(key, name)
        if value is None:
            raise self._missing(key, name)
        return value

    def get_int(self, key: Any, name: str) -> int | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(key, name, "an integer", value)
        return value

    def need_int(self, key: Any, name: str) -> int:
        value = self.get_int(key, name)
        if value is None:
            raise self._missing(key, name)
        return value

    def get_list(self, key: Any, name: str) -> list[Any] | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, list):
            raise self._wrong(key, name, "an array", value)
        return value

    def get_map(self, key: Any, name: str) -> ClaimMap | None:
        if key not in self.data:
            return None
        return ClaimMap(self.data[key], self.format, f"{self.where}.{name}")


@dataclass(frozen=True)
class CoseMessage:
    """A parsed COSE_Sign1 or COSE_Mac0; `protected_bytes` are kept as received."""

    kind: Literal["Sign1", "Mac0"]
    protected_bytes: bytes
    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    payload: bytes
    signature: bytes
    tagged: bool
    algorithm: CoseAlgorithm

    @property
    def kid(self) -> bytes | None:
        kid = self.protected.get(HEADER_KID, self.unprotected.get(HEADER_KID))
        return kid if isinstance(kid, bytes) else None

    def to_be_signed(self, external_aad: bytes = b"") -> bytes:
        """Return the Sig_structure or MAC_structure (RFC 9052, sections 4.4 and 6.3)."""
        # Encoded by hand, as cbor2.dumps would encode the array [context, protected,
        # external_aad, payload]: it costs more than the MAC it feeds.
        context = _SIGNATURE1_CONTEXT if self.kind == "Sign1" else _MAC0_CONTEXT
        return b"".join(
            (
                b"\x84",
                context,
                _bstr_header(len(self.protected_bytes)),
                self.protected_bytes,
                _bstr_header(len(external_aad)),
                external_aad,
                _bstr_header(len(self.payload)),
                self.payload,
            )
        )


# The context strings of the Sig_structure and MAC_structure, as CBOR text strings.
_SIGNATURE1_CONTEXT = b"\x6aSignature1"
_MAC0_CONTEXT = b"\x64MAC0"


def _bstr_header(length: int) -> bytes:
    """Return the shortest CBOR head of a byte string of `length` bytes (major type 2)."""
    if length < 24:
        return bytes((0x40 | length,))
    if length < 0x100:
        return bytes((0x58, length))
    if length < 0x10000:
        return b"\x59" + length.to_bytes(2, "big")
    if length < 0x100000000:
        return b"\x5a" + length.to_bytes(4, "big")
    return b"\x5b" + length.to_bytes(8, "big")


def parse_cose(
    data: bytes | Any,
    format: str,
    *,
    kinds: tuple[str, ...] = ("Sign1", "Mac0"),
    what: str = "COSE message",
) -> CoseMessage:
    """Parse a tagged or untagged COSE_Sign1 / COSE_Mac0 from bytes or a decoded item.

    An untagged array is taken as COSE_Sign1 unless only Mac0 is accepted. Detached
    payloads are rejected, as is an algorithm this module cannot verify.
    """
    item = decode_cbor(data, format, what) if isinstance(data, bytes | bytearray) else data
    tagged = isinstance(item, cbor2.CBORTag)
    kind: Literal["Sign1", "Mac0"]
    if tagged:
        if item.tag == TAG_COSE_SIGN1:
            kind = "Sign1"
        elif item.tag == TAG_COSE_MAC0:
            kind = "Mac0"
        else:
            raise MalformedEvidence(
                format, f"{what}: CBOR tag {item.tag} is not COSE_Sign1 or Mac0"
            )
        item = item.value
    else:
        kind = "Mac0" if kinds == ("Mac0",) else "Sign1"
    if kind not in kinds:
        raise MalformedEvidence(format, f"{what}: COSE_{kind} is not accepted here")
    if not isinstance(item, list) or len(item) != 4:
        raise MalformedEvidence(format, f"{what}: COSE_{kind} must be an array of 4 items")
    protected_bytes, unprotected, payload, signature = item
    if not isinstance(protected_bytes, bytes):
        raise MalformedEvidence(format, f"{what}: protected header must be a byte string")
    protected: Mapping[Any, Any] = {}
    if protected_bytes:
        protected = decode_cbor(protected_bytes, format, f"{what} protected header")
        if not isinstance(protected, Mapping):
            raise MalformedEvidence(format, f"{what}: protected header must encode a map")
    if not isinstance(unprotected, Mapping):
        raise MalformedEvidence(format, f"{what}: unprotected header must be a map")
    if payload is None:
        raise MalformedEvidence(format, f"{what}: detached payloads are not supported")
    if not isinstance(payload, bytes):
        raise MalformedEvidence(format, f"{what}: payload must be a byte string")
    if not isinstance(signature, bytes):
        raise MalformedEvidence(format, f"{what}: signature or tag must be a byte string")

    alg_id = protected.get(HEADER_ALG)
    if alg_id is None:
        where = "only in the unprotected header" if HEADER_ALG in unprotected else "missing"
        raise MalformedEvidence(format, f"{what}: algorithm (header 1) is {where}")
    algorithm = ALGORITHMS.get(alg_id) if isinstance(alg_id, int) else None
    if algorithm is None:
        raise MalformedEvidence(format, f"{what}: unsupported COSE algorithm {alg_id!r}")
    if (kind == "Mac0") != (algorithm.scheme == "hmac"):
        raise MalformedEvidence(
            format, f"{what}: algorithm {algorithm.name} cannot be used with COSE_{kind}"
        )
    return CoseMessage(
        kind, protected_bytes, protected, unprotected, payload, signature, tagged, algorithm
    )


def key_fits(key: PublicKeyTypes, algorithm: CoseAlgorithm) -> bool:
    """Return True if `key` has the type (and for ECDSA the curve) that `algorithm` needs."""
    if algorithm.scheme == "ecdsa-raw":
        return isinstance(key, ec.EllipticCurvePublicKey) and (
            algorithm.curve is None or isinstance(key.curve, algorithm.curve)
        )
    if algorithm.scheme in ("rsa-pss", "rsa-pkcs1"):
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm.scheme == "eddsa":
        return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    return False


def verify_with_algorithm(
    algorithm: CoseAlgorithm,
    key: PublicKeyTypes,
    signature: bytes,
    data: bytes,
    *,
    what: str,
    check: str = "signature",
) -> None:
    """Verify a COSE or JWS signature (r||s for ECDSA) over `data` with one public key."""
    if not key_fits(key, algorithm):
        raise SignatureError(
            check,
            f"{what}: key does not fit the algorithm",
            expected=algorithm.name,
            actual=type(key).__name__,
        )
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            raise SignatureError(
                check,
                f"{what}: {algorithm.name} signature has the wrong length",
                expected=f"{2 * size} bytes",
                actual=f"{len(signature)} bytes",
            )
    verify_signature(
        key,
        signature,
        data,
        scheme=algorithm.scheme,
        hash_algorithm=algorithm.hash_algorithm,
        check=check,
        what=what,
    )


def verify_sign1(
    message: CoseMessage,
    key: PublicKeyTypes,
    *,
    what: str,
    check: str = "signature",
    external_aad: bytes = b"",
) -> None:
    """Verify a COSE_Sign1 with one public key; raise SignatureError naming `check`."""
    if message.kind != "Sign1":
        raise SignatureError(check, f"{what}: expected COSE_Sign1, got COSE_{message.kind}")
    verify_with_algorithm(
        message.algorithm,
        key,
        message.signature,
        message.to_be_signed(external_aad),
        what=what,
        check=check,
    )


def verify_mac0(
    message: CoseMessage,
    key: bytes,
    *,
    what: str,
    check: str = "mac",
    external_aad: bytes = b"",
) -> None:
    """Verify a COSE_Mac0 with a raw symmetric key; raise SignatureError naming `check`."""
    if message.kind != "Mac0":
        raise SignatureError(check, f"{what}: expected COSE_Mac0, got COSE_{message.kind}")
    verify_signature(
        key,
        message.signature,
        message.to_be_signed(external_aad),
        scheme="hmac",
        hash_algorithm=message.algorithm.hash_algorithm,
        check=check,
        what=what,
    )


def verify_with_anchors(
    algorithm: CoseAlgorithm,
    signature: bytes,
    data: bytes,
    anchors: TrustAnchors,
    at: datetime,
    *,
    what: str,
    check: str = "signature",
) -> PublicKeyTypes:
    """Verify with the first anchor key that fits `algorithm` and verifies; return that key.

    Certificate anchors contribute their public key and must be valid at `at`; a
    corrupt one raises ChainError.
    """
    check_chain_inputs(anchors, format="cose")
    candidates: list[tuple[PublicKeyTypes, x509.Certificate | None]] = [
        (key, None) for key in anchors.public_keys
    ]
    candidates += [(cert.public_key(), cert) for cert in anchors.certificates]
    fitting = [(k, c) for k, c in candidates if key_fits(k, algorithm)]
    if not fitting:
        raise SignatureError(
            check,
            f"{what}: no trust anchor key fits the algorithm",
            expected=algorithm.name,
            actual=f"{len(candidates)} anchor keys, none usable",
        )

    def attempt(key: PublicKeyTypes) -> None:
        verify_with_algorithm(algorithm, key, signature, data, what=what, check=check)

    if len(fitting) == 1:
        key, cert = fitting[0]
        attempt(key)
    else:
        # The trial checks against the wrong keys are recorded into a throwaway list,
        # so the benchmark replays only the one check that succeeds (made again below).
        found: tuple[PublicKeyTypes, x509.Certificate | None] | None = None
        with record_signatures():
            for key, cert in fitting:
                try:
                    attempt(key)
                except SignatureError:
                    continue
                found = (key, cert)
                break
        if found is None:
            raise SignatureError(
                check, f"{what}: signature does not verify with any of {len(fitting)} anchor keys"
            )
        key, cert = found
        attempt(key)
    if cert is not None:
        check_validity(cert, at, "trust anchor")
    return key


def verify_sign1_with_anchors(
    message: CoseMessage,
    anchors: TrustAnchors,
    at: datetime,
    *,
    what: str,
    check: str = "signature",
) -> PublicKeyTypes:
    """Verify a COSE_Sign1 with the anchor keys, as `verify_with_anchors` does."""
    if message.kind != "Sign1":
        raise SignatureError(check, f"{what}: expected COSE_Sign1, got COSE_{message.kind}")
    return verify_with_anchors(
        message.algorithm,
        message.signature,
        message.to_be_signed(),
        anchors,
        at,
        what=what,
        check=check,
    )


_COSE_CURVES: dict[int, ec.EllipticCurve] = {
    1: ec.SECP256R1(),
    2: ec.SECP384R1(),
    3: ec.SECP521R1(),
}


def cose_key_to_public_key(cose_key: Any, format: str, what: str = "COSE_Key") -> PublicKeyTypes:
    """Convert a COSE_Key map (EC2, OKP Ed25519 or RSA, RFC 9053) to a public key."""
    claims = ClaimMap(cose_key, format, what)
    kty = claims.need_int(1, "kty")
    try:
        if kty == 2:
            crv = claims.need_int(-1, "crv")
            curve = _COSE_CURVES.get(crv)
            if curve is None:
                raise MalformedEvidence(format, f"{what}: unsupported EC2 curve {crv}")
            size = (curve.key_size + 7) // 8
            x = claims.need_bytes(-2, "x", (size,))
            y = claims.need_bytes(-3, "y", (size,))
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + x + y)
        if kty == 1:
            crv = claims.need_int(-1, "crv")
            if crv != 6:
                raise MalformedEvidence(format, f"{what}: unsupported OKP curve {crv}")
            return ed25519.Ed25519PublicKey.from_public_bytes(claims.need_bytes(-2, "x", (32,)))
        if kty == 3:
            n = int.from_bytes(claims.need_bytes(-1, "n"), "big")
            e = int.from_bytes(claims.need_bytes(-2, "e"), "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise MalformedEvidence(format, f"{what}: invalid public key: {exc}") from None
    raise MalformedEvidence(format, f"{what}: unsupported key type {kty}")
