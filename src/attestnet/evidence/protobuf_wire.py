"""A minimal, strict reader for the protocol buffers binary wire format.

Evidence containers such as go-tpm-tools' `Attestation` are protobuf messages.
This reader decodes one message level at a time into its fields (tag, wire type,
value) without a schema or generated code, so the caller decides which fields it
expects and how to decode nested messages. It supports the wire types that proto3
encoders emit: VARINT (0), I64 (1), LEN (2) and I32 (5). The deprecated group
wire types (3 and 4) are rejected.

Every read is bounds-checked, and any problem (a truncated varint or field, a
varint longer than 10 bytes or beyond 64 bits, field number 0, an unknown wire
type) raises MalformedEvidence with the byte offset. Nothing else escapes.
Encoding rules follow https://protobuf.dev/programming-guides/encoding/.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from attestnet.errors import MalformedEvidence

__all__ = [
    "Field",
    "Message",
    "WireType",
    "iter_fields",
    "parse_message",
    "read_varint",
]

# A varint carries 7 bits per byte, so a 64-bit value needs at most 10 bytes.
_MAX_VARINT_BYTES = 10
_MAX_FIELD_NUMBER = (1 << 29) - 1


class WireType(IntEnum):
    """The wire types of the protobuf encoding (the low 3 bits of a tag)."""

    VARINT = 0
    I64 = 1
    LEN = 2
    SGROUP = 3
    EGROUP = 4
    I32 = 5


class Field(NamedTuple):
    """One decoded field: its number, wire type, value and the offset of its tag.

    `value` is an int for VARINT, I64 and I32 fields (fixed-width values are read as
    unsigned little-endian) and the payload bytes for LEN fields.
    """

    number: int
    wire_type: WireType
    value: int | bytes
    offset: int


# WireType members by their number, without the cost of an enum lookup per field.
_WIRE_TYPES = tuple(WireType)


def read_varint(data: bytes, offset: int, format: str = "protobuf") -> tuple[int, int]:
    """Decode a base-128 varint at `offset`; return the value and the next offset.

    Raises MalformedEvidence (naming `format`) when the varint is truncated, longer
    than 10 bytes or does not fit in 64 bits.
    """
    if offset < len(data) and data[offset] < 0x80:  # one-byte varints are the common case
        return data[offset], offset + 1
    value = 0
    for index in range(_MAX_VARINT_BYTES):
        position = offset + index
        if position >= len(data):
            raise MalformedEvidence(format, f"truncated varint at offset {offset}")
        byte = data[position]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if value >= 1 << 64:
                raise MalformedEvidence(
                    format, f"varint at offset {offset} does not fit in 64 bits"
                )
            return value, position + 1
    raise MalformedEvidence(format, f"varint at offset {offset} is longer than 10 bytes")


def _take(data: bytes, offset: int, length: int, format: str, what: str) -> bytes:
    end = offset + length
    if end > len(data):
        raise MalformedEvidence(
            format,
            f"truncated {what} at offset {offset}: needs {length} bytes, {len(data) - offset} left",
        )
    return data[offset:end]


def iter_fields(data: bytes, format: str = "protobuf") -> Iterator[Field]:
    """Yield the fields of one message level in wire order.

    The whole of `data` must be fields: a partial field at the end raises
    MalformedEvidence. Nested messages stay LEN payloads for the caller to decode.
    """
    yield from _decode_fields(bytes(data), format)


def _decode_fields(data: bytes, format: str) -> list[Field]:
    # One-byte tags and lengths (below 0x80) are read inline: they are nearly all
    # of them, and a function call per varint would double the cost of a field.
    fields: list[Field] = []
    offset = 0
    size = len(data)
    while offset < size:
        tag_offset = offset
        tag = data[offset]
        if tag < 0x80:
            offset += 1
        else:
            tag, offset = read_varint(data, offset, format)
        number = tag >> 3
        if number == 0 or number > _MAX_FIELD_NUMBER:
            raise MalformedEvidence(format, f"invalid field number {number} at offset {tag_offset}")
        raw_type = tag & 0x07
        value: int | bytes
        if raw_type == 2:  # LEN
            if offset < size and data[offset] < 0x80:
                length = data[offset]
                offset += 1
            else:
                length, offset = read_varint(data, offset, format)
            end = offset + length
            if end > size:
                _take(data, offset, length, format, f"field {number}")  # raises
            value = data[offset:end]
            offset = end
        elif raw_type == 0:  # VARINT
            value, offset = read_varint(data, offset, format)
        elif raw_type == 1:  # I64
            value = int.from_bytes(_take(data, offset, 8, format, "fixed64"), "little")
            offset += 8
        elif raw_type == 5:  # I32
            value = int.from_bytes(_take(data, offset, 4, format, "fixed32"), "little")
            offset += 4
        else:
            raise MalformedEvidence(
                format,
                f"unsupported wire type {raw_type} for field {number} at offset {tag_offset}",
            )
        fields.append(Field(number, _WIRE_TYPES[raw_type], value, tag_offset))
    return fields


@dataclass(frozen=True)
class Message:
    """The decoded fields of one message level, with typed accessors.

    The accessors check the wire type of the field they read. Singular accessors
    (`varint`, `bytes_field`, `fixed32`, `fixed64`) reject a field that occurs more
    than once: the protobuf rule that the last occurrence wins would let two
    readers of the same bytes see different values, so evidence with duplicates is
    rejected instead. Unknown fields are kept and listed by `unknown_numbers`.
    """

    fields: tuple[Field, ...]
    format: str = "protobuf"

    def _all(self, number: int, wire_type: WireType) -> list[Field]:
        found = [f for f in self.fields if f.number == number]
        for item in found:
            if item.wire_type != wire_type:
                raise MalformedEvidence(
                    self.format,
                    f"field {number} at offset {item.offset} has wire type "
                    f"{item.wire_type.name}, expected {wire_type.name}",
                )
        return found

    def _single(self, number: int, wire_type: WireType) -> Field | None:
        found = self._all(number, wire_type)
        if len(found) > 1:
            raise MalformedEvidence(
                self.format,
                f"singular field {number} occurs {len(found)} times "
                f"(offsets {', '.join(str(f.offset) for f in found)})",
            )
        return found[0] if found else None

    def has(self, number: int) -> bool:
        return any(f.number == number for f in self.fields)

    def varint(self, number: int, default: int = 0) -> int:
        found = self._single(number, WireType.VARINT)
        return default if found is None else _as_int(found)

    def fixed32(self, number: int, default: int = 0) -> int:
        found = self._single(number, WireType.I32)
        return default if found is None else _as_int(found)

    def fixed64(self, number: int, default: int = 0) -> int:
        found = self._single(number, WireType.I64)
        return default if found is None else _as_int(found)

    def bytes_field(self, number: int, default: bytes = b"") -> bytes:
        """Return a singular LEN field (bytes, string or nested message payload)."""
        found = self._single(number, WireType.LEN)
        return default if found is None else _as_bytes(found)

    def repeated_bytes(self, number: int) -> list[bytes]:
        """Return every occurrence of a repeated LEN field, in wire order."""
        return [_as_bytes(f) for f in self._all(number, WireType.LEN)]

    def message(self, number: int) -> Message | None:
        """Decode a singular nested message field, or return None when it is absent."""
        found = self._single(number, WireType.LEN)
        return None if found is None else parse_message(_as_bytes(found), self.format)

    def repeated_messages(self, number: int) -> list[Message]:
        return [parse_message(payload, self.format) for payload in self.repeated_bytes(number)]

    def unknown_numbers(self, known: set[int] | frozenset[int]) -> list[int]:
        """Return the field numbers present in the message but not in `known`, sorted."""
        return sorted({f.number for f in self.fields} - set(known))


def _as_int(found: Field) -> int:
    assert isinstance(found.value, int)
    return found.value


def _as_bytes(found: Field) -> bytes:
    assert isinstance(found.value, bytes)
    return found.value


def parse_message(data: bytes, format: str = "protobuf") -> Message:
    """Decode every field of one message level; raise MalformedEvidence on bad input."""
    return Message(tuple(_decode_fields(bytes(data), format)), format)
