"""CoRIM (Concise Reference Integrity Manifest) and CoMID parsing and verification.

Supported encodings (draft-ietf-rats-corim): an unsigned CoRIM (CBOR tag 501) and a
signed CoRIM, a COSE_Sign1 (tag 18) whose payload is the tag-501 CoRIM and whose
protected header carries `corim-meta` (header 8: signer and signature validity).
Each CoRIM holds CoMIDs (tag 506) whose triples are reduced to typed reference
values (environment + measurements) and key triples (attest-key and identity keys).
CoSWID (505) and CoTL (508) tags are kept only as counts.

`parse` authenticates nothing. Use `verify_corim` for a signed CoRIM; an unsigned one
is only as trustworthy as the channel or file it came from.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from attestnet.errors import MalformedEvidence, VerificationError
from attestnet.evidence.cose import (
    HEADER_CONTENT_TYPE,
    ClaimMap,
    CoseMessage,
    cose_key_to_public_key,
    decode_cbor,
    jsonable,
    parse_cose,
    verify_sign1_with_anchors,
)
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.x509chain import load_certificate

__all__ = [
    "FORMAT",
    "Comid",
    "Corim",
    "CorimMeta",
    "CryptoKey",
    "Digest",
    "Environment",
    "KeyTriple",
    "Measurement",
    "PsaRefvalId",
    "ReferenceValue",
    "TypedValue",
    "looks_like",
    "parse",
    "verify",
    "verify_corim",
]

FORMAT = "corim"

TAG_CORIM = 501
TAG_SIGNED_CORIM = 18
TAG_COSWID = 505
TAG_COMID = 506
TAG_COTL = 508
HEADER_CORIM_META = 8
CONTENT_TYPE = "application/rim+cbor"

# Tags of typed values in environments, measurement keys and crypto keys.
_TYPED_TAGS: dict[int, str] = {
    37: "uuid",
    111: "oid",
    550: "ueid",
    554: "pkix-base64-key",
    555: "pkix-base64-cert",
    556: "pkix-base64-cert-path",
    557: "thumbprint",
    558: "cose-key",
    559: "cert-thumbprint",
    560: "bytes",
    561: "cert-path-thumbprint",
    600: "psa.impl-id",
    601: "psa.refval-id",
}

# Triple keys of the CoMID triples map.
_TRIPLE_REFERENCE = 0
_TRIPLE_IDENTITY = 2
_TRIPLE_ATTEST_KEY = 3


@dataclass(frozen=True)
class TypedValue:
    """A CBOR-tagged value, by its CoRIM type name (`psa.impl-id`, `ueid`, `uuid`...).

    UUIDs are kept as their 16 bytes; untagged text and integers get "text" and "uint".
    """

    type: str
    value: Any


@dataclass(frozen=True)
class Environment:
    class_id: TypedValue | None = None
    vendor: str | None = None
    model: str | None = None
    layer: int | None = None
    index: int | None = None
    instance: TypedValue | None = None
    group: TypedValue | None = None


@dataclass(frozen=True)
class PsaRefvalId:
    """The PSA reference-value id (tag 601): a component's label, version and signer."""

    label: str | None
    version: str | None
    signer_id: bytes | None


@dataclass(frozen=True)
class Digest:
    """A digest with its algorithm: a Named Information id (1 = sha-256) or name."""

    algorithm: int | str
    value: bytes


@dataclass(frozen=True)
class Measurement:
    key: TypedValue | None
    psa_refval_id: PsaRefvalId | None
    version: str | None
    svn: int | None
    digests: tuple[Digest, ...]
    raw_value: bytes | None
    name: str | None


@dataclass(frozen=True)
class ReferenceValue:
    environment: Environment
    measurements: tuple[Measurement, ...]


@dataclass(frozen=True)
class CryptoKey:
    """A key from a key triple; `public_key` is None for thumbprints and unknown types."""

    type: str
    value: Any
    public_key: PublicKeyTypes | None


@dataclass(frozen=True)
class KeyTriple:
    """An attest-key or identity triple: the keys that the environment uses."""

    kind: str
    environment: Environment
    keys: tuple[CryptoKey, ...]


