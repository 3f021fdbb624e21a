"""Arm CCA attestation tokens: a platform token and a realm token bound together.

The collection is CBOR tag 907 (CMW collection, each entry `[content-format,
bstr]`) or the legacy tag 399 (each entry a bare bstr); key 44234 contains the platform
COSE_Sign1, signed by the CCA Platform Attestation Key (CPAK, a trust anchor), and
key 44241 the realm COSE_Sign1, signed by the Realm Attestation Key (RAK) carried in
realm claim 44237. The RAK is bound to the platform: the platform challenge equals
the hash of the RAK claim bytes, with the hash algorithm named in realm claim 44240.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from attestnet.errors import MalformedEvidence, VerificationError
from attestnet.evidence.cose import (
    ClaimMap,
    CoseMessage,
    cose_key_to_public_key,
    decode_cbor,
    jsonable,
    parse_cose,
    verify_sign1,
    verify_sign1_with_anchors,
)
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.psa import (
    SoftwareComponent,
    lifecycle_debug,
    parse_software_components,
    software_measurements,
)

__all__ = [
    "FORMAT",
    "CcaPlatformClaims",
    "CcaRealmClaims",
    "CcaToken",
    "looks_like",
    "parse",
    "verify",
]

FORMAT = "cca"

TAG_CCA_COLLECTION = 907
TAG_CCA_LEGACY = 399
KEY_PLATFORM_TOKEN = 44234
KEY_REALM_TOKEN = 44241

# Platform claim keys (draft-ffm-rats-cca-token; the PSA keys plus config and hash alg).
_P_NONCE = 10
_P_INSTANCE_ID = 256
_P_PROFILE = 265
_P_LIFECYCLE = 2395
_P_IMPLEMENTATION_ID = 2396
_P_SW_COMPONENTS = 2399
_P_VERIFICATION_SERVICE = 2400
_P_CONFIG = 2401
_P_HASH_ALGORITHM = 2402

# Realm claim keys.
_R_CHALLENGE = 10
_R_PROFILE = 265
_R_PERSONALIZATION = 44235
_R_HASH_ALGORITHM = 44236
_R_PUBLIC_KEY = 44237
_R_RIM = 44238
_R_REMS = 44239
_R_PUBLIC_KEY_HASH_ALGORITHM = 44240

# IANA "Named Information Hash Algorithm" text names that the RAK binding uses.
_HASHES = {"sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512"}


@dataclass(frozen=True)
class CcaPlatformClaims:
    profile: str | None
    challenge: bytes
    instance_id: bytes
    implementation_id: bytes
    security_lifecycle: int
    software_components: tuple[SoftwareComponent, ...]
    verification_service: str | None
    config: bytes | None
    hash_algorithm: str | None
    raw: dict[Any, Any]


@dataclass(frozen=True)
class CcaRealmClaims:
    profile: str | None
    challenge: bytes
    personalization_value: bytes
    hash_algorithm: str
    public_key_bytes: bytes
    public_key: PublicKeyTypes
    public_key_hash_algorithm: str
    initial_measurement: bytes
    extensible_measurements: tuple[bytes, ...]
    raw: dict[Any, Any]


@dataclass(frozen=True)
class CcaToken:
    """A parsed CCA token; `legacy` is True for the tag 399 encoding."""

    legacy: bool
    platform_message: CoseMessage
    platform: CcaPlatformClaims
    realm_message: CoseMessage
    realm: CcaRealmClaims


def _unwrap_entry(collection: ClaimMap, key: int, name: str) -> bytes:
    if key not in collection:
        raise MalformedEvidence(FORMAT, f"collection: missing {name} ({key})")
    entry = collection.data[key]
    # A CMW record is [content-format, value]; the legacy form is the bare value.
    if isinstance(entry, list):
        if len(entry) != 2 or not isinstance(entry[0], int | str):
            raise MalformedEvidence(FORMAT, f"collection: {name} must be [type, bstr]")
        entry = entry[1]
    if not isinstance(entry, bytes):
        raise MalformedEvidence(FORMAT, f"collection: {name} must be a byte string")
    return entry


def _parse_platform(payload: Any) -> CcaPlatformClaims:
    claims = ClaimMap(payload, FORMAT, "platform claims")
    components = parse_software_components(claims, _P_SW_COMPONENTS, FORMAT)
    if not components:
        raise MalformedEvidence(FORMAT, "platform claims: missing software components (2399)")
    return CcaPlatformClaims(
        profile=claims.get_text(_P_PROFILE, "profile"),
        challenge=claims.need_bytes(_P_NONCE, "challenge", (32, 48, 64)),
        instance_id=claims.need_bytes(_P_INSTANCE_ID, "instance id", (33,)),
        implementation_id=claims.need_bytes(_P_IMPLEMENTATION_ID, "implementation id"),
        security_lifecycle=claims.need_int(_P_LIFECYCLE, "security lifecycle"),
        software_components=components,
        verification_service=claims.get_text(_P_VERIFICATION_SERVICE, "verification service"),
        config=claims.get_bytes(_P_CONFIG, "config"),
        hash_algorithm=claims.get_text(_P_HASH_ALGORITHM, "hash algorithm"),
        raw=dict(claims.data),
    )


def _parse_rak(raw: bytes) -> PublicKeyTypes:
    # Realm profile 1.0 and later carry a COSE_Key; earlier RMMs a raw SEC1 P-384 point.
    if raw[:1] == b"\x04" and len(raw) == 97:
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), raw)
        except ValueError as exc:
            raise MalformedEvidence(FORMAT, f"realm public key: invalid point: {exc}") from None
    cose_key = decode_cbor(raw, FORMAT, "realm public key")
    return cose_key_to_public_key(cose_key, FORMAT, "realm public key")


def _parse_realm(payload: Any) -> CcaRealmClaims:
    claims = ClaimMap(payload, FORMAT, "realm claims")
    rems = claims.get_list(_R_REMS, "extensible measurements")
    if rems is None or len(rems) != 4 or not all(isinstance(r, bytes) for r in rems):
        raise MalformedEvidence(FORMAT, "realm claims: REMs (44239) must be 4 byte strings")
    key_bytes = claims.need_bytes(_R_PUBLIC_KEY, "public key")
    return CcaRealmClaims(
        profile=claims.get_text(_R_PROFILE, "profile"),
        challenge=claims.need_bytes(_R_CHALLENGE, "challenge", (64,)),
        personalization_value=claims.need_bytes(_R_PERSONALIZATION, "personalization value", (64,)),
        hash_algorithm=claims.need_text(_R_HASH_ALGORITHM, "hash algorithm"),
        public_key_bytes=key_bytes,
        public_key=_parse_rak(key_bytes),
        public_key_hash_algorithm=claims.need_text(
            _R_PUBLIC_KEY_HASH_ALGORITHM, "public key hash algorithm"
        ),
        initial_measurement=claims.need_bytes(_R_RIM, "initial measurement", (32, 48, 64)),
        extensible_measurements=tuple(rems),
        raw=dict(claims.data),
    )


def parse(data: bytes) -> CcaToken:
    """Parse a CCA token without checking signatures or the RAK binding."""
    item = decode_cbor(data, FORMAT, "CCA token")
    if not isinstance(item, cbor2.CBORTag) or item.tag not in (
        TAG_CCA_COLLECTION,
        TAG_CCA_LEGACY,
    ):
        raise MalformedEvidence(FORMAT, "CCA token must be CBOR tag 907 or 399")
    collection = ClaimMap(item.value, FORMAT, "collection")
    platform_bytes = _unwrap_entry(collection, KEY_PLATFORM_TOKEN, "platform token")
    realm_bytes = _unwrap_entry(collection, KEY_REALM_TOKEN, "realm token")

    platform_message = parse_cose(platform_bytes, FORMAT, kinds=("Sign1",), what="platform token")
    realm_message = parse_cose(realm_bytes, FORMAT, kinds=("Sign1",), what="realm token")
    platform = _parse_platform(decode_cbor(platform_message.payload, FORMAT, "platform claims"))
    realm = _parse_realm(decode_cbor(realm_message.payload, FORMAT, "realm claims"))
    return CcaToken(item.tag == TAG_CCA_LEGACY, platform_message, platform, realm_message, realm)


def looks_like(data: bytes) -> bool:
    """Return True for CBOR tag 907 or 399 (the CCA token collections)."""
    # 0xD9 is a tag with a 2-byte number: 0x038B = 907, 0x018F = 399.
    return data[:3] in (b"\xd9\x03\x8b", b"\xd9\x01\x8f")


def _check_binding(token: CcaToken) -> str:
    realm = token.realm
    algorithm = _HASHES.get(realm.public_key_hash_algorithm)
    if algorithm is None:
        raise VerificationError(
            "rak binding",
            "unsupported RAK hash algorithm",
            claim="cca-realm-public-key-hash-algo-id",
            expected="/".join(_HASHES),
            actual=realm.public_key_hash_algorithm,
        )
    digest = hashlib.new(algorithm, realm.public_key_bytes).digest()
    if not hmac.compare_digest(digest, token.platform.challenge):
        raise VerificationError(
            "rak binding",
            "platform challenge is not the hash of the realm public key",
            claim="cca-platform-challenge",
            expected=digest,
            actual=token.platform.challenge,
        )
    return f"platform challenge = {realm.public_key_hash_algorithm}(RAK claim)"


def _claims_json(token: CcaToken) -> dict[str, Any]:
    platform, realm = token.platform, token.realm
    return {
        "legacy_encoding": token.legacy,
        "platform": {
            "profile": platform.profile,
            "challenge": platform.challenge.hex(),
            "instance_id": platform.instance_id.hex(),
            "implementation_id": platform.implementation_id.hex(),
            "security_lifecycle": platform.security_lifecycle,
            "software_components": [
                {
                    "measurement_type": c.measurement_type,
                    "measurement_value": c.measurement_value.hex(),
                    "signer_id": jsonable(c.signer_id),
                    "version": c.version,
                    "description": c.description,
                }
                for c in platform.software_components
            ],
            "verification_service": platform.verification_service,
            "config": jsonable(platform.config),
            "hash_algorithm": platform.hash_algorithm,
        },
        "realm": {
            "profile": realm.profile,
            "challenge": realm.challenge.hex(),
            "personalization_value": realm.personalization_value.hex(),
            "hash_algorithm": realm.hash_algorithm,
            "public_key": realm.public_key_bytes.hex(),
            "public_key_hash_algorithm": realm.public_key_hash_algorithm,
            "initial_measurement": realm.initial_measurement.hex(),
            "extensible_measurements": [m.hex() for m in realm.extensible_measurements],
        },
    }


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify both signatures of a CCA token and the RAK binding.

    `anchors` contains the CPAK. `collateral` is unused: a CCA token carries no
    certificates.
    """
    token = parse(data)
    evidence = VerifiedEvidence(format=FORMAT, verified_at=at, claims=_claims_json(token))

    evidence.signer = verify_sign1_with_anchors(
        token.platform_message, anchors, at, what="CCA platform token", check="platform signature"
    )
    evidence.passed("platform signature", f"{token.platform_message.algorithm.name} by the CPAK")

    verify_sign1(
        token.realm_message, token.realm.public_key, what="CCA realm token", check="realm signature"
    )
    evidence.passed("realm signature", f"{token.realm_message.algorithm.name} by the RAK")
    evidence.passed("rak binding", _check_binding(token))

    platform, realm = token.platform, token.realm
    measurements = software_measurements(platform.software_components, "cca/platform/sw")
    if platform.config is not None:
        measurements["cca/platform/config"] = platform.config
    measurements["cca/realm/rim"] = realm.initial_measurement
    for index, rem in enumerate(realm.extensible_measurements):
        measurements[f"cca/realm/rem/{index}"] = rem
    measurements["cca/realm/personalization"] = realm.personalization_value
    evidence.measurements = measurements
    evidence.nonce = realm.challenge
    evidence.instance_id = platform.instance_id
    evidence.debug = lifecycle_debug(platform.security_lifecycle)
    return evidence
