"""Helpers shared by the subcommands: time and hex arguments, evidence files, output."""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import re
import string
from datetime import UTC, datetime
from pathlib import Path

from attestnet.errors import ConfigError

__all__ = [
    "collateral_cache_dir",
    "parse_hex",
    "parse_time",
    "read_evidence_file",
]

_HEX = set(string.hexdigits + string.whitespace)
_BASE64 = set(string.ascii_letters + string.digits + "+/=-_" + string.whitespace)
_JWT = re.compile(rb"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time (``2024-01-01T00:00:00Z``) for argparse."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}; use RFC 3339 such as 2024-01-01T00:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"time {text!r} has no time zone; add Z for UTC or an offset such as +02:00"
        )
    return value.astimezone(UTC)


def parse_hex(text: str) -> bytes:
    """Parse a non-empty hex string of whole bytes, with an optional 0x prefix."""
    digits = text[2:] if text.lower().startswith("0x") else text
    if not digits or len(digits) % 2:
        raise argparse.ArgumentTypeError(
            f"invalid hex value {text!r}; give whole bytes, two hex digits each"
        )
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid hex value {text!r}") from None


def read_evidence_file(path: Path) -> bytes:
    """Read evidence, decoding hex or base64 text files (a JWT stays as it is)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read evidence file {path}: {exc.strerror}") from None
    if not data.strip():
        raise ConfigError(f"evidence file {path} is empty")
    text = data.strip()
    if _JWT.match(text):
        return text
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return data
    if set(decoded) <= _HEX:
        try:
            return binascii.unhexlify("".join(decoded.split()))
        except binascii.Error:
            pass
    if set(decoded) <= _BASE64:
        compact = "".join(decoded.split())
        try:
            return base64.b64decode(
                compact + "=" * (-len(compact) % 4),
                altchars=b"-_" if "-" in compact or "_" in compact else None,
            )
        except binascii.Error:
            pass
    return data


def collateral_cache_dir() -> Path:
    """Return the collateral cache: $ATTESTNET_COLLATERAL_CACHE or the XDG cache folder."""
    override = os.environ.get("ATTESTNET_COLLATERAL_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "attestnet" / "collateral"
