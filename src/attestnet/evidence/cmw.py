"""RATS Conceptual Message Wrappers (CMW): records and collections, CBOR and JSON.

A CMW record wraps one conceptual message with its media type:

- CBOR record: ``[type, value, ?indicator]`` where ``type`` is a media type string or a
  CoAP Content-Format number, ``value`` a byte string, ``indicator`` a bit set
  (1 reference values, 2 endorsements, 4 evidence, 8 attestation results).
- JSON record: ``["type", "base64url(value)", ?indicator]``.
- CBOR tag form: ``#6.TN(bstr)`` with ``TN = 1668546817 + Content-Format``.
- Collection: a map (CBOR) or object (JSON) from labels to CMWs, with an optional
  ``"__cmwc_t"`` entry naming the collection type (a URI or OID).

The same message can carry any evidence format; attested TLS puts one in the
``cmw_attestation`` extension of its authenticator.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import cbor2

from attestnet.errors import MalformedEvidence
from attestnet.evidence.cbor import decode_strict

__all__ = [
    "COLLECTION_TYPE_KEY",
    "IND_ATTESTATION_RESULTS",
    "IND_ENDORSEMENTS",
    "IND_EVIDENCE",
    "IND_REFERENCE_VALUES",
    "CmwCollection",
    "CmwRecord",
    "decode",
    "decode_cbor_strict",
    "encode_cbor",
    "encode_json",
    "encode_record",
]

IND_REFERENCE_VALUES = 1
IND_ENDORSEMENTS = 2
IND_EVIDENCE = 4
IND_ATTESTATION_RESULTS = 8

COLLECTION_TYPE_KEY = "__cmwc_t"
_TAG_BASE = 1668546817  # CBOR tag number of Content-Format 0; see the module docstring.
_TAG_LAST = _TAG_BASE + 0xFFFF
_MAX_DEPTH = 8
_FORMAT = "CMW"


@dataclass(frozen=True)
class CmwRecord:
    """One wrapped message. `type` is a media type string or a CoAP Content-Format."""

    type: str | int
    value: bytes
    indicator: int | None = None


@dataclass(frozen=True)
class CmwCollection:
    """Labelled CMWs; `collection_type` is the optional ``__cmwc_t`` value."""

    items: dict[str | int, CmwRecord | CmwCollection] = field(default_factory=dict)
    collection_type: str | None = None


def encode_record(media_type: str | int, value: bytes, indicator: int | None = None) -> bytes:
    """Encode one CBOR CMW record."""
    return encode_cbor(CmwRecord(media_type, value, indicator))


def _to_cbor_item(cmw: CmwRecord | CmwCollection) -> Any:
    if isinstance(cmw, CmwRecord):
        item: list[Any] = [cmw.type, cmw.value]
        if cmw.indicator is not None:
            item.append(cmw.indicator)
        return item
    mapping: dict[Any, Any] = {k: _to_cbor_item(v) for k, v in cmw.items.items()}
    if cmw.collection_type is not None:
        mapping[COLLECTION_TYPE_KEY] = cmw.collection_type
    return mapping


def encode_cbor(cmw: CmwRecord | CmwCollection) -> bytes:
    return cbor2.dumps(_to_cbor_item(cmw))


def _to_json_item(cmw: CmwRecord | CmwCollection) -> Any:
    if isinstance(cmw, CmwRecord):
        value = base64.urlsafe_b64encode(cmw.value).rstrip(b"=").decode()
        item: list[Any] = [cmw.type, value]
        if cmw.indicator is not None:
            item.append(cmw.indicator)
        return item
    mapping: dict[str, Any] = {str(k): _to_json_item(v) for k, v in cmw.items.items()}
    if cmw.collection_type is not None:
        mapping[COLLECTION_TYPE_KEY] = cmw.collection_type
    return mapping


def encode_json(cmw: CmwRecord | CmwCollection) -> bytes:
    return json.dumps(_to_json_item(cmw), separators=(",", ":")).encode()


def decode(data: bytes) -> CmwRecord | CmwCollection:
    """Decode a CBOR or JSON CMW (record, tag form or collection).

    Raises MalformedEvidence naming the offending element; trailing bytes are rejected.
    """
    stripped = data.lstrip()
    if stripped[:1] in (b"[", b"{"):
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise MalformedEvidence(_FORMAT, f"invalid JSON: {exc}") from None
        return _from_json_item(document, depth=0)
    return _from_cbor_item(decode_cbor_strict(data, _FORMAT), depth=0)


def decode_cbor_strict(data: bytes, format: str) -> Any:
    """Decode exactly one CBOR item; raise MalformedEvidence on errors or trailing bytes."""
    return decode_strict(data, format)


def _record_type(value: Any, where: str) -> str | int:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF:
        return value
    raise MalformedEvidence(
        _FORMAT, f"{where}: type must be a media type or a Content-Format, got {value!r}"
    )


def _indicator(items: list[Any], where: str) -> int | None:
    if len(items) < 3:
        return None
    value = items[2]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 31:
        return value
    raise MalformedEvidence(_FORMAT, f"{where}: indicator must be an integer 0..31")


def _from_cbor_item(item: Any, depth: int, where: str = "CMW") -> CmwRecord | CmwCollection:
    if depth > _MAX_DEPTH:
        raise MalformedEvidence(_FORMAT, f"collections nested deeper than {_MAX_DEPTH}")
    if isinstance(item, cbor2.CBORTag) and _TAG_BASE <= item.tag <= _TAG_LAST:
        if not isinstance(item.value, bytes):
            raise MalformedEvidence(_FORMAT, f"{where}: tagged CMW must wrap a byte string")
        return CmwRecord(item.tag - _TAG_BASE, item.value)
    if isinstance(item, list):
        if len(item) not in (2, 3):
            raise MalformedEvidence(_FORMAT, f"{where}: record must have 2 or 3 elements")
        if not isinstance(item[1], bytes):
            raise MalformedEvidence(_FORMAT, f"{where}: record value must be a byte string")
        return CmwRecord(_record_type(item[0], where), item[1], _indicator(item, where))
    if isinstance(item, dict):
        return _collection(item, depth, where, lambda v, d, w: _from_cbor_item(v, d, w))
    raise MalformedEvidence(_FORMAT, f"{where}: expected a record, a tag or a collection")


def _from_json_item(item: Any, depth: int, where: str = "CMW") -> CmwRecord | CmwCollection:
    if depth > _MAX_DEPTH:
        raise MalformedEvidence(_FORMAT, f"collections nested deeper than {_MAX_DEPTH}")
    if isinstance(item, list):
        if len(item) not in (2, 3) or not isinstance(item[1], str):
            raise MalformedEvidence(
                _FORMAT, f"{where}: JSON record must be [type, base64url value, ?indicator]"
            )
        try:
            padded = item[1] + "=" * (-len(item[1]) % 4)
            value = base64.b64decode(padded, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise MalformedEvidence(_FORMAT, f"{where}: value is not base64url") from None
        return CmwRecord(_record_type(item[0], where), value, _indicator(item, where))
    if isinstance(item, dict):
        return _collection(item, depth, where, lambda v, d, w: _from_json_item(v, d, w))
    raise MalformedEvidence(_FORMAT, f"{where}: expected a record or a collection")


def _collection(mapping: dict[Any, Any], depth: int, where: str, parse: Any) -> CmwCollection:
    collection_type = mapping.get(COLLECTION_TYPE_KEY)
    if collection_type is not None and not isinstance(collection_type, str):
        raise MalformedEvidence(_FORMAT, f"{where}: {COLLECTION_TYPE_KEY} must be a string")
    items: dict[str | int, CmwRecord | CmwCollection] = {}
    for label, value in mapping.items():
        if label == COLLECTION_TYPE_KEY:
            continue
        if not isinstance(label, str | int) or isinstance(label, bool):
            raise MalformedEvidence(_FORMAT, f"{where}: collection label {label!r} is invalid")
        items[label] = parse(value, depth + 1, f"{where}[{label!r}]")
    if not items:
        raise MalformedEvidence(_FORMAT, f"{where}: collection is empty")
    return CmwCollection(items, collection_type)
