"""Strict CBOR decoding of untrusted evidence: UTF-8, trailing bytes, no leaks."""

from __future__ import annotations

import contextlib
import gc
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attestnet.cli._common import read_evidence_file
from attestnet.errors import AttestnetError, MalformedEvidence
from attestnet.evidence import registry
from attestnet.evidence.cbor import decode_strict, loads_untrusted
from attestnet.evidence.model import TrustAnchors

INVALID_UTF8_TEXT = b"\x63\xff\xfe\x41"  # text string of 3 bytes, not UTF-8


def test_valid_text_decodes() -> None:
    assert decode_strict(b"\x63abc", "test") == "abc"
    assert decode_strict("\u00e9t\u00e9".encode().join([b"\x65", b""]), "test") == "\u00e9t\u00e9"


@pytest.mark.parametrize(
    "data",
    [
        INVALID_UTF8_TEXT,
        b"\x81" + INVALID_UTF8_TEXT,  # inside an array
        b"\xa1" + INVALID_UTF8_TEXT + b"\x01",  # as a map key
        b"\xd8\x20" + INVALID_UTF8_TEXT,  # inside a tag
        b"\x63\xed\xa0\x80",  # an encoded surrogate, invalid in UTF-8
    ],
)
def test_invalid_utf8_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEvidence, match="not valid UTF-8"):
        decode_strict(data, "test")


def test_trailing_bytes_are_malformed() -> None:
    with pytest.raises(MalformedEvidence, match="1 trailing bytes after offset 1"):
        decode_strict(b"\x01\x02", "test")


def test_loads_untrusted_reports_length() -> None:
    assert loads_untrusted(b"\x01\x02") == (1, 1)


SAMPLES = {
    "psa": "psa/tfm_psa-2_0_0_sign1.cbor",
    "cca": "cca/tfmtools_cca_example_token.cbor",
    "corim": "corim/veraison_e2e_psa-endorsements.corim.cbor",
    "nitro": "nitro/evervault_ga_attestation_doc.b64",
}


@pytest.mark.parametrize("format", sorted(SAMPLES))
def test_malformed_inputs_leave_no_exceptions_alive(corpus: Path, format: str) -> None:
    # cbor2 5.9's C decoder leaked one exception object per invalid UTF-8 string;
    # a verifier fed crafted evidence must not keep anything alive per input.
    seed = read_evidence_file(corpus / SAMPLES[format])
    module = registry.load(format)
    rng = random.Random(7)
    at = datetime(2025, 1, 1, tzinfo=UTC)

    def run(count: int) -> None:
        for _ in range(count):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            with contextlib.suppress(AttestnetError):
                module.verify(bytes(data), anchors=TrustAnchors(), at=at)

    run(200)
    gc.collect()
    before = sum(isinstance(o, BaseException) for o in gc.get_objects())
    run(2000)
    gc.collect()
    after = sum(isinstance(o, BaseException) for o in gc.get_objects())
    assert after - before < 20
