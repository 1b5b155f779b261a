"""Word timestamps from the real server: words spoken one by one, joined with known gaps, timed within 0.1 s."""

from __future__ import annotations

import difflib
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import OpenAI

from tests.speech import SAMPLE_RATE, normalise, speak, write_wav

WORDS = [
    *("Seven", "brown", "horses", "walked", "slowly", "across", "the", "wide", "green", "field"),
    *("while", "the", "farmer", "counted", "apples", "near", "the", "old", "wooden", "gate"),
]
# A word's onset: its first 10 ms frame within 26 dB of the word's loudest.
ONSET_LEVEL = 0.05


def trimmed(samples: np.ndarray) -> np.ndarray:
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > ONSET_LEVEL * rms.max())
    return samples[loud[0] * 160 : (loud[-1] + 1) * 160]


@pytest.fixture(scope="module")
def spoken_words(audio_dir: Path) -> tuple[Path, list[float]]:
    """Each word alone, with gaps of 0.15-0.7 s (1.5 s once, between the two halves), over a quiet hiss."""
    rng = np.random.default_rng(7)
    parts = [np.zeros(int(0.6 * SAMPLE_RATE), dtype=np.float32)]
    onsets: list[float] = []
    at = len(parts[0])
    for i, word in enumerate(WORDS):
        sound = trimmed(speak(word))
        onsets.append(at / SAMPLE_RATE)
        gap = np.zeros(int((1.5 if i == 9 else rng.uniform(0.15, 0.7)) * SAMPLE_RATE), dtype=np.float32)
        parts += [sound, gap]
        at += len(sound) + len(gap)
    audio = np.concatenate(parts)
    audio += rng.normal(scale=10 ** (-55 / 20), size=len(audio)).astype(np.float32)
    return write_wav(audio_dir / "words.wav", audio), onsets


def onset_errors(words: list[dict[str, float | str]], onsets: list[float]) -> np.ndarray:
    """|start - onset| for every word of the answer that matches a spoken word."""
    heard = [normalise(str(w["word"])) for w in words]
    matcher = difflib.SequenceMatcher(a=[w.lower() for w in WORDS], b=heard, autojunk=False)
    errors = [
        abs(float(words[block.b + k]["start"]) - onsets[block.a + k])
        for block in matcher.get_matching_blocks()
        for k in range(block.size)
    ]
    assert len(errors) >= 0.8 * len(WORDS), f"too few words recognised: {heard}"
    return np.array(errors)


def test_word_onsets_are_within_a_tenth_of_a_second(client: OpenAI, spoken_words: tuple[Path, list[float]]) -> None:
    path, onsets = spoken_words
    with path.open("rb") as f:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", timestamp_granularities=["word"]
        )
    words = [w.model_dump() for w in result.words or []]
    errors = onset_errors(words, onsets)
    print(f"\nword onsets: {len(errors)} words, mean error {errors.mean():.3f} s, worst {errors.max():.3f} s")
    assert errors.mean() <= 0.1
    assert errors.max() <= 0.3
    assert all(str(w["word"]).startswith(" ") for w in words)
    assert all(w["start"] <= w["end"] for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)


def test_words_beside_segments_fall_inside_them(http: httpx.Client, spoken_words: tuple[Path, list[float]]) -> None:
    path, _ = spoken_words
    form = {"model": "whisper-1", "response_format": "verbose_json", "timestamp_granularities[]": ["word", "segment"]}
    with path.open("rb") as f:
        body = http.post("/v1/audio/transcriptions", data=form, files={"file": ("words.wav", f)}).json()
    segments, words = body["segments"], body["words"]
    assert segments and words
    assert "".join(w["word"] for w in words).strip() == body["text"]
    for w in words:
        assert any(s["start"] - 0.01 <= w["start"] and w["end"] <= s["end"] + 0.01 for s in segments), w
    with path.open("rb") as f:
        only_words = http.post(
            "/v1/audio/transcriptions",
            data={**form, "timestamp_granularities[]": "word"},
            files={"file": ("words.wav", f)},
        ).json()
    # One server reads the same audio alike (greedy, one request at a time, the same kernels), so
    # `word` alone changes only what is reported. Not a claim across machines: another CPU's
    # arithmetic may hear a word differently.
    assert only_words["segments"] is None and only_words["words"] == words


def test_word_timing_cost_is_reported(client: OpenAI, spoken_words: tuple[Path, list[float]]) -> None:
    """The price of words: the same file with and without them (printed for the closing note, not asserted)."""
    path, _ = spoken_words
    duration = 0.0
    seconds = {}
    for granularities in (["segment"], ["segment", "word"], ["segment"], ["segment", "word"]):
        started = time.perf_counter()
        with path.open("rb") as f:
            result = client.audio.transcriptions.create(
                model="whisper-1", file=f, response_format="verbose_json", timestamp_granularities=granularities
            )
        seconds[len(granularities)] = time.perf_counter() - started  # the second, warm run of each
        duration = result.duration
    print(
        f"\n{duration:.1f} s of audio: RTFx {duration / seconds[1]:.1f} without words, {duration / seconds[2]:.1f} with"
    )
    assert "".join(w.word for w in result.words or []).strip() == result.text