@dataclass(frozen=True)
class Comid:
    tag_id: str
    language: str | None
    reference_values: tuple[ReferenceValue, ...]
    attest_keys: tuple[KeyTriple, ...]
    identity_keys: tuple[KeyTriple, ...]


@dataclass(frozen=True)
class CorimMeta:
    """`corim-meta` of a signed CoRIM: who signed it and for how long it is valid."""

    signer_name: str
    signer_uri: str | None
    not_before: datetime | None
    not_after: datetime | None


@dataclass(frozen=True)
class Corim:
    id: str
    profile: str | None
    comids: tuple[Comid, ...]
    other_tags: dict[int, int] = field(default_factory=dict)
    not_before: datetime | None = None
    not_after: datetime | None = None
    meta: CorimMeta | None = None
    message: CoseMessage | None = None

    @property
    def signed(self) -> bool:
        return self.message is not None

    @property
    def reference_values(self) -> tuple[ReferenceValue, ...]:
        return tuple(rv for comid in self.comids for rv in comid.reference_values)

    @property
    def attest_keys(self) -> tuple[KeyTriple, ...]:
        return tuple(kt for comid in self.comids for kt in comid.attest_keys)

    @property
    def identity_keys(self) -> tuple[KeyTriple, ...]:
        return tuple(kt for comid in self.comids for kt in comid.identity_keys)


def _malformed(detail: str) -> MalformedEvidence:
    return MalformedEvidence(FORMAT, detail)


def _typed(value: Any, where: str) -> TypedValue:
    if isinstance(value, uuid.UUID):
        return TypedValue("uuid", value.bytes)
    if isinstance(value, cbor2.CBORTag):
        name = _TYPED_TAGS.get(value.tag, f"tag-{value.tag}")
        inner = value.value
        if name == "uuid" and isinstance(inner, bytes):
            return TypedValue("uuid", inner)
        return TypedValue(name, inner)
    if isinstance(value, str):
        return TypedValue("text", value)
    if isinstance(value, int) and not isinstance(value, bool):
        return TypedValue("uint", value)
    raise _malformed(f"{where}: unsupported value type {type(value).__name__}")


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise _malformed(f"{where}: expected a time (tag 1 epoch seconds)")


def _validity(validity: ClaimMap | None) -> tuple[datetime | None, datetime | None]:
    if validity is None:
        return None, None
    not_before = validity.data.get(0)
    if 1 not in validity:
        raise _malformed(f"{validity.where}: missing not-after (1)")
    return (
        _time(not_before, f"{validity.where}.not-before") if not_before is not None else None,
        _time(validity.data[1], f"{validity.where}.not-after"),
    )


def _environment(value: Any, where: str) -> Environment:
    env = ClaimMap(value, FORMAT, where)
    class_map = env.get_map(0, "class")
    class_id = vendor = model = layer = index = None
    if class_map is not None:
        if 0 in class_map:
            class_id = _typed(class_map.data[0], f"{where}.class.class-id")
        vendor = class_map.get_text(1, "vendor")
        model = class_map.get_text(2, "model")
        layer = class_map.get_int(3, "layer")
        index = class_map.get_int(4, "index")
    instance = _typed(env.data[1], f"{where}.instance") if 1 in env else None
    group = _typed(env.data[2], f"{where}.group") if 2 in env else None
    return Environment(class_id, vendor, model, layer, index, instance, group)


def _digests(value: Any, where: str) -> tuple[Digest, ...]:
    if not isinstance(value, list):
        raise _malformed(f"{where}: digests must be an array")
    digests = []
    for entry in value:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], int | str)
            or isinstance(entry[0], bool)
            or not isinstance(entry[1], bytes)
        ):
            raise _malformed(f"{where}: each digest must be [algorithm, bstr]")
        digests.append(Digest(entry[0], entry[1]))
    return tuple(digests)


