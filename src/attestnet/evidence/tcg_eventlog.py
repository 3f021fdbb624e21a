"""TCG PC Client firmware event logs: parsing and PCR replay.

Two layouts exist, both little-endian, both defined by the TCG PC Client Platform
Firmware Profile (PFP) specification:

- The crypto-agile log (TPM 2.0): a first event in the SHA-1 layout
  (TCG_PCClientPCREvent) of type EV_NO_ACTION whose data is a TCG_EfiSpecIDEvent
  starting with "Spec ID Event03", listing the algorithms and digest sizes of the
  log. Every later event is a TCG_PCR_EVENT2 carrying a TPML_DIGEST_VALUES (one
  digest per algorithm).
- The SHA-1 log (TPM 1.2 style): every event is a TCG_PCClientPCREvent with one
  SHA-1 digest.

Replaying a bank extends each PCR in log order, `pcr = H(pcr || digest)`. It skips
EV_NO_ACTION events because the PFP specification excludes them from extension. The
replay only proves that the logged digests produce the PCR values: the event data
itself is not checked against the digests here.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import partial
from typing import Any

from attestnet.errors import MalformedEvidence

__all__ = [
    "EVENT_TYPE_NAMES",
    "EV_NO_ACTION",
    "FORMAT",
    "HASH_ALGORITHMS",
    "Event",
    "EventLog",
    "SpecIdEvent",
    "bank_name",
    "event_type_name",
    "looks_like",
    "parse",
]

FORMAT = "tcg-eventlog"

EV_NO_ACTION = 0x00000003

# Event types of the PFP specification (section "Event Types"), for summaries.
EVENT_TYPE_NAMES: dict[int, str] = {
    0x00000000: "EV_PREBOOT_CERT",
    0x00000001: "EV_POST_CODE",
    0x00000002: "EV_UNUSED",
    0x00000003: "EV_NO_ACTION",
    0x00000004: "EV_SEPARATOR",
    0x00000005: "EV_ACTION",
    0x00000006: "EV_EVENT_TAG",
    0x00000007: "EV_S_CRTM_CONTENTS",
    0x00000008: "EV_S_CRTM_VERSION",
    0x00000009: "EV_CPU_MICROCODE",
    0x0000000A: "EV_PLATFORM_CONFIG_FLAGS",
    0x0000000B: "EV_TABLE_OF_DEVICES",
    0x0000000C: "EV_COMPACT_HASH",
    0x0000000D: "EV_IPL",
    0x0000000E: "EV_IPL_PARTITION_DATA",
    0x0000000F: "EV_NONHOST_CODE",
    0x00000010: "EV_NONHOST_CONFIG",
    0x00000011: "EV_NONHOST_INFO",
    0x00000012: "EV_OMIT_BOOT_DEVICE_EVENTS",
    0x80000000: "EV_EFI_EVENT_BASE",
    0x80000001: "EV_EFI_VARIABLE_DRIVER_CONFIG",
    0x80000002: "EV_EFI_VARIABLE_BOOT",
    0x80000003: "EV_EFI_BOOT_SERVICES_APPLICATION",
    0x80000004: "EV_EFI_BOOT_SERVICES_DRIVER",
    0x80000005: "EV_EFI_RUNTIME_SERVICES_DRIVER",
    0x80000006: "EV_EFI_GPT_EVENT",
    0x80000007: "EV_EFI_ACTION",
    0x80000008: "EV_EFI_PLATFORM_FIRMWARE_BLOB",
    0x80000009: "EV_EFI_HANDOFF_TABLES",
    0x8000000A: "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
    0x8000000B: "EV_EFI_HANDOFF_TABLES2",
    0x8000000C: "EV_EFI_VARIABLE_BOOT2",
    0x80000010: "EV_EFI_HCRTM_EVENT",
    0x800000E0: "EV_EFI_VARIABLE_AUTHORITY",
    0x800000E1: "EV_EFI_SPDM_FIRMWARE_BLOB",
    0x800000E2: "EV_EFI_SPDM_FIRMWARE_CONFIG",
}

# TPM_ALG_ID -> (name, hashlib name, digest size), from the TCG Algorithm Registry.
HASH_ALGORITHMS: dict[int, tuple[str, str, int]] = {
    0x0004: ("sha1", "sha1", 20),
    0x000B: ("sha256", "sha256", 32),
    0x000C: ("sha384", "sha384", 48),
    0x000D: ("sha512", "sha512", 64),
    0x0012: ("sm3_256", "sm3", 32),
    0x0027: ("sha3_256", "sha3_256", 32),
    0x0028: ("sha3_384", "sha3_384", 48),
    0x0029: ("sha3_512", "sha3_512", 64),
}
_TPM_ALG_SHA1 = 0x0004

# The largest digest a TPM algorithm defines (SHA-512, SHA3-512); a log that
# declares a larger size for an unknown algorithm is rejected.
_MAX_DIGEST_SIZE = 64

_SPEC_ID_SIGNATURE = b"Spec ID Event03\x00"
_STARTUP_LOCALITY_SIGNATURE = b"StartupLocality\x00"

# TCG_PCClientPCREvent: pcrIndex u32, eventType u32, digest[20], eventSize u32.
_SHA1_EVENT_HEADER = 4 + 4 + 20 + 4
# TCG_EfiSpecIDEvent fixed part: signature[16], platformClass u32,
# specVersionMinor u8, specVersionMajor u8, specErrata u8, uintnSize u8,
# numberOfAlgorithms u32.
_SPEC_ID_FIXED = 16 + 4 + 4 + 4


def event_type_name(event_type: int) -> str:
    return EVENT_TYPE_NAMES.get(event_type, f"0x{event_type:08x}")


def bank_name(algorithm: int) -> str:
    """Return the bank name used in measurement names ("sha256"), or the hex TPM_ALG_ID."""
    known = HASH_ALGORITHMS.get(algorithm)
    return known[0] if known else f"alg_0x{algorithm:04x}"


@dataclass(frozen=True)
class SpecIdEvent:
    """The TCG_EfiSpecIDEvent header of a crypto-agile log."""

    platform_class: int
    spec_version: tuple[int, int]
    spec_errata: int
    uintn_size: int
    algorithms: tuple[tuple[int, int], ...]
    """(TPM_ALG_ID, digest size) pairs in header order."""
    vendor_info: bytes


@dataclass(frozen=True)
class Event:
    """One logged event; `digests` maps TPM_ALG_ID to the digest that was extended."""

    sequence: int
    """Position in the log, counting the Spec ID header event as 0 where there is one."""
    pcr: int
    event_type: int
    digests: tuple[tuple[int, bytes], ...]
    data: bytes
    offset: int

    @property
    def type_name(self) -> str:
        return event_type_name(self.event_type)

    def digest(self, algorithm: int) -> bytes | None:
        for alg, value in self.digests:
            if alg == algorithm:
                return value
        return None


@dataclass(frozen=True)
class EventLog:
    """A parsed event log; `spec_id` is None for a SHA-1 log."""

    spec_id: SpecIdEvent | None
    events: tuple[Event, ...]

    @property
    def crypto_agile(self) -> bool:
        return self.spec_id is not None

    @property
    def algorithms(self) -> tuple[int, ...]:
        """The TPM_ALG_IDs of the banks the log records, in header order."""
        if self.spec_id is None:
            return (_TPM_ALG_SHA1,)
        return tuple(alg for alg, _ in self.spec_id.algorithms)

    def measured_pcrs(self) -> list[int]:
        """Return the PCRs that at least one extending (not EV_NO_ACTION) event names."""
        return sorted({e.pcr for e in self.events if e.event_type != EV_NO_ACTION})

    def startup_locality(self) -> int | None:
        """Return the locality of the StartupLocality EV_NO_ACTION event, if the log has one."""
        for event in self.events:
            if (
                event.event_type == EV_NO_ACTION
                and event.pcr == 0
                and event.data.startswith(_STARTUP_LOCALITY_SIGNATURE)
                and len(event.data) == len(_STARTUP_LOCALITY_SIGNATURE) + 1
            ):
                return event.data[-1]
        return None

    def replay(self, algorithm: int) -> dict[int, bytes]:
        """Replay one bank and return the final value of every PCR the log extends.

        PCRs start at zero, except PCR 0 when the log has a StartupLocality
        EV_NO_ACTION event: then its last byte is the locality that event gives
        (PFP "Startup Locality Event"). Raises MalformedEvidence when the bank is not in
        the log, its hash is not available, or an extending event lacks its digest.
        """
        if algorithm not in self.algorithms:
            raise MalformedEvidence(
                FORMAT, f"the log has no {bank_name(algorithm)} bank ({self.algorithm_names()})"
            )
        known = HASH_ALGORITHMS.get(algorithm)
        if known is None or known[1] not in hashlib.algorithms_available:
            raise MalformedEvidence(FORMAT, f"cannot replay bank {bank_name(algorithm)}")
        hash_name, size = known[1], known[2]
        hash_function = getattr(hashlib, hash_name, None) or partial(hashlib.new, hash_name)

        # NOTE: PCRs 17-22 reset to all ones at TPM2_Startup and to zero only by a
        # D-RTM launch. A log that extends them is assumed to follow that launch.
        values: dict[int, bytes] = {}
        locality = self.startup_locality()
        for event in self.events:
            if event.event_type == EV_NO_ACTION:
                continue
            digest = event.digest(algorithm)
            if digest is None:
                raise MalformedEvidence(
                    FORMAT,
                    f"event {event.sequence} (PCR {event.pcr}, {event.type_name}) at offset "
                    f"{event.offset} has no {bank_name(algorithm)} digest",
                )
            current = values.get(event.pcr)
            if current is None:
                current = bytes(size)
                if event.pcr == 0 and locality is not None:
                    current = bytes(size - 1) + bytes([locality])
            values[event.pcr] = hash_function(current + digest).digest()
        return values

    def algorithm_names(self) -> str:
        return ", ".join(bank_name(alg) for alg in self.algorithms)

    def summary(self) -> dict[str, Any]:
        """Return a JSON-friendly summary: event count and event types per PCR."""
        per_pcr: dict[int, dict[int, int]] = {}
        no_action = 0
        for event in self.events:
            if event.event_type == EV_NO_ACTION:
                no_action += 1
                continue
            counts = per_pcr.setdefault(event.pcr, {})
            counts[event.event_type] = counts.get(event.event_type, 0) + 1
        pcrs: dict[str, Any] = {}
        for pcr, counts in sorted(per_pcr.items()):
            types = sorted((event_type_name(t), count) for t, count in counts.items())
            pcrs[str(pcr)] = {"count": sum(counts.values()), "types": dict(types)}
        return {
            "layout": "crypto-agile" if self.crypto_agile else "sha1",
            "banks": [bank_name(alg) for alg in self.algorithms],
            "events": len(self.events),
            "no_action_events": no_action,
            "pcrs": pcrs,
        }


class _Reader:
    """Bounds-checked little-endian reads over the log bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def remaining(self) -> int:
        return len(self.data) - self.offset

    def take(self, length: int, what: str) -> bytes:
        if length > self.remaining():
            raise MalformedEvidence(
                FORMAT,
                f"truncated {what} at offset {self.offset}: needs {length} bytes, "
                f"{self.remaining()} left",
            )
        chunk = self.data[self.offset : self.offset + length]
        self.offset += length
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "little")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "little")


