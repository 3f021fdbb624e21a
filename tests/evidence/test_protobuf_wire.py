"""Tests for the protobuf wire-format reader."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestnet.errors import MalformedEvidence
from attestnet.evidence.protobuf_wire import (
    Field,
    WireType,
    iter_fields,
    parse_message,
    read_varint,
)


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_field(number: int, value: int | bytes, wire_type: WireType | None = None) -> bytes:
    """Encode one field; ints default to VARINT and bytes to LEN."""
    if wire_type is None:
        wire_type = WireType.LEN if isinstance(value, bytes) else WireType.VARINT
    tag = encode_varint(number << 3 | wire_type)
    if wire_type == WireType.VARINT:
        assert isinstance(value, int)
        return tag + encode_varint(value)
    if wire_type == WireType.I64:
        assert isinstance(value, int)
        return tag + value.to_bytes(8, "little")
    if wire_type == WireType.I32:
        assert isinstance(value, int)
        return tag + value.to_bytes(4, "little")
    assert isinstance(value, bytes)
    return tag + encode_varint(len(value)) + value


# --- varints -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "value"),
    [
        (b"\x00", 0),
        (b"\x01", 1),
        (b"\x7f", 127),
        (b"\x96\x01", 150),
        (b"\xff\xff\x03", 65535),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", (1 << 64) - 1),
    ],
)
def test_varint_known_values(encoded: bytes, value: int) -> None:
    assert read_varint(encoded, 0) == (value, len(encoded))


def test_varint_offset_and_next_offset() -> None:
    assert read_varint(b"\xaa\x96\x01\x05", 1) == (150, 3)


def test_varint_truncated() -> None:
    with pytest.raises(MalformedEvidence, match="truncated varint"):
        read_varint(b"\x96", 0)


def test_varint_empty() -> None:
    with pytest.raises(MalformedEvidence, match="truncated varint"):
        read_varint(b"", 0)


def test_varint_beyond_64_bits() -> None:
    with pytest.raises(MalformedEvidence, match="64 bits"):
        read_varint(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 0)


def test_varint_longer_than_ten_bytes() -> None:
    with pytest.raises(MalformedEvidence, match="longer than 10 bytes"):
        read_varint(b"\x80" * 10 + b"\x00", 0)


def test_varint_error_names_format() -> None:
    with pytest.raises(MalformedEvidence) as info:
        read_varint(b"\x80", 0, "gotpm")
    assert info.value.format == "gotpm"


# --- fields --------------------------------------------------------------------------


def test_fields_all_wire_types() -> None:
    data = (
        encode_field(1, 150)
        + encode_field(2, b"abc")
        + encode_field(3, 0x0102030405060708, WireType.I64)
        + encode_field(4, 0x01020304, WireType.I32)
    )
    fields = list(iter_fields(data))
    assert [f.number for f in fields] == [1, 2, 3, 4]
    assert fields[0] == Field(1, WireType.VARINT, 150, 0)
    assert fields[1].value == b"abc"
    assert fields[2].value == 0x0102030405060708
    assert fields[3].value == 0x01020304


def test_fields_large_field_number() -> None:
    data = encode_field((1 << 29) - 1, 7)
    assert [f.number for f in iter_fields(data)] == [(1 << 29) - 1]


def test_fields_empty_message() -> None:
    assert list(iter_fields(b"")) == []


@pytest.mark.parametrize("wire_type", [3, 4, 6, 7])
def test_fields_reject_group_and_unknown_wire_types(wire_type: int) -> None:
    with pytest.raises(MalformedEvidence, match="unsupported wire type"):
        list(iter_fields(bytes([1 << 3 | wire_type, 0])))


def test_fields_reject_field_number_zero() -> None:
    with pytest.raises(MalformedEvidence, match="invalid field number 0"):
        list(iter_fields(b"\x00\x00"))


def test_fields_reject_field_number_too_large() -> None:
    with pytest.raises(MalformedEvidence, match="invalid field number"):
        list(iter_fields(encode_varint(1 << 32) + b"\x00"))


@pytest.mark.parametrize(
    "data",
    [
        encode_field(1, b"abcdef")[:-1],
        encode_field(1, 1 << 40)[:-1],
        encode_field(1, 5, WireType.I64)[:-1],
        encode_field(1, 5, WireType.I32)[:-1],
        b"\x0a",
        b"\x0a\xff",
    ],
)
def test_fields_truncated(data: bytes) -> None:
    with pytest.raises(MalformedEvidence, match="truncated"):
        list(iter_fields(data))


def test_fields_length_beyond_data() -> None:
    data = b"\x0a" + encode_varint(1 << 40) + b"xyz"
    with pytest.raises(MalformedEvidence, match="needs 1099511627776 bytes"):
        list(iter_fields(data))


# --- Message accessors ----------------------------------------------------------------


def test_message_accessors() -> None:
    inner = encode_field(1, 7)
    data = (
        encode_field(1, 42)
        + encode_field(2, b"payload")
        + encode_field(3, inner)
        + encode_field(3, inner)
        + encode_field(4, 9, WireType.I32)
        + encode_field(5, 10, WireType.I64)
        + encode_field(99, b"unknown")
    )
    message = parse_message(data)
    assert message.varint(1) == 42
    assert message.bytes_field(2) == b"payload"
    assert [m.varint(1) for m in message.repeated_messages(3)] == [7, 7]
    assert message.fixed32(4) == 9
    assert message.fixed64(5) == 10
    assert message.unknown_numbers({1, 2, 3, 4, 5}) == [99]
    assert message.has(99)
    assert not message.has(6)


def test_message_defaults_for_absent_fields() -> None:
    message = parse_message(b"")
    assert message.varint(1) == 0
    assert message.varint(1, default=5) == 5
    assert message.bytes_field(2) == b""
    assert message.fixed32(3) == 0
    assert message.fixed64(4) == 0
    assert message.message(5) is None
    assert message.repeated_bytes(6) == []


def test_message_rejects_duplicate_singular_field() -> None:
    message = parse_message(encode_field(1, b"a") + encode_field(1, b"b"))
    with pytest.raises(MalformedEvidence, match="singular field 1 occurs 2 times"):
        message.bytes_field(1)


def test_message_repeated_field_keeps_order() -> None:
    message = parse_message(encode_field(1, b"a") + encode_field(1, b"b"))
    assert message.repeated_bytes(1) == [b"a", b"b"]


def test_message_rejects_wrong_wire_type() -> None:
    message = parse_message(encode_field(1, 5))
    with pytest.raises(MalformedEvidence, match="wire type VARINT, expected LEN"):
        message.bytes_field(1)


def test_message_rejects_wrong_wire_type_in_repeated() -> None:
    message = parse_message(encode_field(1, b"a") + encode_field(1, 5))
    with pytest.raises(MalformedEvidence, match="expected LEN"):
        message.repeated_bytes(1)


def test_message_nested_malformed() -> None:
    message = parse_message(encode_field(1, b"\x0a\x05ab"))
    with pytest.raises(MalformedEvidence, match="truncated"):
        message.message(1)


def test_message_error_uses_format() -> None:
    with pytest.raises(MalformedEvidence, match=r"^malformed gotpm"):
        parse_message(b"\x0a\x05", "gotpm")


# --- property tests ------------------------------------------------------------------

_field_values = st.one_of(
    st.tuples(st.just(WireType.VARINT), st.integers(0, (1 << 64) - 1)),
    st.tuples(st.just(WireType.I64), st.integers(0, (1 << 64) - 1)),
    st.tuples(st.just(WireType.I32), st.integers(0, (1 << 32) - 1)),
    st.tuples(st.just(WireType.LEN), st.binary(max_size=300)),
)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(1, (1 << 29) - 1), _field_values), max_size=20))
def test_fields_round_trip(fields: list[tuple[int, tuple[WireType, int | bytes]]]) -> None:
    data = b"".join(encode_field(n, value, wire) for n, (wire, value) in fields)
    decoded = list(iter_fields(data))
    assert [(f.number, f.wire_type, f.value) for f in decoded] == [
        (n, wire, value) for n, (wire, value) in fields
    ]


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        message = parse_message(data)
    except MalformedEvidence:
        return
    for number in {f.number for f in message.fields}:
        try:
            message.message(number)
            message.varint(number)
        except MalformedEvidence:
            pass