def _measurement(value: Any, where: str) -> Measurement:
    measurement = ClaimMap(value, FORMAT, where)
    key = _typed(measurement.data[0], f"{where}.mkey") if 0 in measurement else None
    refval = None
    if key is not None and key.type == "psa.refval-id":
        fields = ClaimMap(key.value, FORMAT, f"{where}.psa.refval-id")
        refval = PsaRefvalId(
            label=fields.get_text(1, "label"),
            version=fields.get_text(4, "version"),
            signer_id=fields.need_bytes(5, "signer id"),
        )
    mval = measurement.get_map(1, "mval")
    if mval is None:
        raise _malformed(f"{where}: missing mval (1)")
    version_map = mval.get_map(0, "version")
    raw_value = None
    if 4 in mval:
        raw = _typed(mval.data[4], f"{where}.raw-value")
        if not isinstance(raw.value, bytes):
            raise _malformed(f"{where}: raw-value must hold a byte string")
        raw_value = raw.value
    svn = mval.data.get(1)
    if isinstance(svn, cbor2.CBORTag):  # tagged exact (552) or minimum (553) SVN
        svn = svn.value
    if svn is not None and (not isinstance(svn, int) or isinstance(svn, bool)):
        raise _malformed(f"{where}: svn must be an integer")
    return Measurement(
        key=key,
        psa_refval_id=refval,
        version=version_map.need_text(0, "version") if version_map is not None else None,
        svn=svn,
        digests=_digests(mval.data[2], f"{where}.digests") if 2 in mval else (),
        raw_value=raw_value,
        name=mval.get_text(11, "name"),
    )


def _crypto_key(value: Any, where: str) -> CryptoKey:
    typed = _typed(value, where)
    public_key: PublicKeyTypes | None = None
    try:
        if typed.type == "pkix-base64-key" and isinstance(typed.value, str):
            public_key = load_pem_public_key(typed.value.encode())
        elif typed.type == "pkix-base64-cert" and isinstance(typed.value, str):
            text = typed.value
            encoded = (
                text.encode() if "-----BEGIN" in text else base64.b64decode(text, validate=True)
            )
            certificate = load_certificate(encoded, format=FORMAT, what=f"{where} certificate")
            public_key = certificate.public_key()
        elif typed.type == "cose-key":
            inner = typed.value
            if isinstance(inner, bytes):
                inner = decode_cbor(inner, FORMAT, f"{where} COSE_Key")
            public_key = cose_key_to_public_key(inner, FORMAT, f"{where} COSE_Key")
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _malformed(f"{where}: invalid {typed.type}: {exc}") from None
    return CryptoKey(typed.type, typed.value, public_key)


def _triples(value: Any, where: str, arity: tuple[int, ...]) -> list[list[Any]]:
    if not isinstance(value, list):
        raise _malformed(f"{where}: must be an array of triples")
    for i, triple in enumerate(value):
        if not isinstance(triple, list) or len(triple) not in arity:
            raise _malformed(f"{where}[{i}]: triple must be an array of {arity} items")
        if not isinstance(triple[1], list) or not triple[1]:
            raise _malformed(f"{where}[{i}]: second element must be a non-empty array")
    return value


def _key_triples(triples: ClaimMap, key: int, kind: str) -> tuple[KeyTriple, ...]:
    if key not in triples:
        return ()
    where = f"{triples.where}.{kind}"
    result = []
    for i, triple in enumerate(_triples(triples.data[key], where, (2, 3))):
        environment = _environment(triple[0], f"{where}[{i}].environment")
        keys = tuple(_crypto_key(k, f"{where}[{i}].key[{j}]") for j, k in enumerate(triple[1]))
        result.append(KeyTriple(kind, environment, keys))
    return tuple(result)


def _comid(data: bytes, where: str) -> Comid:
    comid = ClaimMap(decode_cbor(data, FORMAT, where), FORMAT, where)
    identity = comid.get_map(1, "tag-identity")
    if identity is None or 0 not in identity:
        raise _malformed(f"{where}: missing tag-identity.tag-id")
    tag_id_value = identity.data[0]
    if isinstance(tag_id_value, bytes) and len(tag_id_value) == 16:
        tag_id = str(uuid.UUID(bytes=tag_id_value))
    elif isinstance(tag_id_value, str):
        tag_id = tag_id_value
    else:
        raise _malformed(f"{where}: tag-id must be text or a 16-byte UUID")
    triples = comid.get_map(4, "triples")
    if triples is None:
        raise _malformed(f"{where}: missing triples (4)")

    reference_values = []
    if _TRIPLE_REFERENCE in triples:
        rv_where = f"{where}.reference-triples"
        for i, triple in enumerate(_triples(triples.data[_TRIPLE_REFERENCE], rv_where, (2,))):
            environment = _environment(triple[0], f"{rv_where}[{i}].environment")
            measurements = tuple(
                _measurement(m, f"{rv_where}[{i}].measurement[{j}]")
                for j, m in enumerate(triple[1])
            )
            reference_values.append(ReferenceValue(environment, measurements))
    return Comid(
        tag_id=tag_id,
        language=comid.get_text(0, "language"),
        reference_values=tuple(reference_values),
        attest_keys=_key_triples(triples, _TRIPLE_ATTEST_KEY, "attest-key"),
        identity_keys=_key_triples(triples, _TRIPLE_IDENTITY, "identity"),
    )


