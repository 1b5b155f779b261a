"""Word times of the audio-LLM families on real speech: recorded words joined with known gaps, timed within 0.1 s.

The tiny checkpoints' random weights write no real transcript, so each family's timing path
(`AudioChatFamily.timed`: its answer aligned by the embedded Whisper's heads, then cut into
sentences) is given the reference text as its answer, tokenized as the family's own tokenizer
writes it. The speech is Asterisk's English prompts (one real talker, Debian's
`asterisk-core-sounds-en-gsm` or `-wav`), single words joined with gaps of 0.15-0.7 s (1.5 s once,
at the sentence end); a word's onset is its first 10 ms frame within 26 dB of its loudest, as in
the Whisper word test (tests/e2e/test_word_timestamps.py).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.alignment import TextAligner
from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions, Piece, Reading, Segment
from models.registry import load_model
from tests.families.conftest import FAMILIES

RATE = 16_000
SOUNDS = [Path("/usr/share/asterisk/sounds/en"), Path("/usr/share/asterisk/sounds/en_US_f_Allison")]
# (prompt file under digits/, the word it says); a full stop after the tenth.
SPOKEN = [
    *(("7", "seven"), ("13", "thirteen"), ("hundred", "hundred"), ("dollars", "dollars"), ("yesterday", "yesterday")),
    *(("4", "four"), ("million", "million"), ("19", "nineteen"), ("12", "twelve"), ("tomorrow", "tomorrow")),
    *(("5", "five"), ("thousand", "thousand"), ("80", "eighty"), ("minus", "minus"), ("16", "sixteen")),
    *(("today", "today"), ("11", "eleven"), ("40", "forty"), ("2", "two"), ("billion", "billion")),
]
TEXT = (" ".join(w for _, w in SPOKEN[:10]) + ". " + " ".join(w for _, w in SPOKEN[10:]) + ".").capitalize()
TEXT = TEXT.replace(". five", ". Five")
ONSET_LEVEL = 0.05


def prompt(name: str) -> np.ndarray:
    """One of Asterisk's digit prompts at 16 kHz (its GSM or WAV file), trimmed to its sound."""
    for root in SOUNDS:
        for suffix, form in ((".wav", []), (".gsm", ["-f", "gsm", "-ar", "8000"])):
            path = root / "digits" / f"{name}{suffix}"
            if path.is_file():
                raw = subprocess.run(
                    ["ffmpeg", "-v", "error", *form, "-i", str(path), "-ar", str(RATE), "-ac", "1", "-f", "f32le", "-"],
                    capture_output=True,
                    check=True,
                ).stdout
                return trimmed(np.frombuffer(raw, dtype=np.float32))
    pytest.skip("Asterisk's English prompts are not installed (make test installs asterisk-core-sounds-en-gsm)")


def trimmed(samples: np.ndarray) -> np.ndarray:
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > ONSET_LEVEL * rms.max())
    return samples[loud[0] * 160 : (loud[-1] + 1) * 160]


@pytest.fixture(scope="module")
def recorded_words() -> tuple[np.ndarray, list[float], list[float]]:
    """The words' audio, their onsets and their ends (seconds)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is missing (make test installs it)")
    rng = np.random.default_rng(7)
    parts = [np.zeros(int(0.6 * RATE), dtype=np.float32)]
    onsets: list[float] = []
    ends: list[float] = []
    at = len(parts[0])
    for i, (name, _) in enumerate(SPOKEN):
        sound = prompt(name)
        onsets.append(at / RATE)
        ends.append((at + len(sound)) / RATE)
        gap = np.zeros(int((1.5 if i == 9 else rng.uniform(0.15, 0.7)) * RATE), dtype=np.float32)
        parts += [sound, gap]
        at += len(sound) + len(gap)
    audio = np.concatenate(parts)
    audio += rng.normal(scale=10 ** (-55 / 20), size=len(audio)).astype(np.float32)
    assert len(audio) < 30 * RATE
    return audio, onsets, ends


@pytest.fixture(scope="module")
def shared_aligner() -> TextAligner:
    """One aligner for every family (the embedded Whisper, converted from its packages once)."""
    return TextAligner("float32")


@pytest.mark.parametrize("family", FAMILIES)
def test_words_of_the_answer_start_within_a_tenth_of_a_second(
    family: str,
    checkpoints: dict[str, Path],
    recorded_words: tuple[np.ndarray, list[float], list[float]],
    shared_aligner: TextAligner,
) -> None:
    model = load_model(checkpoints[family], "float32")
    assert isinstance(model, AudioChatFamily)
    model.text_aligner = shared_aligner  # type: ignore[misc]  # the cached property's slot
    audio, onsets, ends = recorded_words
    offset = 12.5  # the piece's place in a longer recording
    tokens = list(model.tokenizer.encode(TEXT, add_special_tokens=False))
    answer = Segment(offset, offset + len(audio) / RATE, " " + TEXT, tokens=tokens)
    piece = Piece(3, audio, RATE, offset, True)
    options = DecodeOptions(language="en", word_timestamps=True, segment_times=True)
    reading = asyncio.run(model.timed(Reading(segments=[answer]), piece, options))

    words = [w for s in reading.segments for w in s.words]
    assert "".join(w.word for w in words) == " " + TEXT
    assert len(words) == len(SPOKEN)
    errors = np.abs(np.array([w.start - offset for w in words]) - np.array(onsets))
    end_errors = np.abs(np.array([w.end - offset for w in words]) - np.array(ends))
    print(
        f"\n{family}: {len(errors)} words, onset error mean {errors.mean():.3f} s, worst {errors.max():.3f} s; "
        f"end error mean {end_errors.mean():.3f} s, worst {end_errors.max():.3f} s"
    )
    assert errors.mean() <= 0.1 and errors.max() <= 0.3
    assert end_errors.mean() <= 0.1 and end_errors.max() <= 0.3
    # Two sentences, timed by their words; the family's tokens split between them, none lost.
    assert [s.text for s in reading.segments] == [" " + TEXT[: TEXT.index(".") + 1], TEXT[TEXT.index(".") + 1 :]]
    assert [(s.start, s.end) for s in reading.segments] == [
        (s.words[0].start, s.words[-1].end) for s in reading.segments
    ]
    assert [t for s in reading.segments for t in s.tokens] == tokens
    assert all(s.tokens for s in reading.segments)
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.start <= w.end for w in words)
