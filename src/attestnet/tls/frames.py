"""Frames that carry the attestation exchange on the TLS stream, before application data.

Each frame is `type(1) || length(uint24) || body`. A frame whose announced length
exceeds the receiver's maximum frame size is rejected before its body is read. After a
side has sent its `DONE` frame, every further byte it sends is application data.
docs/protocol.md gives each frame's body.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from attestnet.tls.errors import (
    AlertDescription,
    FrameTooLarge,
    MalformedMessage,
    UnexpectedMessage,
)

__all__ = [
    "FRAME_HEADER_SIZE",
    "PROTOCOL_VERSION",
    "Frame",
    "FrameBuffer",
    "FrameType",
    "Hello",
    "decode_error",
    "decode_hello",
    "encode_error",
    "encode_frame",
    "encode_hello",
]

FRAME_HEADER_SIZE = 4
PROTOCOL_VERSION = 1
_MAX_REASON = 1024


class FrameType(IntEnum):
    HELLO = 1
    AUTHENTICATOR_REQUEST = 2
    AUTHENTICATOR = 3
    DONE = 4
    ERROR = 5


@dataclass(frozen=True)
class Frame:
    type: FrameType
    body: bytes


def encode_frame(frame_type: FrameType, body: bytes) -> bytes:
    if len(body) > 0xFFFFFF:
        raise ValueError(f"frame body of {len(body)} bytes does not fit a uint24 length")
    return bytes([frame_type]) + len(body).to_bytes(3, "big") + body


class FrameBuffer:
    """Accumulate received bytes and cut them into frames.

    `next_frame` returns None until a whole frame has arrived. `take_rest` hands
    over the bytes after the last frame once the peer's DONE has been read.
    """

    def __init__(self, max_frame_size: int) -> None:
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> Frame | None:
        if not self._buffer:
            return None
        raw_type = self._buffer[0]
        try:
            frame_type = FrameType(raw_type)
        except ValueError:
            raise UnexpectedMessage(
                f"unknown attestation frame type 0x{raw_type:02x}; the peer may have sent "
                "application data before attestation completed"
            ) from None
        if len(self._buffer) < FRAME_HEADER_SIZE:
            return None
        length = int.from_bytes(self._buffer[1:4], "big")
        if length > self._max_frame_size:
            raise FrameTooLarge(
                f"{frame_type.name} frame announces {length} bytes, more than the maximum "
                f"frame size {self._max_frame_size}"
            )
        end = FRAME_HEADER_SIZE + length
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[FRAME_HEADER_SIZE:end])
        del self._buffer[:end]
        return Frame(frame_type, body)

    def pending(self) -> int:
        return len(self._buffer)

    def take_rest(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest


@dataclass(frozen=True)
class Hello:
    """The first frame of each side: what it requests of the peer and what it offers."""

    version: int
    requests_attestation: bool
    offers_attestation: bool


_FLAG_REQUESTS = 0x01
_FLAG_OFFERS = 0x02


def encode_hello(hello: Hello) -> bytes:
    flags = (_FLAG_REQUESTS if hello.requests_attestation else 0) | (
        _FLAG_OFFERS if hello.offers_attestation else 0
    )
    return bytes([hello.version, flags])


def decode_hello(body: bytes) -> Hello:
    if len(body) != 2:
        raise MalformedMessage(f"HELLO frame body has {len(body)} bytes, expected 2")
    version, flags = body
    if flags & ~(_FLAG_REQUESTS | _FLAG_OFFERS):
        raise MalformedMessage(f"HELLO frame has unknown flag bits 0x{flags:02x}")
    return Hello(version, bool(flags & _FLAG_REQUESTS), bool(flags & _FLAG_OFFERS))


def encode_error(alert: AlertDescription, reason: str) -> bytes:
    text = reason.encode("utf-8", "replace")[:_MAX_REASON]
    return bytes([alert]) + len(text).to_bytes(2, "big") + text


def decode_error(body: bytes) -> tuple[int, str]:
    if len(body) < 3:
        raise MalformedMessage(f"ERROR frame body has {len(body)} bytes, at least 3 expected")
    length = int.from_bytes(body[1:3], "big")
    if len(body) != 3 + length:
        raise MalformedMessage(
            f"ERROR frame reason length {length} does not match body size {len(body)}"
        )
    if length > _MAX_REASON:
        raise MalformedMessage(f"ERROR frame reason has {length} bytes, at most {_MAX_REASON}")
    # The reason ends up in log lines: control characters (newlines) are escaped so
    # that a peer cannot forge log entries.
    text = body[3:].decode("utf-8", "replace")
    return body[0], "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
