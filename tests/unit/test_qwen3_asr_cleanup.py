"""Qwen3-ASR's answer cleanup against the processor's own `decode(..., return_format=...)`."""

from __future__ import annotations

import random

import pytest
from transformers.models.qwen3_asr import processing_qwen3_asr as reference

from models.qwen3_asr import MARKER, Qwen3ASRModel, _fix_repetitions

ANSWERS = [
    "language English<asr_text>hello there",
    "language None<asr_text>",
    "no marker at all",
    "language German<asr_text>" + "ja " * 30 + "gut",
    "language English<asr_text>" + "a" * 50 + " b",
    "abcdefghijklmnopqrstuvwxyz" * 2,
    "language French<asr_text>" + "ab" * 25 + "c" + "xyz" * 21,
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_cleanup_equals_the_processor(answer: str) -> None:
    parsed = reference._parse_single_output(answer)
    assert Qwen3ASRModel.clean(None, answer) == parsed["transcription"]  # type: ignore[arg-type]
    language = Qwen3ASRModel.answer_language(None, answer)  # type: ignore[arg-type]
    expected = (parsed["language"] or "").lower()
    assert (language or "") == {"english": "en", "german": "de", "french": "fr"}.get(expected, expected)


def test_repetition_fix_equals_the_reference_on_random_loops() -> None:
    rng = random.Random(7)
    for _ in range(300):
        parts = [rng.choice(["ab", "x", "word ", "la la ", "z" * 25, "q"]) * rng.randint(1, 45) for _ in range(3)]
        text = "".join(parts)
        assert _fix_repetitions(text) == reference._detect_and_fix_repetitions(text), text
    assert _fix_repetitions("word " * 500) == "word " and MARKER not in "word "
