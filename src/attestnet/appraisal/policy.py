"""Appraisal policies: what a relying party accepts, loaded from TOML or built in code.

A policy file looks like this (paths are relative to the file)::

    id = "dpu-fleet-2026"
    allowed = ["tpm", "sim"]        # evidence formats; "sim" only when listed
    debug_allowed = false
    tcb_status_allowed = ["UpToDate"]   # Intel DCAP TCB statuses; the default

    [anchors]
    tpm = ["tpm-ca.pem"]            # certificates, PEM public keys or JWKs
    sim = ["sim-platform.pem"]

    [collateral]
    snp = ["vcek-cache/"]           # intermediates, CRLs, collateral JSON

    [reference_values.tpm]
    "pcr/sha256/7" = ["<hex>", "<hex>"]   # any listed value is accepted

    [instance_ids]
    tpm = ["<hex>"]                 # pinned identities (UEID, chip id, AK name)

    [min_tcb.snp]
    bootloader = 3

There is no permissive default: an empty policy allows no format, and every allowed
format needs trust anchors and reference values unless the policy sets
``unsafe_skip_reference_values``.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attestnet.errors import ConfigError, PolicyError
from attestnet.evidence.anchors import load_anchors, load_collateral
from attestnet.evidence.model import Collateral, TrustAnchors

__all__ = ["Policy", "load_policy", "parse_policy"]

logger = logging.getLogger(__name__)

FORMATS_WITHOUT_MEASUREMENTS = frozenset({"ear"})

_TOP_LEVEL_KEYS = {
    "id",
    "allowed",
    "debug_allowed",
    "unsafe_skip_reference_values",
    "anchors",
    "collateral",
    "reference_values",
    "instance_ids",
    "min_tcb",
    "tcb_status_allowed",
}


@dataclass(frozen=True)
class Policy:
    """The acceptance rules of a relying party, built by `load_policy` or in code."""

    id: str
    allowed: frozenset[str]
    anchors: Mapping[str, TrustAnchors] = field(default_factory=dict)
    collateral: Mapping[str, Collateral] = field(default_factory=dict)
    reference_values: Mapping[str, Mapping[str, frozenset[bytes]]] = field(default_factory=dict)
    instance_ids: Mapping[str, frozenset[bytes]] = field(default_factory=dict)
    min_tcb: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    debug_allowed: bool = False
    unsafe_skip_reference_values: bool = False
    tcb_status_allowed: frozenset[str] = frozenset({"UpToDate"})
    """Intel DCAP TCB statuses accepted (UpToDate, SWHardeningNeeded, OutOfDate ...)."""

    def __post_init__(self) -> None:
        for format in sorted(self.allowed):
            anchors = self.anchors.get(format)
            if anchors is None or anchors.is_empty():
                raise PolicyError(
                    f"policy {self.id!r}: format {format!r} is allowed but has no trust anchors; "
                    f"add [anchors] {format} = [...]"
                )
            # Attestation results carry a verdict, not measurements.
            needs_reference_values = format not in FORMATS_WITHOUT_MEASUREMENTS
            if (
                needs_reference_values
                and not self.unsafe_skip_reference_values
                and not self.reference_values.get(format)
            ):
                raise PolicyError(
                    f"policy {self.id!r}: format {format!r} is allowed but has no reference "
                    f"values; add [reference_values.{format}]"
                )
        for format, pinned in self.instance_ids.items():
            if not pinned:
                raise PolicyError(
                    f"policy {self.id!r}: instance_ids.{format} is empty, which would pin "
                    "nothing; list the instance ids or remove the entry"
                )
        if self.unsafe_skip_reference_values:
            # The verifier logs a warning each time it skips them; this is the set-up note.
            logger.info(
                "policy %r sets unsafe_skip_reference_values: measurements are not appraised",
                self.id,
            )


def _expect(value: Any, kind: type | tuple[type, ...], where: str, hint: str) -> Any:
    if not isinstance(value, kind):
        raise PolicyError(f"{where}: invalid value {value!r}; expected {hint}")
    return value


def _hex(value: Any, where: str) -> bytes:
    _expect(value, str, where, "a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise PolicyError(f"{where}: {value!r} is not a hex string") from None


def _paths(value: Any, where: str, base: Path) -> list[Path]:
    items = _expect(value, list, where, "a list of file paths")
    return [base / _expect(item, str, where, "a file path") for item in items]


def _per_format(document: dict[str, Any], key: str) -> dict[str, Any]:
    return dict(_expect(document.get(key, {}), dict, key, "a table keyed by format name"))


def parse_policy(document: dict[str, Any], base: Path) -> Policy:
    """Build a Policy from a parsed TOML document; `base` resolves relative paths."""
    unknown = set(document) - _TOP_LEVEL_KEYS
    if unknown:
        raise PolicyError(
            f"unknown policy keys {sorted(unknown)}; known keys: {sorted(_TOP_LEVEL_KEYS)}"
        )
    policy_id = _expect(document.get("id"), str, "id", "a policy name string")
    allowed = _expect(document.get("allowed"), list, "allowed", "a list of format names")

    try:
        anchors = {
            fmt: load_anchors(_paths(v, f"anchors.{fmt}", base))
            for fmt, v in _per_format(document, "anchors").items()
        }
        collateral = {
            fmt: load_collateral(_paths(v, f"collateral.{fmt}", base))
            for fmt, v in _per_format(document, "collateral").items()
        }
    except ConfigError as exc:
        raise PolicyError(f"policy {policy_id!r}: {exc}") from None

    reference_values: dict[str, dict[str, frozenset[bytes]]] = {}
    for fmt, table in _per_format(document, "reference_values").items():
        _expect(table, dict, f"reference_values.{fmt}", "a table of measurement names")
        reference_values[fmt] = {
            name: frozenset(
                _hex(v, f"reference_values.{fmt}.{name}")
                for v in _expect(values, list, f"reference_values.{fmt}.{name}", "a list of hex")
            )
            for name, values in table.items()
        }

    instance_ids = {
        fmt: frozenset(
            _hex(v, f"instance_ids.{fmt}")
            for v in _expect(values, list, f"instance_ids.{fmt}", "a list of hex strings")
        )
        for fmt, values in _per_format(document, "instance_ids").items()
    }

    min_tcb: dict[str, dict[str, int]] = {}
    for fmt, table in _per_format(document, "min_tcb").items():
        _expect(table, dict, f"min_tcb.{fmt}", "a table of TCB component names")
        min_tcb[fmt] = {
            name: _expect(level, int, f"min_tcb.{fmt}.{name}", "an integer")
            for name, level in table.items()
        }

    return Policy(
        id=policy_id,
        allowed=frozenset(_expect(f, str, "allowed", "format names") for f in allowed),
        anchors=anchors,
        collateral=collateral,
        reference_values=reference_values,
        instance_ids=instance_ids,
        min_tcb=min_tcb,
        debug_allowed=_expect(document.get("debug_allowed", False), bool, "debug_allowed", "bool"),
        tcb_status_allowed=frozenset(
            _expect(status, str, "tcb_status_allowed", "TCB status names")
            for status in _expect(
                document.get("tcb_status_allowed", ["UpToDate"]),
                list,
                "tcb_status_allowed",
                "a list of TCB status names",
            )
        ),
        unsafe_skip_reference_values=_expect(
            document.get("unsafe_skip_reference_values", False),
            bool,
            "unsafe_skip_reference_values",
            "true or false",
        ),
    )


def load_policy(path: str | Path) -> Policy:
    """Load and validate a TOML policy file; raise PolicyError naming the bad value."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy file {path} is not valid TOML: {exc}") from None
    return parse_policy(document, path.parent)