def _unsigned(item: Any, message: CoseMessage | None, meta: CorimMeta | None) -> Corim:
    if not isinstance(item, cbor2.CBORTag) or item.tag != TAG_CORIM:
        raise _malformed("CoRIM must be CBOR tag 501 (or a tag-18 signed CoRIM)")
    corim = ClaimMap(item.value, FORMAT, "corim")
    if 0 not in corim:
        raise _malformed("corim: missing id (0)")
    corim_id = corim.data[0]
    if isinstance(corim_id, uuid.UUID):
        corim_id = str(corim_id)
    if not isinstance(corim_id, str):
        raise _malformed("corim: id must be text or a UUID")
    tags = corim.get_list(1, "tags")
    if not tags:
        raise _malformed("corim: tags (1) must be a non-empty array")

    comids = []
    others: dict[int, int] = {}
    for i, tag in enumerate(tags):
        if not isinstance(tag, cbor2.CBORTag) or not isinstance(tag.value, bytes):
            raise _malformed(f"corim.tags[{i}]: must be a tagged byte string")
        if tag.tag == TAG_COMID:
            comids.append(_comid(tag.value, f"corim.tags[{i}] (CoMID)"))
        elif tag.tag in (TAG_COSWID, TAG_COTL):
            others[tag.tag] = others.get(tag.tag, 0) + 1
        else:
            raise _malformed(f"corim.tags[{i}]: unknown tag {tag.tag}")

    profile = corim.data.get(3)
    if isinstance(profile, cbor2.CBORTag):  # an OID profile (tag 111)
        profile = jsonable(profile)
    not_before, not_after = _validity(corim.get_map(4, "rim-validity"))
    return Corim(
        id=corim_id,
        profile=profile if isinstance(profile, str) else None,
        comids=tuple(comids),
        other_tags=others,
        not_before=not_before,
        not_after=not_after,
        meta=meta,
        message=message,
    )


def _meta(message: CoseMessage) -> CorimMeta:
    raw = message.protected.get(HEADER_CORIM_META)
    if raw is None:
        raise _malformed("signed CoRIM: protected header has no corim-meta (8)")
    value = decode_cbor(raw, FORMAT, "corim-meta") if isinstance(raw, bytes) else raw
    meta = ClaimMap(value, FORMAT, "corim-meta")
    signer = meta.get_map(0, "signer")
    if signer is None:
        raise _malformed("corim-meta: missing signer (0)")
    uri = signer.data.get(1)
    if isinstance(uri, cbor2.CBORTag) and uri.tag == 32:
        uri = uri.value
    not_before, not_after = _validity(meta.get_map(1, "signature-validity"))
    return CorimMeta(
        signer_name=signer.need_text(0, "signer-name"),
        signer_uri=uri if isinstance(uri, str) else None,
        not_before=not_before,
        not_after=not_after,
    )


def parse(data: bytes) -> Corim:
    """Parse a signed (tag 18) or unsigned (tag 501) CoRIM without verifying it."""
    item = decode_cbor(data, FORMAT, "CoRIM")
    if isinstance(item, cbor2.CBORTag) and item.tag == TAG_SIGNED_CORIM:
        message = parse_cose(item, FORMAT, kinds=("Sign1",), what="signed CoRIM")
        content_type = message.protected.get(HEADER_CONTENT_TYPE)
        if content_type is not None and content_type != CONTENT_TYPE:
            raise _malformed(f"signed CoRIM: content type {content_type!r} is not {CONTENT_TYPE}")
        meta = _meta(message)
        payload = decode_cbor(message.payload, FORMAT, "signed CoRIM payload")
        return _unsigned(payload, message, meta)
    return _unsigned(item, None, None)


