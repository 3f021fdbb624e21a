from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestnet.errors import MalformedEvidence
from attestnet.evidence import cmw


def test_cbor_record_round_trip() -> None:
    data = cmw.encode_record("application/eat+cwt", b"\x01\x02", cmw.IND_EVIDENCE)
    record = cmw.decode(data)
    assert record == cmw.CmwRecord("application/eat+cwt", b"\x01\x02", 4)


def test_json_record_round_trip() -> None:
    record = cmw.CmwRecord(263, b"\xff" * 5)
    assert cmw.decode(cmw.encode_json(record)) == record


def test_collection_round_trip_both_encodings() -> None:
    collection = cmw.CmwCollection(
        {"platform": cmw.CmwRecord("a/b", b"1"), "realm": cmw.CmwRecord("c/d", b"2", 4)},
        collection_type="tag:example.com,2024:x",
    )
    assert cmw.decode(cmw.encode_cbor(collection)) == collection
    assert cmw.decode(cmw.encode_json(collection)) == collection


def test_tag_form_decodes_content_format() -> None:
    data = cbor2.dumps(cbor2.CBORTag(1668546817 + 263, b"token"))
    assert cmw.decode(data) == cmw.CmwRecord(263, b"token")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (cbor2.dumps(["a/b"]), "2 or 3 elements"),
        (cbor2.dumps(["a/b", "not bytes"]), "byte string"),
        (cbor2.dumps([1.5, b""]), "type must be"),
        (cbor2.dumps(["a/b", b"", 99]), "indicator"),
        (cbor2.dumps({}), "empty"),
        (cbor2.dumps(7), "expected a record"),
        (cmw.encode_record("a/b", b"x") + b"\x00", "trailing"),
        (b'["a/b", "***"]', "base64url"),
        (b"\x9f", "invalid CBOR"),
    ],
)
def test_malformed_cmw_rejected(data: bytes, message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        cmw.decode(data)


def test_deep_nesting_rejected() -> None:
    item: object = ["a/b", b"x"]
    for _ in range(12):
        item = {"n": item}
    with pytest.raises(MalformedEvidence, match="nested deeper"):
        cmw.decode(cbor2.dumps(item))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_decode_fuzz_raises_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        cmw.decode(data)