def _read_sha1_event(reader: _Reader, sequence: int) -> Event:
    offset = reader.offset
    pcr = reader.u32("pcrIndex")
    event_type = reader.u32("eventType")
    digest = reader.take(20, "SHA-1 digest")
    size = reader.u32("eventSize")
    data = reader.take(size, "event data")
    return Event(sequence, pcr, event_type, ((_TPM_ALG_SHA1, digest),), data, offset)


def _parse_spec_id(data: bytes) -> SpecIdEvent:
    if len(data) < _SPEC_ID_FIXED:
        raise MalformedEvidence(FORMAT, f"Spec ID event is {len(data)} bytes, too short")
    reader = _Reader(data)
    reader.take(16, "Spec ID signature")

    platform_class = reader.u32("platformClass")
    minor = reader.u8("specVersionMinor")
    major = reader.u8("specVersionMajor")
    errata = reader.u8("specErrata")
    uintn_size = reader.u8("uintnSize")

    count = reader.u32("numberOfAlgorithms")
    # Each entry is 4 bytes, so the count cannot exceed what the data holds.
    if count == 0 or count * 4 > reader.remaining():
        raise MalformedEvidence(
            FORMAT, f"Spec ID event lists {count} algorithms in {reader.remaining()} bytes"
        )
    algorithms: list[tuple[int, int]] = []
    for _ in range(count):
        algorithm = reader.u16("algorithmId")
        size = reader.u16("digestSize")
        known = HASH_ALGORITHMS.get(algorithm)
        if known is not None and known[2] != size:
            raise MalformedEvidence(
                FORMAT,
                f"Spec ID event gives {known[0]} digest size {size}, expected {known[2]}",
            )
        if not 0 < size <= _MAX_DIGEST_SIZE:
            raise MalformedEvidence(
                FORMAT, f"Spec ID event gives algorithm 0x{algorithm:04x} digest size {size}"
            )
        if any(alg == algorithm for alg, _ in algorithms):
            raise MalformedEvidence(
                FORMAT, f"Spec ID event lists algorithm 0x{algorithm:04x} twice"
            )
        algorithms.append((algorithm, size))

    vendor_size = reader.u8("vendorInfoSize")
    vendor_info = reader.take(vendor_size, "vendorInfo")
    if reader.remaining():
        raise MalformedEvidence(FORMAT, f"Spec ID event has {reader.remaining()} trailing bytes")
    return SpecIdEvent(
        platform_class, (major, minor), errata, uintn_size, tuple(algorithms), vendor_info
    )