def looks_like(data: bytes) -> bool:
    """Return True for tag 501, or tag 18 whose protected header names application/rim+cbor."""
    if data[:3] == b"\xd9\x01\xf5":  # tag 501
        return True
    if data[:1] != b"\xd2":
        return False
    try:
        message = parse_cose(data, FORMAT, kinds=("Sign1",))
    except MalformedEvidence:
        return False
    return message.protected.get(HEADER_CONTENT_TYPE) == CONTENT_TYPE


def _check_window(
    check: str, claim: str, not_before: datetime | None, not_after: datetime | None, at: datetime
) -> None:
    if not_before is not None and at < not_before:
        raise VerificationError(
            check,
            "not valid yet",
            claim=f"{claim}.not-before",
            expected=f"<= {at.isoformat()}",
            actual=not_before.isoformat(),
        )
    if not_after is not None and at > not_after:
        raise VerificationError(
            check,
            "expired",
            claim=f"{claim}.not-after",
            expected=f">= {at.isoformat()}",
            actual=not_after.isoformat(),
        )


def _verify(data: bytes, anchors: TrustAnchors, at: datetime) -> tuple[Corim, VerifiedEvidence]:
    corim = parse(data)
    evidence = VerifiedEvidence(format=FORMAT, verified_at=at, claims=corim_json(corim))
    if corim.message is None or corim.meta is None:
        raise VerificationError(
            "corim signature",
            "CoRIM is unsigned, so there is no signature to verify; "
            "use corim.parse only for a CoRIM from a trusted source",
        )
    evidence.signer = verify_sign1_with_anchors(
        corim.message, anchors, at, what="signed CoRIM", check="corim signature"
    )
    evidence.passed("corim signature", f"{corim.message.algorithm.name} by an anchor key")
    meta = corim.meta
    _check_window("signer validity", "corim-meta", meta.not_before, meta.not_after, at)
    evidence.passed("signer validity", f"{at.isoformat()} within the corim-meta validity")
    _check_window("rim validity", "rim-validity", corim.not_before, corim.not_after, at)
    return corim, evidence


def verify_corim(data: bytes, *, anchors: TrustAnchors, at: datetime) -> Corim:
    """Verify a signed CoRIM (signature and validity windows at `at`); return it typed."""
    return _verify(data, anchors, at)[0]


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify a signed CoRIM as `verify_corim` does; return its content as claims.

    `collateral` is unused: the signer key must be a trust anchor.
    """
    return _verify(data, anchors, at)[1]


def _environment_json(env: Environment) -> dict[str, Any]:
    return {
        "class_id": jsonable(env.class_id.__dict__) if env.class_id else None,
        "vendor": env.vendor,
        "model": env.model,
        "layer": env.layer,
        "index": env.index,
        "instance": jsonable(env.instance.__dict__) if env.instance else None,
        "group": jsonable(env.group.__dict__) if env.group else None,
    }


def corim_json(corim: Corim) -> dict[str, Any]:
    """Return the CoRIM as JSON-friendly claims, for printing."""
    return {
        "id": corim.id,
        "profile": corim.profile,
        "signed": corim.signed,
        "signer": jsonable(corim.meta.__dict__) if corim.meta else None,
        "reference_values": [
            {
                "environment": _environment_json(rv.environment),
                "measurements": [
                    {
                        "key": jsonable(m.key.__dict__) if m.key else None,
                        "psa_refval_id": jsonable(m.psa_refval_id.__dict__)
                        if m.psa_refval_id
                        else None,
                        "version": m.version,
                        "svn": m.svn,
                        "digests": [[d.algorithm, d.value.hex()] for d in m.digests],
                        "raw_value": jsonable(m.raw_value),
                        "name": m.name,
                    }
                    for m in rv.measurements
                ],
            }
            for rv in corim.reference_values
        ],
        "keys": [
            {
                "kind": kt.kind,
                "environment": _environment_json(kt.environment),
                "keys": [{"type": k.type, "value": jsonable(k.value)} for k in kt.keys],
            }
            for kt in corim.attest_keys + corim.identity_keys
        ],
        "other_tags": {str(k): v for k, v in corim.other_tags.items()},
    }
