"""Tests for TCG PC Client event log parsing and PCR replay.

Synthetic logs are built here from the PFP layouts; the real log comes from the
go-tpm-tools GCE attestation in the corpus.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestnet.errors import MalformedEvidence
from attestnet.evidence import tcg_eventlog
from attestnet.evidence.protobuf_wire import parse_message

SHA1 = 0x0004
SHA256 = 0x000B
SHA384 = 0x000C
EV_SEPARATOR = 0x00000004
EV_POST_CODE = 0x00000001
EV_EFI_ACTION = 0x80000007

SAMPLE = "tpm/gce-cos-85-nonce9009.attestation.pb"


def sha1_event(pcr: int, event_type: int, digest: bytes, data: bytes) -> bytes:
    return struct.pack("<II", pcr, event_type) + digest + struct.pack("<I", len(data)) + data


def spec_id_event(algorithms: list[tuple[int, int]], vendor: bytes = b"") -> bytes:
    body = (
        b"Spec ID Event03\x00"
        + struct.pack("<IBBBB", 0, 0, 2, 0, 2)
        + struct.pack("<I", len(algorithms))
        + b"".join(struct.pack("<HH", alg, size) for alg, size in algorithms)
        + bytes([len(vendor)])
        + vendor
    )
    return sha1_event(0, tcg_eventlog.EV_NO_ACTION, bytes(20), body)


def event2(pcr: int, event_type: int, digests: list[tuple[int, bytes]], data: bytes) -> bytes:
    encoded = b"".join(struct.pack("<H", alg) + digest for alg, digest in digests)
    return (
        struct.pack("<III", pcr, event_type, len(digests))
        + encoded
        + struct.pack("<I", len(data))
        + data
    )


def measured(pcr: int, data: bytes, event_type: int = EV_EFI_ACTION) -> bytes:
    """An event whose digests are the SHA-1 and SHA-256 hashes of its data."""
    digests = [(SHA1, hashlib.sha1(data).digest()), (SHA256, hashlib.sha256(data).digest())]
    return event2(pcr, event_type, digests, data)


def extend(value: bytes, digest: bytes, name: str) -> bytes:
    return hashlib.new(name, value + digest).digest()


HEADER = spec_id_event([(SHA1, 20), (SHA256, 32)])


def agile_log() -> bytes:
    return (
        HEADER
        + measured(0, b"crtm version", 0x00000008)
        + measured(7, b"secure boot")
        + event2(0, tcg_eventlog.EV_NO_ACTION, [(SHA1, bytes(20)), (SHA256, bytes(32))], b"x")
        + measured(0, b"\x00\x00\x00\x00", EV_SEPARATOR)
        + measured(7, b"\x00\x00\x00\x00", EV_SEPARATOR)
    )


# --- crypto-agile logs ---------------------------------------------------------------


def test_agile_header_parsed() -> None:
    log = tcg_eventlog.parse(agile_log())
    assert log.crypto_agile
    assert log.spec_id is not None
    assert log.spec_id.algorithms == ((SHA1, 20), (SHA256, 32))
    assert log.spec_id.spec_version == (2, 0)
    assert log.spec_id.uintn_size == 2
    assert log.algorithms == (SHA1, SHA256)
    assert len(log.events) == 5
    assert log.events[0].sequence == 1
    assert log.events[0].type_name == "EV_S_CRTM_VERSION"


@pytest.mark.parametrize(("alg", "name"), [(SHA1, "sha1"), (SHA256, "sha256")])
def test_agile_replay_matches_manual_extend(alg: int, name: str) -> None:
    size = hashlib.new(name).digest_size
    pcr0 = bytes(size)
    for data in (b"crtm version", b"\x00\x00\x00\x00"):
        pcr0 = extend(pcr0, hashlib.new(name, data).digest(), name)
    pcr7 = bytes(size)
    for data in (b"secure boot", b"\x00\x00\x00\x00"):
        pcr7 = extend(pcr7, hashlib.new(name, data).digest(), name)

    values = tcg_eventlog.parse(agile_log()).replay(alg)

    assert values == {0: pcr0, 7: pcr7}


def test_replay_skips_no_action_events() -> None:
    with_no_action = tcg_eventlog.parse(agile_log())
    without = tcg_eventlog.parse(
        HEADER
        + measured(0, b"crtm version", 0x00000008)
        + measured(7, b"secure boot")
        + measured(0, b"\x00\x00\x00\x00", EV_SEPARATOR)
        + measured(7, b"\x00\x00\x00\x00", EV_SEPARATOR)
    )
    assert with_no_action.replay(SHA256) == without.replay(SHA256)


def test_replay_startup_locality_sets_pcr0() -> None:
    locality = event2(
        0,
        tcg_eventlog.EV_NO_ACTION,
        [(SHA1, bytes(20)), (SHA256, bytes(32))],
        b"StartupLocality\x00\x03",
    )
    log = tcg_eventlog.parse(HEADER + locality + measured(0, b"a"))
    expected = extend(bytes(31) + b"\x03", hashlib.sha256(b"a").digest(), "sha256")
    assert log.startup_locality() == 3
    assert log.replay(SHA256) == {0: expected}


def test_replay_unknown_bank() -> None:
    log = tcg_eventlog.parse(agile_log())
    with pytest.raises(MalformedEvidence, match="no sha384 bank"):
        log.replay(SHA384)


def test_replay_event_without_bank_digest() -> None:
    log = tcg_eventlog.parse(HEADER + event2(4, EV_POST_CODE, [(SHA1, bytes(20))], b"only sha1"))
    assert 4 in log.replay(SHA1)
    with pytest.raises(MalformedEvidence, match="has no sha256 digest"):
        log.replay(SHA256)


def test_summary_counts_per_pcr() -> None:
    summary = tcg_eventlog.parse(agile_log()).summary()
    assert summary["layout"] == "crypto-agile"
    assert summary["banks"] == ["sha1", "sha256"]
    assert summary["events"] == 5
    assert summary["no_action_events"] == 1
    assert summary["pcrs"]["0"] == {
        "count": 2,
        "types": {"EV_SEPARATOR": 1, "EV_S_CRTM_VERSION": 1},
    }
    assert summary["pcrs"]["7"]["count"] == 2


def test_measured_pcrs() -> None:
    assert tcg_eventlog.parse(agile_log()).measured_pcrs() == [0, 7]


def test_unknown_event_type_name() -> None:
    assert tcg_eventlog.event_type_name(0x12345678) == "0x12345678"


# --- malformed crypto-agile logs -----------------------------------------------------


@pytest.mark.parametrize(
    ("log", "message"),
    [
        (b"", "empty event log"),
        (spec_id_event([]), "lists 0 algorithms"),
        (spec_id_event([(SHA256, 20)]), "sha256 digest size 20, expected 32"),
        (spec_id_event([(0x7777, 0)]), "digest size 0"),
        (spec_id_event([(0x7777, 65)]), "digest size 65"),
        (spec_id_event([(SHA1, 20), (SHA1, 20)]), "lists algorithm 0x0004 twice"),
        (HEADER + event2(0, 1, [(SHA384, bytes(48))], b""), "does not declare"),
        (
            HEADER + event2(0, 1, [(SHA1, bytes(20)), (SHA1, bytes(20))], b""),
            "two digests",
        ),
        (
            HEADER + event2(0, 1, [(SHA1, bytes(20))] * 3, b""),
            "has 3 digests",
        ),
    ],
)
def test_agile_malformed(log: bytes, message: str) -> None:
    with pytest.raises(MalformedEvidence, match=message):
        tcg_eventlog.parse(log)


def test_spec_id_trailing_bytes() -> None:
    header = spec_id_event([(SHA1, 20)])
    body = header[32:] + b"\x00"
    log = sha1_event(0, tcg_eventlog.EV_NO_ACTION, bytes(20), body)
    with pytest.raises(MalformedEvidence, match="trailing bytes"):
        tcg_eventlog.parse(log)


def test_agile_truncated_at_every_length() -> None:
    log = agile_log()
    # A cut at an event boundary leaves a shorter but valid log.
    boundaries = {event.offset for event in tcg_eventlog.parse(log).events}
    for length in range(1, len(log)):
        if length in boundaries:
            continue
        with pytest.raises(MalformedEvidence):
            tcg_eventlog.parse(log[:length])


# --- SHA-1 logs ----------------------------------------------------------------------


def test_sha1_log_replay() -> None:
    digest_a = hashlib.sha1(b"a").digest()
    digest_b = hashlib.sha1(b"b").digest()
    log = tcg_eventlog.parse(
        sha1_event(0, EV_POST_CODE, digest_a, b"a")
        + sha1_event(0, tcg_eventlog.EV_NO_ACTION, bytes(20), b"ignored")
        + sha1_event(5, EV_SEPARATOR, digest_b, b"b")
    )
    assert not log.crypto_agile
    assert log.algorithms == (SHA1,)
    assert log.replay(SHA1) == {
        0: extend(bytes(20), digest_a, "sha1"),
        5: extend(bytes(20), digest_b, "sha1"),
    }
    assert log.summary()["layout"] == "sha1"


def test_sha1_log_truncated() -> None:
    log = sha1_event(0, EV_POST_CODE, bytes(20), b"abcd")
    for length in range(1, len(log)):
        with pytest.raises(MalformedEvidence, match="truncated"):
            tcg_eventlog.parse(log[:length])


# --- looks_like ----------------------------------------------------------------------


def test_looks_like_agile_log() -> None:
    assert tcg_eventlog.looks_like(agile_log())


def test_looks_like_rejects_sha1_log_and_junk() -> None:
    assert not tcg_eventlog.looks_like(sha1_event(0, EV_POST_CODE, bytes(20), b"a"))
    assert not tcg_eventlog.looks_like(b"")
    assert not tcg_eventlog.looks_like(b"\x00" * 100)


# --- the real GCE log ----------------------------------------------------------------


def _sample_log_and_quoted_pcrs(corpus: Path) -> tuple[bytes, dict[int, dict[int, bytes]]]:
    message = parse_message((corpus / SAMPLE).read_bytes())
    quoted: dict[int, dict[int, bytes]] = {}
    for quote in message.repeated_messages(2):
        pcrs = quote.message(3)
        assert pcrs is not None
        quoted[pcrs.varint(1)] = {e.varint(1): e.bytes_field(2) for e in pcrs.repeated_messages(2)}
    return message.bytes_field(3), quoted


def test_gce_log_parses(corpus: Path) -> None:
    raw, _ = _sample_log_and_quoted_pcrs(corpus)
    log = tcg_eventlog.parse(raw)
    assert tcg_eventlog.looks_like(raw)
    assert log.algorithms == (SHA1, SHA256, SHA384)
    assert len(log.events) == 44
    assert log.measured_pcrs() == list(range(10))
    assert log.summary()["pcrs"]["8"] == {"count": 15, "types": {"EV_IPL": 15}}


@pytest.mark.parametrize("alg", [SHA1, SHA256, SHA384])
def test_gce_log_replays_to_quoted_pcrs(corpus: Path, alg: int) -> None:
    raw, quoted = _sample_log_and_quoted_pcrs(corpus)
    values = tcg_eventlog.parse(raw).replay(alg)
    assert sorted(values) == list(range(10))
    for pcr, value in values.items():
        assert value == quoted[alg][pcr], f"PCR {pcr}"


def test_gce_log_truncations(corpus: Path) -> None:
    raw, _ = _sample_log_and_quoted_pcrs(corpus)
    boundaries = {event.offset for event in tcg_eventlog.parse(raw).events}
    for length in range(1, len(raw), 97):
        if length in boundaries:
            continue
        with pytest.raises(MalformedEvidence):
            tcg_eventlog.parse(raw[:length])


# --- property tests ------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        log = tcg_eventlog.parse(data)
    except MalformedEvidence:
        return
    for alg in log.algorithms:
        with contextlib.suppress(MalformedEvidence):
            log.replay(alg)
    log.summary()


@settings(max_examples=300)
@given(st.data())
def test_fuzz_mutated_agile_log(data: st.DataObject) -> None:
    log = bytearray(agile_log())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(log) - 1))
        log[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(log)))
    try:
        parsed = tcg_eventlog.parse(bytes(log[:cut]))
    except MalformedEvidence:
        return
    for alg in parsed.algorithms:
        with contextlib.suppress(MalformedEvidence):
            parsed.replay(alg)
