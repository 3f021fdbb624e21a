"""EAR (EAT Attestation Result, draft-ietf-rats-ear) tokens in JWT and CWT form.

An EAR carries one appraisal per attester in `submods`, each with an `ear.status`
trust tier and an AR4SI trustworthiness vector (draft-ietf-rats-ar4si). The JWT form
uses the claim names below; the CWT form (COSE_Sign1, optionally in CWT tag 61) uses
the registered integer keys: eat_profile 265, iat 6, exp 4, nbf 5, eat_nonce 10,
submods 266, ear.status 1000, ear.trustworthiness-vector 1001, ear.raw-evidence
1002, ear.appraisal-policy-id 1003, and 0..7 inside the vector.

Format-inherent checks made here: the signature by a trust anchor, iat/nbf/exp at
the verification time, a known `eat_profile`, and each appraisal's status being no
more trusting than the worst claim of its vector (as the EAR draft requires).
Whether a status is good enough is the relying party's policy, not checked here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import cbor2

from attestnet.errors import MalformedEvidence, VerificationError
from attestnet.evidence.cbor import loads_untrusted
from attestnet.evidence.cose import (
    ALGORITHMS,
    TAG_COSE_SIGN1,
    TAG_CWT,
    ClaimMap,
    CoseAlgorithm,
    decode_cbor,
    jsonable,
    parse_cose,
    verify_with_anchors,
)
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence

__all__ = [
    "EAR_PROFILES",
    "FORMAT",
    "TRUST_CLAIMS",
    "Appraisal",
    "AttestationResult",
    "looks_like",
    "parse",
    "tier_of",
    "verify",
    "verify_result",
]

FORMAT = "ear"

# Profiles of draft-ietf-rats-ear: the 2023 one and the earlier Veraison one.
EAR_PROFILES = ("tag:github.com,2023:veraison/ear", "tag:github.com,2022:veraison/ear")

# AR4SI trustworthiness claims in vector order; the index is the CBOR key.
TRUST_CLAIMS = (
    "instance-identity",
    "configuration",
    "executables",
    "file-system",
    "hardware",
    "runtime-opaque",
    "storage-opaque",
    "sourced-data",
)

Tier = Literal["none", "affirming", "warning", "contraindicated"]
_STATUS_CODES: dict[int, Tier] = {0: "none", 2: "affirming", 32: "warning", 96: "contraindicated"}
# Higher is less trustworthy; "none" makes no claim and is never compared.
_TIER_RANK = {"affirming": 0, "warning": 1, "contraindicated": 2}

# JOSE algorithm names that match COSE ones; HMAC and "none" are rejected for EARs.
_JOSE_ALGORITHMS: dict[str, CoseAlgorithm] = {
    alg.name: alg for alg in ALGORITHMS.values() if alg.scheme != "hmac"
}

# CWT claim keys.
_CWT_EXP = 4
_CWT_NBF = 5
_CWT_IAT = 6
_CWT_NONCE = 10
_CWT_PROFILE = 265
_CWT_SUBMODS = 266
_CWT_STATUS = 1000
_CWT_VECTOR = 1001
_CWT_RAW_EVIDENCE = 1002
_CWT_POLICY_ID = 1003
_CWT_VERIFIER_ID = 1004


def tier_of(value: int) -> Tier:
    """Return the AR4SI trust tier of a trustworthiness claim value (-128..127)."""
    magnitude = abs(value)
    if magnitude <= 1:
        return "none"
    if magnitude <= 31 or value == -32:
        return "affirming"
    if magnitude <= 95 or value == -96:
        return "warning"
    return "contraindicated"


@dataclass(frozen=True)
class Appraisal:
    """One submodule's appraisal: status tier, trust vector (claim name -> value), policy."""

    status: Tier
    trust_vector: dict[str, int]
    policy_id: str | None


