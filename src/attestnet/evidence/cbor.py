"""Decode untrusted CBOR: exactly one item, no trailing bytes, valid UTF-8 text.

Every evidence format that is CBOR decodes through `decode_strict`, for two reasons
that are facts about cbor2 5.9 (the release that `cwt` 3.3 allows):

- Its C decoder leaks the exception object (with its traceback) each time a text
  string is not valid UTF-8, about 2 KB per malformed input, so a verifier fed
  crafted evidence would grow without bound. Text is therefore decoded with
  ``surrogateescape``, which never raises, and invalid bytes, which that handler
  turns into lone surrogates, are rejected afterwards.
- Its semantic tag decoders (UUID, decimal fraction, dates ...) raise arbitrary
  exceptions on crafted content (AssertionError, TypeError ...), so any exception
  from the decoder means malformed input.
"""

from __future__ import annotations

import io
import re
from typing import Any

import cbor2

from attestnet.errors import MalformedEvidence

__all__ = ["decode_strict", "loads_untrusted"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_invalid_text(item: Any) -> None:
    stack = [item]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str:
            if not value.isascii() and _SURROGATE.search(value):
                raise ValueError("text string is not valid UTF-8")
        elif kind is list or kind is tuple:
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif kind is cbor2.CBORTag:
            stack.append(value.value)


def loads_untrusted(data: bytes) -> tuple[Any, int]:
    """Decode the first CBOR item of `data`; return it and the number of bytes read.

    Raises ValueError for any decoding failure, including invalid UTF-8 text.
    """
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream, str_errors="surrogateescape").decode()
    except Exception as exc:
        # See the module docstring: semantic tag decoders raise arbitrary exceptions.
        raise ValueError(str(exc) or type(exc).__name__) from None
    _reject_invalid_text(item)
    return item, stream.tell()


def decode_strict(data: bytes | bytearray, format: str, what: str = "CBOR item") -> Any:
    """Decode exactly one CBOR item; raise MalformedEvidence naming `format` and `what`."""
    if not isinstance(data, bytes | bytearray):
        raise MalformedEvidence(format, f"{what}: expected bytes, got {type(data).__name__}")
    if not data:
        raise MalformedEvidence(format, f"{what}: empty input")
    try:
        item, length = loads_untrusted(bytes(data))
    except ValueError as exc:
        raise MalformedEvidence(format, f"{what}: invalid CBOR: {exc}") from None
    if length != len(data):
        raise MalformedEvidence(
            format, f"{what}: {len(data) - length} trailing bytes after offset {length}"
        )
    return item
