"""The table of evidence formats: names, CMW media types, and format detection.

Each format module exposes ``FORMAT``, ``looks_like(data)`` and
``verify(data, *, anchors, at, collateral)``. Modules are imported on first use, so
a program that only needs one format does not load the others.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Protocol, cast

from attestnet.errors import ConfigError, MalformedEvidence, UnknownFormat
from attestnet.evidence import cmw
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence

__all__ = [
    "FORMATS",
    "FormatModule",
    "detect",
    "format_for_media_type",
    "load",
    "media_type_for",
    "unwrap",
]


class FormatModule(Protocol):
    FORMAT: str

    def looks_like(self, data: bytes) -> bool: ...

    def verify(
        self,
        data: bytes,
        *,
        anchors: TrustAnchors,
        at: datetime,
        collateral: Collateral | None = None,
    ) -> VerifiedEvidence: ...


@dataclass(frozen=True)
class _Entry:
    module: str
    media_types: tuple[str, ...]


# Detection tries the formats in this order; formats with a distinctive magic
# number or tag come before those recognised by structure alone.
FORMATS: dict[str, _Entry] = {
    "sim": _Entry("attestnet.evidence.sim", ()),
    "tpm": _Entry("attestnet.evidence.tpm", ()),
    "cca": _Entry("attestnet.evidence.cca", ()),
    # The media type Veraison's verifier API uses for PSA tokens.
    "psa": _Entry("attestnet.evidence.psa", ("application/psa-attestation-token",)),
    "nitro": _Entry("attestnet.evidence.nitro", ()),
    "nitro-ratls": _Entry("attestnet.evidence.nitro_ratls", ()),
    "corim": _Entry("attestnet.evidence.corim", ("application/rim+cbor",)),
    "ear": _Entry(
        "attestnet.evidence.ear",
        ('application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"',),
    ),
    "gotpm": _Entry("attestnet.evidence.gotpm", ()),
    "dcap": _Entry("attestnet.evidence.dcap", ()),
    "spdm": _Entry("attestnet.evidence.spdm", ()),
    "sev-snp": _Entry("attestnet.evidence.snp", ()),
}

# Every format is also reachable through this project's own media type, for
# formats that have no registered one (SEV-SNP reports, DCAP quotes, ...).
VENDOR_MEDIA_TYPE_PREFIX = "application/vnd.attestnet."


def load(format: str) -> FormatModule:
    """Return the module of a format name; raise ConfigError listing the known names."""
    entry = FORMATS.get(format)
    if entry is None:
        known = ", ".join(sorted(FORMATS))
        raise ConfigError(f"unknown evidence format {format!r}; use one of: {known}")
    module: ModuleType = importlib.import_module(entry.module)
    return cast(FormatModule, module)


def _media_type_of(module_name: str) -> str | None:
    module = importlib.import_module(module_name)
    value = getattr(module, "MEDIA_TYPE", None)
    return value if isinstance(value, str) else None


def media_type_for(format: str) -> str:
    """Return the media type that names `format` in a CMW record."""
    entry = FORMATS.get(format)
    if entry is None:
        raise ConfigError(f"unknown evidence format {format!r}")
    own = _media_type_of(entry.module) if not entry.media_types else None
    return entry.media_types[0] if entry.media_types else own or VENDOR_MEDIA_TYPE_PREFIX + format


def format_for_media_type(media_type: str | int) -> str:
    """Map a CMW record type to a format name; raise UnknownFormat when none matches."""
    if isinstance(media_type, str) and media_type.startswith(VENDOR_MEDIA_TYPE_PREFIX):
        name = media_type.removeprefix(VENDOR_MEDIA_TYPE_PREFIX)
        if name in FORMATS:
            return name
    for name, entry in FORMATS.items():
        types = entry.media_types or tuple(filter(None, [_media_type_of(entry.module)]))
        if media_type in types:
            return name
    raise UnknownFormat(f"no verifier for CMW media type {media_type!r}")


def unwrap(data: bytes) -> tuple[str | None, bytes]:
    """Return (format, payload) of a CMW record, or (None, data) for bare evidence."""
    try:
        wrapped = cmw.decode(data)
    except MalformedEvidence:
        return None, data
    if isinstance(wrapped, cmw.CmwRecord):
        return format_for_media_type(wrapped.type), wrapped.value
    return None, data


def detect(data: bytes) -> tuple[str, bytes]:
    """Detect the format of `data` (CMW record or bare evidence).

    Returns the format name and the evidence bytes to verify. Raises UnknownFormat
    naming what was tried.
    """
    format, payload = unwrap(data)
    if format is not None:
        return format, payload
    for name in FORMATS:
        if load(name).looks_like(data):
            return name, data
    raise UnknownFormat(
        f"not recognised as any of: {', '.join(FORMATS)}; give the format with --format"
    )