@dataclass(frozen=True)
class AttestationResult:
    form: Literal["jwt", "cwt"]
    profile: str
    issued_at: datetime
    expires_at: datetime | None
    not_before: datetime | None
    nonce: bytes | None
    verifier_id: Any
    raw_evidence: bytes | None
    submods: dict[str, Appraisal]
    claims: dict[str, Any]


@dataclass(frozen=True)
class SignedResult:
    """A parsed EAR with what its signature covers; nothing verified yet."""

    result: AttestationResult
    algorithm: CoseAlgorithm
    signing_input: bytes
    signature: bytes


def _malformed(detail: str) -> MalformedEvidence:
    return MalformedEvidence(FORMAT, detail)


_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64url(segment: str, what: str) -> bytes:
    if _BASE64URL.fullmatch(segment) is None:
        raise _malformed(f"JWT {what}: not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise _malformed(f"JWT {what}: invalid base64url") from None


class _DuplicateMember(ValueError):
    """A JSON object names a member twice; args[0] is its name."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateMember(key)
            seen.add(key)
    return result


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_members)
    except _DuplicateMember as exc:
        raise _malformed(f"JWT {what}: duplicate member {exc.args[0]!r}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _malformed(f"JWT {what}: invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _malformed(f"JWT {what}: must be a JSON object")
    return value


def _time(value: Any, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _malformed(f"claim {name} must be a NumericDate")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise _malformed(f"claim {name} is out of range: {value}") from None


def _vector(value: Any, where: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise _malformed(f"{where}: trustworthiness vector must be a map")
    vector: dict[str, int] = {}
    for key, claim in value.items():
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(TRUST_CLAIMS):
            name = TRUST_CLAIMS[key]
        elif isinstance(key, str) and key in TRUST_CLAIMS:
            name = key
        else:
            raise _malformed(f"{where}: unknown trustworthiness claim {key!r}")
        if isinstance(claim, bool) or not isinstance(claim, int) or not -128 <= claim <= 127:
            raise _malformed(f"{where}: claim {name} must be an integer in -128..127")
        vector[name] = claim
    return vector


def _appraisal(value: Any, where: str, cbor: bool) -> Appraisal:
    keys: tuple[Any, Any, Any] = (
        (_CWT_STATUS, _CWT_VECTOR, _CWT_POLICY_ID)
        if cbor
        else ("ear.status", "ear.trustworthiness-vector", "ear.appraisal-policy-id")
    )
    claims = ClaimMap(value, FORMAT, where)
    if keys[0] not in claims:
        raise _malformed(f"{where}: missing ear.status")
    raw_status = claims.data[keys[0]]
    status: Tier | None
    if cbor:
        is_int = isinstance(raw_status, int) and not isinstance(raw_status, bool)
        status = _STATUS_CODES.get(raw_status) if is_int else None
    else:
        status = raw_status if raw_status in _TIER_RANK or raw_status == "none" else None
    if status is None:
        raise _malformed(f"{where}: invalid ear.status {raw_status!r}")
    vector = _vector(claims.data[keys[1]], where) if keys[1] in claims else {}
    return Appraisal(status, vector, claims.get_text(keys[2], "ear.appraisal-policy-id"))


def _result(claims: dict[Any, Any], form: Literal["jwt", "cwt"]) -> AttestationResult:
    cbor = form == "cwt"

    def key(json_name: str, cwt_key: int) -> Any:
        return cwt_key if cbor else json_name

    reader = ClaimMap(claims, FORMAT, "EAR claims")
    profile = reader.get_text(key("eat_profile", _CWT_PROFILE), "eat_profile")
    if profile is None:
        raise _malformed("EAR claims: missing eat_profile")
    if key("iat", _CWT_IAT) not in reader:
        raise _malformed("EAR claims: missing iat")
    issued_at = _time(claims[key("iat", _CWT_IAT)], "iat")
    exp_key, nbf_key = key("exp", _CWT_EXP), key("nbf", _CWT_NBF)
    expires_at = _time(claims[exp_key], "exp") if exp_key in reader else None
    not_before = _time(claims[nbf_key], "nbf") if nbf_key in reader else None

    submods_map = reader.get_map(key("submods", _CWT_SUBMODS), "submods")
    if submods_map is None or not submods_map.data:
        raise _malformed("EAR claims: submods must be a non-empty map")
    submods = {}
    for name, appraisal in submods_map.data.items():
        if not isinstance(name, str):
            raise _malformed("EAR claims: submodule names must be text")
        submods[name] = _appraisal(appraisal, f"submods[{name!r}]", cbor)

    nonce_value = claims.get(key("eat_nonce", _CWT_NONCE))
    nonce: bytes | None
    if nonce_value is None:
        nonce = None
    elif cbor and isinstance(nonce_value, bytes):
        nonce = nonce_value
    elif not cbor and isinstance(nonce_value, str):
        # In JSON, eat_nonce is the nonce text itself; its UTF-8 bytes are returned.
        nonce = nonce_value.encode()
    else:
        raise _malformed("EAR claims: eat_nonce has the wrong type")

    raw_evidence = claims.get(key("ear.raw-evidence", _CWT_RAW_EVIDENCE))
    if raw_evidence is not None:
        if cbor and isinstance(raw_evidence, bytes):
            pass
        elif not cbor and isinstance(raw_evidence, str):
            raw_evidence = _b64url(raw_evidence, "ear.raw-evidence")
        else:
            raise _malformed("EAR claims: ear.raw-evidence has the wrong type")

    return AttestationResult(
        form=form,
        profile=profile,
        issued_at=issued_at,
        expires_at=expires_at,
        not_before=not_before,
        nonce=nonce,
        verifier_id=jsonable(claims.get(key("ear.verifier-id", _CWT_VERIFIER_ID))),
        raw_evidence=raw_evidence,
        submods=submods,
        claims=jsonable(claims),
    )


def _parse_jwt(text: str) -> SignedResult:
    parts = text.split(".")
    if len(parts) != 3:
        raise _malformed("JWT must have three dot-separated parts")
    header = _json_object(_b64url(parts[0], "header"), "header")
    alg_name = header.get("alg")
    algorithm = _JOSE_ALGORITHMS.get(alg_name) if isinstance(alg_name, str) else None
    if algorithm is None:
        raise _malformed(f"JWT header: unsupported alg {alg_name!r}")
    if "crit" in header:
        raise _malformed("JWT header: crit parameters are not supported")
    claims = _json_object(_b64url(parts[1], "payload"), "payload")
    signature = _b64url(parts[2], "signature")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return SignedResult(_result(claims, "jwt"), algorithm, signing_input, signature)


def _parse_cwt(data: bytes) -> SignedResult:
    item = decode_cbor(data, FORMAT, "EAR CWT")
    if isinstance(item, cbor2.CBORTag) and item.tag == TAG_CWT:
        item = item.value
    message = parse_cose(item, FORMAT, kinds=("Sign1",), what="EAR CWT")
    claims = decode_cbor(message.payload, FORMAT, "EAR claims")
    if not isinstance(claims, dict):
        raise _malformed("EAR CWT: claims must be a map")
    return SignedResult(
        _result(claims, "cwt"), message.algorithm, message.to_be_signed(), message.signature
    )


def parse(data: bytes) -> SignedResult:
    """Parse a JWT or CWT EAR without verifying its signature or times."""
    if not data:
        raise _malformed("empty input")
    if data[:1] in (b"\xd8", b"\xd2"):  # CBOR tag 61 (2-byte head) or tag 18
        return _parse_cwt(data)
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _malformed("neither a JWT (ASCII) nor a CWT (CBOR tag 61 or 18)") from None
    return _parse_jwt(text)


def looks_like(data: bytes) -> bool:
    """Return True for a JWT whose header names an alg, or a CWT whose claims have submods."""
    try:
        if data[:1] in (b"\xd8", b"\xd2"):
            item, _ = loads_untrusted(data)
            if isinstance(item, cbor2.CBORTag) and item.tag == TAG_CWT:
                item = item.value
            if not isinstance(item, cbor2.CBORTag) or item.tag != TAG_COSE_SIGN1:
                return False
            claims, _ = loads_untrusted(item.value[2])
            return isinstance(claims, dict) and _CWT_SUBMODS in claims
        text = data.decode("ascii").strip()
        parts = text.split(".")
        if len(parts) != 3 or not text.startswith("eyJ"):
            return False
        payload = json.loads(_b64url(parts[1], "payload"))
        return isinstance(payload, dict) and "submods" in payload
    except Exception:  # a sniff never raises; any decoding failure means "not EAR"
        return False


def _check_times(result: AttestationResult, at: datetime, leeway: timedelta) -> None:
    if result.issued_at > at + leeway:
        raise VerificationError(
            "ear freshness",
            "issued in the future",
            claim="iat",
            expected=f"<= {at.isoformat()}",
            actual=result.issued_at.isoformat(),
        )
    if result.not_before is not None and result.not_before > at + leeway:
        raise VerificationError(
            "ear freshness",
            "not valid yet",
            claim="nbf",
            expected=f"<= {at.isoformat()}",
            actual=result.not_before.isoformat(),
        )
    if result.expires_at is not None and result.expires_at <= at - leeway:
        raise VerificationError(
            "ear freshness",
            "expired",
            claim="exp",
            expected=f"> {at.isoformat()}",
            actual=result.expires_at.isoformat(),
        )


def _check_status(name: str, appraisal: Appraisal) -> None:
    if appraisal.status == "none":
        return
    for claim, value in appraisal.trust_vector.items():
        tier = tier_of(value)
        if tier != "none" and _TIER_RANK[tier] > _TIER_RANK[appraisal.status]:
            raise VerificationError(
                "ear status",
                f"submodule {name!r}: status is more trusting than its vector",
                claim=f"ear.trustworthiness-vector.{claim}",
                expected=f"a claim in the {appraisal.status} tier or better",
                actual=f"{value} ({tier})",
            )


def _verify(
    data: bytes, anchors: TrustAnchors, at: datetime, leeway: timedelta
) -> tuple[AttestationResult, VerifiedEvidence]:
    signed = parse(data)
    result = signed.result
    evidence = VerifiedEvidence(format=FORMAT, verified_at=at, claims=result.claims)
    evidence.signer = verify_with_anchors(
        signed.algorithm,
        signed.signature,
        signed.signing_input,
        anchors,
        at,
        what=f"EAR {result.form.upper()}",
        check="ear signature",
    )
    evidence.passed("ear signature", f"{signed.algorithm.name} by an anchor key")

    _check_times(result, at, leeway)
    expiry = result.expires_at.isoformat() if result.expires_at else "no exp"
    evidence.passed("ear freshness", f"iat {result.issued_at.isoformat()}, {expiry}")

    if result.profile not in EAR_PROFILES:
        raise VerificationError(
            "ear profile",
            "unknown EAR profile",
            claim="eat_profile",
            expected=" or ".join(EAR_PROFILES),
            actual=result.profile,
        )
    evidence.passed("ear profile", result.profile)

    for name, appraisal in result.submods.items():
        _check_status(name, appraisal)
    evidence.passed("ear status", "every status is consistent with its trust vector")
    evidence.nonce = result.nonce
    return result, evidence


def verify_result(
    data: bytes, *, anchors: TrustAnchors, at: datetime, leeway: timedelta = timedelta(0)
) -> AttestationResult:
    """Verify an EAR (signature, iat/nbf/exp at `at`, profile, status); return it typed."""
    return _verify(data, anchors, at, leeway)[0]


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify an EAR as `verify_result` does, with no clock leeway.

    `collateral` is unused: the issuer key must be a trust anchor.
    """
    return _verify(data, anchors, at, timedelta(0))[1]