def _read_event2(reader: _Reader, sequence: int, sizes: dict[int, int]) -> Event:
    offset = reader.offset
    pcr = reader.u32("pcrIndex")
    event_type = reader.u32("eventType")
    count = reader.u32("digest count")
    if count > len(sizes):
        raise MalformedEvidence(
            FORMAT,
            f"event {sequence} at offset {offset} has {count} digests, "
            f"the log declares {len(sizes)} algorithms",
        )
    digests: list[tuple[int, bytes]] = []
    for _ in range(count):
        algorithm = reader.u16("hashAlg")
        size = sizes.get(algorithm)
        if size is None:
            raise MalformedEvidence(
                FORMAT,
                f"event {sequence} at offset {offset} uses algorithm 0x{algorithm:04x}, "
                "which the Spec ID event does not declare",
            )
        if any(alg == algorithm for alg, _ in digests):
            raise MalformedEvidence(
                FORMAT,
                f"event {sequence} at offset {offset} has two digests for 0x{algorithm:04x}",
            )
        digests.append((algorithm, reader.take(size, "digest")))
    size = reader.u32("eventSize")
    data = reader.take(size, "event data")
    return Event(sequence, pcr, event_type, tuple(digests), data, offset)


_EVENT2_HEADER = struct.Struct("<III")  # pcrIndex, eventType, digest count
_U32 = struct.Struct("<I")


