"""The text aligner's limits, checked before any model loads (models/alignment.py)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from models.alignment import MAX_POSITIONS, TextAligner, to_sound_end
from models.interface import ModelInputError, Word

RATE = 16_000


def test_a_language_whisper_does_not_know_is_refused_naming_the_field() -> None:
    aligner = TextAligner()
    aligner.check("en", param="timestamp_granularities")
    aligner.check(None, param="timestamp_granularities")
    with pytest.raises(ModelInputError) as caught:
        aligner.check("yue", param="timestamp_granularities")
    assert caught.value.param == "timestamp_granularities" and "yue" in str(caught.value)


def test_what_cannot_be_aligned_is_left_untimed_without_loading_the_model() -> None:
    aligner = TextAligner()
    samples = np.zeros(RATE, np.float32)
    assert aligner.can_align(samples, RATE, "en") and not aligner.can_align(samples, 8000, "en")
    assert not aligner.can_align(np.zeros(31 * RATE, np.float32), RATE, "en")
    assert not aligner.can_align(samples, RATE, "yue")
    assert asyncio.run(aligner.words(samples, RATE, " word" * MAX_POSITIONS, "en")) == []
    assert asyncio.run(aligner.words(samples, RATE, "  ", "en")) == []
    assert aligner._aligner is None


def test_a_word_ends_where_its_sound_stops_before_the_next_word() -> None:
    rng = np.random.default_rng(0)
    audio = rng.normal(scale=1e-4, size=3 * RATE).astype(np.float32)
    audio[RATE // 2 : RATE] += 0.3 * np.sin(np.arange(RATE // 2) * 0.2)  # 0.5-1.0 s
    audio[int(1.1 * RATE) : int(1.3 * RATE)] += 0.1 * np.sin(np.arange(int(0.2 * RATE)) * 0.3)  # after 0.1 s: its tail
    audio[2 * RATE : int(2.5 * RATE)] += 0.3 * np.sin(np.arange(RATE // 2) * 0.2)  # the next word
    words = to_sound_end([Word(" one", 0.5, 0.8), Word(" two", 1.9, 2.2)], audio, RATE)
    assert words[0].end == pytest.approx(1.3, abs=0.02)
    assert words[1].end == pytest.approx(2.5, abs=0.02)
