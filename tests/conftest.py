"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"


def corpus_path() -> Path:
    """Return the evidence corpus folder: $ATTESTNET_CORPUS or ../shared/corpus."""
    return Path(os.environ.get("ATTESTNET_CORPUS", DEFAULT_CORPUS))


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_path()
    if not (path / "MANIFEST.tsv").is_file():
        pytest.skip(f"evidence corpus not found at {path}; set ATTESTNET_CORPUS to its folder")
    return path


def utc(text: str) -> datetime:
    """Parse an RFC 3339 time such as 2024-01-01T00:00:00Z."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
