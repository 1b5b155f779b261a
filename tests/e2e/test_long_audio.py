"""Ten minutes of known sentences: transcribed whole, they match the sentences read one by one."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.speech import SAMPLE_RATE, SENTENCES, wer, write_wav

pytestmark = pytest.mark.e2e

PAUSE_S = 0.7
TARGET_S = 600


def _transcribe(http: httpx.Client, path: Path) -> dict[str, object]:
    response = http.post(
        "/v1/audio/transcriptions",
        files={"file": (path.name, path.read_bytes())},
        data={"model": "whisper-1", "response_format": "verbose_json", "language": "en"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_ten_minutes_lose_nothing(http: httpx.Client, sentence_audio: dict[str, np.ndarray], audio_dir: Path) -> None:
    gap = np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)
    spoken: list[str] = []
    parts: list[np.ndarray] = []
    for sentence in itertools.cycle(SENTENCES):
        if sum(len(p) for p in parts) >= TARGET_S * SAMPLE_RATE:
            break
        spoken.append(sentence)
        parts += [sentence_audio[sentence], gap]
    long_path = write_wav(audio_dir / "ten-minutes.wav", np.concatenate(parts))

    # The same sentences, one request each (in parallel), give the reference error rate.
    one_paths = [write_wav(audio_dir / f"one-{i}.wav", sentence_audio[s]) for i, s in enumerate(SENTENCES)]
    with ThreadPoolExecutor(8) as pool:
        singles = list(pool.map(lambda p: str(_transcribe(http, p)["text"]), one_paths))
    by_sentence = dict(zip(SENTENCES, singles, strict=True))
    one_by_one = wer(" ".join(spoken), " ".join(by_sentence[s] for s in spoken))

    started = time.perf_counter()
    whole = _transcribe(http, long_path)
    elapsed = time.perf_counter() - started
    long_form = wer(" ".join(spoken), str(whole["text"]))
    duration = float(whole["duration"])  # type: ignore[arg-type]
    print(f"\n10-minute file: {duration:.0f} s audio, WER one-by-one {one_by_one:.3f}, long-form {long_form:.3f}, "
          f"{elapsed:.1f} s, RTFx {duration / elapsed:.1f}")  # fmt: skip
    assert duration >= TARGET_S
    assert long_form <= one_by_one + 0.03
    segments = whole["segments"]
    assert isinstance(segments, list)
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts) and segments[-1]["end"] <= duration + 0.05
    assert segments[-1]["end"] > duration - 10
