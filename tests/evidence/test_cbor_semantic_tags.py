"""Semantic CBOR tags with wrong content are malformed evidence in every CBOR format.

cbor2 decodes tags such as UUID (37) and decimal fraction (4) with standard-library
code that fails with AssertionError or TypeError on crafted content. The atheris
harness found these inputs; each must end as MalformedEvidence.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from attestnet.errors import MalformedEvidence
from attestnet.evidence import cmw, registry
from attestnet.evidence.model import TrustAnchors

CRAFTED = {
    "uuid tag around text": b"\xd8\x25\x70" + b"p" * 16,
    "decimal fraction around a map": b"\xc4\xa0",
    "bigfloat around text": b"\xc5\x61x",
    "uuid inside a COSE_Sign1": b"\xd2\x84\x40\xa0\xd8\x25\x70" + b"p" * 16 + b"\x40",
}
CBOR_FORMATS = ["psa", "cca", "corim", "ear", "nitro", "sim"]


@pytest.mark.parametrize("format", CBOR_FORMATS)
@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_tag_is_malformed(format: str, name: str) -> None:
    module = registry.load(format)
    with pytest.raises(MalformedEvidence):
        module.verify(CRAFTED[name], anchors=TrustAnchors(), at=datetime(2025, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_tag_is_malformed_cmw(name: str) -> None:
    with pytest.raises(MalformedEvidence):
        cmw.decode(CRAFTED[name])