def _read_event2_fast(
    data: bytes, offset: int, sequence: int, sizes: dict[int, int]
) -> tuple[Event, int] | None:
    """Read a TCG_PCR_EVENT2 at `offset` and return it with the offset after it.

    Returns None for anything out of the ordinary (truncation, an undeclared or
    repeated algorithm), and `_read_event2` then reads the event again to raise
    the precise error.
    """
    end = len(data)
    if offset + 12 > end:
        return None
    pcr, event_type, count = _EVENT2_HEADER.unpack_from(data, offset)
    if count > len(sizes):
        return None
    position = offset + 12
    digests: list[tuple[int, bytes]] = []
    for _ in range(count):
        if position + 2 > end:
            return None
        algorithm = data[position] | data[position + 1] << 8
        size = sizes.get(algorithm)
        if size is None or position + 2 + size > end:
            return None
        for seen, _digest in digests:
            if seen == algorithm:
                return None
        position += 2
        digests.append((algorithm, data[position : position + size]))
        position += size
    if position + 4 > end:
        return None
    (event_size,) = _U32.unpack_from(data, position)
    position += 4
    if position + event_size > end:
        return None
    event_data = data[position : position + event_size]
    event = Event(sequence, pcr, event_type, tuple(digests), event_data, offset)
    return event, position + event_size


def _is_spec_id_header(event: Event) -> bool:
    return (
        event.pcr == 0
        and event.event_type == EV_NO_ACTION
        and event.data.startswith(_SPEC_ID_SIGNATURE)
    )


def parse(data: bytes) -> EventLog:
    """Parse a crypto-agile or SHA-1 event log; raise MalformedEvidence on bad input.

    The log must end exactly after its last event.
    """
    # NOTE: firmware that hands over its whole log area may pad the log with zero
    # or 0xFF bytes. Such padding is rejected as malformed, not skipped.
    data = bytes(data)
    if not data:
        raise MalformedEvidence(FORMAT, "empty event log")
    reader = _Reader(data)
    first = _read_sha1_event(reader, 0)
    events: list[Event] = []
    if not _is_spec_id_header(first):
        events.append(first)
        while reader.remaining():
            events.append(_read_sha1_event(reader, len(events)))
        return EventLog(None, tuple(events))

    spec_id = _parse_spec_id(first.data)
    sizes = dict(spec_id.algorithms)
    while reader.offset < len(data):
        sequence = len(events) + 1
        fast = _read_event2_fast(data, reader.offset, sequence, sizes)
        if fast is None:
            events.append(_read_event2(reader, sequence, sizes))
            continue
        event, reader.offset = fast
        events.append(event)
    return EventLog(spec_id, tuple(events))


def looks_like(data: bytes) -> bool:
    """Return True for a crypto-agile log: its first event is the Spec ID header."""
    start = _SHA1_EVENT_HEADER
    return (
        len(data) >= start + len(_SPEC_ID_SIGNATURE)
        and data[:8] == b"\x00\x00\x00\x00\x03\x00\x00\x00"
        and data[start : start + len(_SPEC_ID_SIGNATURE)] == _SPEC_ID_SIGNATURE
    )
