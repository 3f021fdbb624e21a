"""PSA attestation tokens (RFC 9783), including the legacy PSA profile 1 claim keys.

A token is a COSE_Sign1 signed by the Initial Attestation Key (IAK, ES256/384/512)
or a COSE_Mac0 under a symmetric IAK (HMAC). Profile 2.0.0 and RFC 9783 tokens use
claim keys 2394..2400 and the EAT keys 10 (nonce), 256 (UEID), 265 (profile) and
268 (boot seed); PSA_IOT_PROFILE_1 tokens of older TF-M releases use -75000..-75010.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cbor2

from attestnet.errors import ConfigError, MalformedEvidence, VerificationError
from attestnet.evidence.cbor import loads_untrusted
from attestnet.evidence.cose import (
    TAG_COSE_MAC0,
    TAG_COSE_SIGN1,
    ClaimMap,
    CoseMessage,
    decode_cbor,
    jsonable,
    parse_cose,
    verify_mac0,
    verify_sign1_with_anchors,
)
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence

__all__ = [
    "FORMAT",
    "PsaClaims",
    "PsaToken",
    "SoftwareComponent",
    "lifecycle_debug",
    "load_hmac_key",
    "looks_like",
    "parse",
    "parse_claims",
    "parse_software_components",
    "software_measurements",
    "verify",
]

FORMAT = "psa"


@dataclass(frozen=True)
class _ClaimKeys:
    """The claim keys of one PSA profile family."""

    profile: int
    client_id: int
    lifecycle: int
    implementation_id: int
    boot_seed: tuple[int, ...]
    certification_reference: int
    software_components: int
    no_software_measurements: int
    nonce: int
    instance_id: int
    verification_service: int


# RFC 9783 and "http://arm.com/psa/2.0.0": boot seed moved from 2397 to EAT 268.
_KEYS = _ClaimKeys(
    profile=265,
    client_id=2394,
    lifecycle=2395,
    implementation_id=2396,
    boot_seed=(268, 2397),
    certification_reference=2398,
    software_components=2399,
    no_software_measurements=-1,
    nonce=10,
    instance_id=256,
    verification_service=2400,
)

# PSA_IOT_PROFILE_1 (Arm PSA Attestation API 1.0, TF-M before 1.4).
_LEGACY_KEYS = _ClaimKeys(
    profile=-75000,
    client_id=-75001,
    lifecycle=-75002,
    implementation_id=-75003,
    boot_seed=(-75004,),
    certification_reference=-75005,
    software_components=-75006,
    no_software_measurements=-75007,
    nonce=-75008,
    instance_id=-75009,
    verification_service=-75010,
)

# Software component map keys, the same in both families.
_SW_TYPE = 1
_SW_VALUE = 2
_SW_VERSION = 4
_SW_SIGNER_ID = 5
_SW_DESCRIPTION = 6

# Security lifecycle major states (PSA Security Model, upper byte of the claim).
_LIFECYCLE_SECURED = 0x3000
_LIFECYCLE_DEBUG = (0x4000, 0x5000)  # non-PSA-RoT debug, recoverable PSA-RoT debug


@dataclass(frozen=True)
class SoftwareComponent:
    """One measured software component of a PSA or CCA platform."""

    measurement_type: str | None
    measurement_value: bytes
    signer_id: bytes | None
    version: str | None
    description: str | None


@dataclass(frozen=True)
class PsaClaims:
    """The decoded PSA claims; `raw` keeps the claim map as decoded."""

    legacy_profile: bool
    profile: str | None
    client_id: int | None
    security_lifecycle: int
    implementation_id: bytes
    boot_seed: bytes | None
    certification_reference: str | None
    software_components: tuple[SoftwareComponent, ...]
    nonce: bytes
    instance_id: bytes
    verification_service: str | None
    raw: dict[Any, Any]


@dataclass(frozen=True)
class PsaToken:
    """A parsed PSA token: its COSE envelope and claims."""

    message: CoseMessage
    claims: PsaClaims


def _parse_component(item: Any, index: int, format: str, where: str) -> SoftwareComponent:
    component = ClaimMap(item, format, f"{where}[{index}]")
    return SoftwareComponent(
        measurement_type=component.get_text(_SW_TYPE, "measurement type"),
        measurement_value=component.need_bytes(_SW_VALUE, "measurement value"),
        signer_id=component.get_bytes(_SW_SIGNER_ID, "signer id"),
        version=component.get_text(_SW_VERSION, "version"),
        description=component.get_text(_SW_DESCRIPTION, "measurement description"),
    )


def parse_software_components(
    claims: ClaimMap, key: int, format: str
) -> tuple[SoftwareComponent, ...]:
    items = claims.get_list(key, "software components")
    if items is None:
        return ()
    if not items:
        raise MalformedEvidence(format, f"{claims.where}: software components list is empty")
    where = f"{claims.where}.software-components"
    return tuple(_parse_component(item, i, format, where) for i, item in enumerate(items))


def parse_claims(payload: Any, format: str = FORMAT, where: str = "PSA claims") -> PsaClaims:
    """Decode a PSA claim map (RFC 9783 or legacy profile 1 keys)."""
    claims = ClaimMap(payload, format, where)
    legacy = _LEGACY_KEYS.implementation_id in claims or _LEGACY_KEYS.nonce in claims
    keys = _LEGACY_KEYS if legacy else _KEYS

    boot_seed = None
    for key in keys.boot_seed:
        boot_seed = boot_seed or claims.get_bytes(key, "boot seed")

    components = parse_software_components(claims, keys.software_components, format)
    if not components and keys.no_software_measurements not in claims:
        raise MalformedEvidence(
            format, f"{where}: software components missing and no-sw-measurements not set"
        )

    return PsaClaims(
        legacy_profile=legacy,
        profile=claims.get_text(keys.profile, "profile"),
        client_id=claims.get_int(keys.client_id, "client id"),
        security_lifecycle=claims.need_int(keys.lifecycle, "security lifecycle"),
        implementation_id=claims.need_bytes(keys.implementation_id, "implementation id"),
        boot_seed=boot_seed,
        certification_reference=claims.get_text(
            keys.certification_reference, "certification reference"
        ),
        software_components=components,
        nonce=claims.need_bytes(keys.nonce, "nonce", (32, 48, 64)),
        instance_id=claims.need_bytes(keys.instance_id, "instance id", (33,)),
        verification_service=claims.get_text(keys.verification_service, "verification service"),
        raw=dict(claims.data),
    )


def parse(data: bytes) -> PsaToken:
    """Parse a PSA token without checking its signature or MAC."""
    message = parse_cose(data, FORMAT, what="PSA token")
    payload = decode_cbor(message.payload, FORMAT, "PSA claims")
    return PsaToken(message, parse_claims(payload))


def looks_like(data: bytes) -> bool:
    """Return True for a COSE_Sign1/Mac0 whose payload contains PSA claim keys."""
    if len(data) < 8 or data[0] not in (0xC0 | TAG_COSE_SIGN1, 0xC0 | TAG_COSE_MAC0, 0x84):
        return False
    try:
        item, _ = loads_untrusted(data)
        value = item.value if isinstance(item, cbor2.CBORTag) else item
        payload, _ = loads_untrusted(value[2])
    except Exception:  # a sniff never raises; any decoding failure means "not PSA"
        return False
    if not isinstance(payload, dict):
        return False
    profile = payload.get(265)
    if isinstance(profile, str) and "cca" in profile:
        return False
    return _KEYS.implementation_id in payload or _LEGACY_KEYS.implementation_id in payload


def lifecycle_debug(lifecycle: int) -> bool | None:
    """Map a security lifecycle to debug: True in a debug state, False when secured."""
    major = lifecycle & 0xFF00
    if major == _LIFECYCLE_SECURED:
        return False
    if major in _LIFECYCLE_DEBUG:
        return True
    return None


def software_measurements(
    components: tuple[SoftwareComponent, ...], prefix: str
) -> dict[str, bytes]:
    """Name each component `<prefix>/<measurement type>`, or its index if untyped or repeated."""
    measurements: dict[str, bytes] = {}
    for index, component in enumerate(components):
        name = f"{prefix}/{component.measurement_type or index}"
        if name in measurements:
            name = f"{prefix}/{index}"
        measurements[name] = component.measurement_value
    return measurements


def claims_json(claims: PsaClaims) -> dict[str, Any]:
    """Return the claims as JSON-friendly values (hex for bytes), for printing."""
    return {
        "profile": claims.profile,
        "legacy_profile": claims.legacy_profile,
        "client_id": claims.client_id,
        "security_lifecycle": claims.security_lifecycle,
        "implementation_id": claims.implementation_id.hex(),
        "boot_seed": jsonable(claims.boot_seed),
        "certification_reference": claims.certification_reference,
        "software_components": [
            {
                "measurement_type": c.measurement_type,
                "measurement_value": c.measurement_value.hex(),
                "signer_id": jsonable(c.signer_id),
                "version": c.version,
                "description": c.description,
            }
            for c in claims.software_components
        ],
        "nonce": claims.nonce.hex(),
        "instance_id": claims.instance_id.hex(),
        "verification_service": claims.verification_service,
    }


def load_hmac_key(path: str | Path) -> bytes:
    """Read a raw symmetric IAK file (32, 48 or 64 bytes), as TF-M tools store it."""
    path = Path(path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read HMAC key {path}: {exc.strerror}") from None
    if len(key) not in (32, 48, 64):
        raise ConfigError(f"HMAC key {path} has {len(key)} bytes; expected 32, 48 or 64 raw bytes")
    return key


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
    hmac_key: bytes | None = None,
) -> VerifiedEvidence:
    """Verify a PSA token: COSE_Sign1 against the anchor IAKs, COSE_Mac0 with `hmac_key`.

    `collateral` is unused because a PSA token carries no certificates.
    """
    token = parse(data)
    evidence = VerifiedEvidence(format=FORMAT, verified_at=at, claims=claims_json(token.claims))
    message = token.message
    if message.kind == "Mac0":
        if hmac_key is None and len(anchors.symmetric_keys) == 1:
            hmac_key = anchors.symmetric_keys[0]
        if hmac_key is None:
            raise VerificationError(
                "mac", "COSE_Mac0 PSA token needs a symmetric IAK; pass hmac_key"
            )
        verify_mac0(message, hmac_key, what="PSA token")
        evidence.passed(
            "mac", f"{message.algorithm.name} over MAC0 structure with the symmetric IAK"
        )
    else:
        evidence.signer = verify_sign1_with_anchors(message, anchors, at, what="PSA token")
        evidence.passed("signature", f"{message.algorithm.name} over Signature1 by an anchor IAK")

    claims = token.claims
    evidence.measurements = software_measurements(claims.software_components, "psa/sw")
    evidence.nonce = claims.nonce
    evidence.instance_id = claims.instance_id
    evidence.debug = lifecycle_debug(claims.security_lifecycle)
    return evidence
