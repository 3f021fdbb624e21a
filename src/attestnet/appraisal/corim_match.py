"""Appraise PSA evidence against CoRIM endorsements and reference values.

The steps follow the Veraison PSA scheme:

1. The attest-key triple whose environment names the token's implementation id
   (class-id, tag 600 or 560) and instance id (UEID, tag 550) supplies the IAK.
   No such triple: instance-identity 97 (unrecognized instance).
2. The token must verify with that IAK. Otherwise: instance-identity 99
   (cryptographic validation failed).
3. Every software component must match a reference value of the same
   implementation: the PSA refval-id (label, version, signer id; an absent field
   matches anything) and one digest equal to the measured value. All match:
   executables 2 (approved run-time); otherwise 33 (unrecognized run-time).
   Reference values with no component in the token do not fail the appraisal,
   because a CoRIM may list several approved versions of one component.

An affirming result carries the AR4SI vector that Veraison issues for PSA:
instance-identity, executables, hardware, runtime-opaque and storage-opaque 2, the
others 0 (no claim). The nonce is not checked here: the caller compares
`evidence.nonce` with the challenge it issued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from attestnet.errors import SignatureError
from attestnet.evidence import psa
from attestnet.evidence.corim import Corim, Environment, KeyTriple, Measurement
from attestnet.evidence.ear import TRUST_CLAIMS, tier_of
from attestnet.evidence.model import TrustAnchors, VerifiedEvidence

__all__ = ["ComponentMatch", "CorimAppraisal", "appraise_psa", "status_of"]

logger = logging.getLogger(__name__)

# AR4SI trustworthiness claim values (draft-ietf-rats-ar4si).
NO_CLAIM = 0
TRUSTWORTHY_INSTANCE = 2  # instance-identity: recognized and not compromised
UNRECOGNIZED_INSTANCE = 97  # instance-identity: not recognized
CRYPTO_VALIDATION_FAILED = 99  # any claim: cryptographic validation failed
APPROVED_RUNTIME = 2  # executables: only approved executables loaded
UNRECOGNIZED_RUNTIME = 33  # executables: unrecognized executables loaded
GENUINE_HARDWARE = 2  # hardware: genuine
ENCRYPTED_MEMORY_RUNTIME = 2  # runtime-opaque: memory inside the TEE is opaque
HW_KEYS_ENCRYPTED_SECRETS = 2  # storage-opaque: secrets sealed with hardware keys

_CLASS_ID_TYPES = ("psa.impl-id", "bytes")
_TIER_ORDER = ("affirming", "warning", "contraindicated")


@dataclass(frozen=True)
class ComponentMatch:
    """How one software component of the token compared with the reference values."""

    name: str
    matched: bool
    detail: str
    measured: bytes
    expected: tuple[bytes, ...]


@dataclass(frozen=True)
class CorimAppraisal:
    """Status, AR4SI trust vector and per-component detail of one PSA appraisal.

    `evidence` is set once the token verified with the endorsed IAK.
    """

    status: str
    trust_vector: dict[str, int]
    components: tuple[ComponentMatch, ...]
    detail: str
    evidence: VerifiedEvidence | None = None
    attestation_key: KeyTriple | None = None


def status_of(vector: dict[str, int]) -> str:
    """Return the EAR status of a vector: the worst tier among its claims, else "none"."""
    tiers = [tier_of(value) for value in vector.values()]
    claimed = [tier for tier in tiers if tier != "none"]
    if not claimed:
        return "none"
    return max(claimed, key=_TIER_ORDER.index)


def _empty_vector() -> dict[str, int]:
    return dict.fromkeys(TRUST_CLAIMS, NO_CLAIM)


def _names_implementation(environment: Environment, implementation_id: bytes) -> bool:
    class_id = environment.class_id
    return (
        class_id is not None
        and class_id.type in _CLASS_ID_TYPES
        and class_id.value == implementation_id
    )


def _find_attestation_key(
    corim: Corim, implementation_id: bytes, instance_id: bytes
) -> tuple[KeyTriple, tuple[PublicKeyTypes, ...]] | None:
    for triple in corim.attest_keys:
        environment = triple.environment
        if not _names_implementation(environment, implementation_id):
            continue
        instance = environment.instance
        if instance is None or instance.type != "ueid" or instance.value != instance_id:
            continue
        keys = tuple(k.public_key for k in triple.keys if k.public_key is not None)
        if keys:
            return triple, keys
    return None


def _refval_fits(measurement: Measurement, component: psa.SoftwareComponent) -> bool:
    refval = measurement.psa_refval_id
    if refval is None:
        return False
    if refval.label is not None and refval.label != component.measurement_type:
        return False
    if refval.version is not None and refval.version != component.version:
        return False
    return refval.signer_id is None or refval.signer_id == component.signer_id


def _match_component(
    index: int, component: psa.SoftwareComponent, references: list[Measurement]
) -> ComponentMatch:
    name = component.measurement_type or str(index)
    candidates = [m for m in references if _refval_fits(m, component)]
    expected = tuple(d.value for m in candidates for d in m.digests)
    if not candidates:
        return ComponentMatch(
            name,
            False,
            f"no reference value for component {name!r} version {component.version!r} "
            f"signer id {component.signer_id.hex() if component.signer_id else None}",
            component.measurement_value,
            (),
        )
    if component.measurement_value in expected:
        return ComponentMatch(
            name,
            True,
            f"matches the reference value of {name!r}",
            component.measurement_value,
            expected,
        )
    return ComponentMatch(
        name,
        False,
        f"measurement of component {name!r} differs from its reference value",
        component.measurement_value,
        expected,
    )


def appraise_psa(data: bytes, corim: Corim, *, at: datetime) -> CorimAppraisal:
    """Appraise a PSA token against a CoRIM (see the module docstring for the steps).

    Raises MalformedEvidence if `data` is not a PSA token; every other outcome,
    including a bad signature, is returned as a non-affirming result.
    """
    token = psa.parse(data)
    claims = token.claims
    vector = _empty_vector()

    found = _find_attestation_key(corim, claims.implementation_id, claims.instance_id)
    if found is None:
        vector["instance-identity"] = UNRECOGNIZED_INSTANCE
        detail = (
            f"no attest-key triple for implementation id {claims.implementation_id.hex()} "
            f"and instance id {claims.instance_id.hex()}"
        )
        logger.info("PSA appraisal: %s", detail)
        return CorimAppraisal(status_of(vector), vector, (), detail)
    triple, keys = found

    try:
        evidence = psa.verify(data, anchors=TrustAnchors(public_keys=keys), at=at)
    except SignatureError as exc:
        vector["instance-identity"] = CRYPTO_VALIDATION_FAILED
        logger.info("PSA appraisal: token does not verify with the endorsed IAK: %s", exc)
        return CorimAppraisal(status_of(vector), vector, (), str(exc), attestation_key=triple)
    vector["instance-identity"] = TRUSTWORTHY_INSTANCE
    vector["hardware"] = GENUINE_HARDWARE
    vector["runtime-opaque"] = ENCRYPTED_MEMORY_RUNTIME
    vector["storage-opaque"] = HW_KEYS_ENCRYPTED_SECRETS

    references = [
        measurement
        for reference in corim.reference_values
        if _names_implementation(reference.environment, claims.implementation_id)
        for measurement in reference.measurements
    ]
    components = tuple(
        _match_component(i, c, references) for i, c in enumerate(claims.software_components)
    )
    failed = [c.name for c in components if not c.matched]
    if components and not failed:
        vector["executables"] = APPROVED_RUNTIME
        detail = f"all {len(components)} software components match the reference values"
    else:
        vector["executables"] = UNRECOGNIZED_RUNTIME
        detail = (
            f"software components without a matching reference value: {', '.join(failed)}"
            if failed
            else "the token has no software components to match"
        )
    return CorimAppraisal(status_of(vector), vector, components, detail, evidence, triple)
