"""Speech after line noise, long pauses and speech that truly repeats: times and words that hold."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.speech import SAMPLE_RATE, SENTENCES, speak, wer, write_wav

pytestmark = pytest.mark.e2e

COUNTING = "one, two, three, four, five, six, seven, eight, nine, ten."


def line_noise(seconds: float, seed: int, dbfs: float = -42.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hiss = rng.standard_normal(int(seconds * SAMPLE_RATE)) * 10 ** (dbfs / 20)
    hum = 0.3 * 10 ** (dbfs / 20) * np.sin(2 * np.pi * 50 * np.arange(len(hiss)) / SAMPLE_RATE)
    return (hiss + hum).astype(np.float32)


def verbose(http: httpx.Client, path: Path, **extra: str) -> dict[str, object]:
    response = http.post(
        "/v1/audio/transcriptions",
        files={"file": (path.name, path.read_bytes())},
        data={"model": "whisper-1", "response_format": "verbose_json", "language": "en", **extra},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_speech_after_line_noise_is_stamped_where_it_starts(
    http: httpx.Client, sentence_audio: dict[str, np.ndarray], audio_dir: Path
) -> None:
    # A phone call: 6.7 s of line noise before anyone speaks, and noise in every pause.
    gaps = [6.7, 2.5, 4.0, 1.5, 6.0, 3.0]
    parts, onsets, alone, t = [], [], [], 0.0
    for i, gap in enumerate(gaps):
        speech = sentence_audio[SENTENCES[i]]
        noisy = speech + line_noise(len(speech) / SAMPLE_RATE, 100 + i)
        parts += [line_noise(gap, i), noisy]
        alone.append(verbose(http, write_wav(audio_dir / f"noisy-{i}.wav", noisy))["text"])
        onsets.append(t + gap)
        t += gap + len(speech) / SAMPLE_RATE
    parts.append(line_noise(2.0, 99))
    body = verbose(http, write_wav(audio_dir / "call.wav", np.concatenate(parts)))
    segments = body["segments"]
    assert isinstance(segments, list)
    starts = [float(s["start"]) for s in segments]
    errors = [min(abs(s - onset) for s in starts) for onset in onsets]
    print(f"\nonset errors (s): {[round(e, 2) for e in errors]}, segments {len(segments)}")
    assert statistics.median(errors) <= 0.5 and max(errors) <= 1.0
    assert min(starts) >= onsets[0] - 0.5
    # The noise between sentences adds no words: the whole call reads as well as its sentences alone.
    said = " ".join(SENTENCES[: len(gaps)])
    floor = wer(said, " ".join(str(a) for a in alone))
    error = wer(said, str(body["text"]))
    print(f"WER {error:.3f} (sentences alone {floor:.3f})")
    assert error <= floor + 0.02


def test_speech_that_truly_repeats_is_written_down_once_each_time(
    http: httpx.Client, sentence_audio: dict[str, np.ndarray], audio_dir: Path
) -> None:
    # A drill: three sentences read again and again, with the counting in between.
    drill = [SENTENCES[22], SENTENCES[1], SENTENCES[9]]
    said = [*itertools.islice(itertools.cycle(drill), 18)]
    said[8:8] = [COUNTING]
    said[15:15] = [COUNTING]
    audio = {**sentence_audio, COUNTING: speak(COUNTING)}
    gap = np.zeros(int(0.7 * SAMPLE_RATE), np.float32)
    recording = np.concatenate([part for s in said for part in (audio[s], gap)])
    body = verbose(http, write_wav(audio_dir / "drill.wav", recording))
    # What the model makes of each sentence alone is the floor for the whole recording.
    alone = {
        s: str(verbose(http, write_wav(audio_dir / f"alone-{i}.wav", audio[s]))["text"])
        for i, s in enumerate(set(said))
    }
    floor = wer(" ".join(said), " ".join(alone[s] for s in said))
    error = wer(" ".join(said), str(body["text"]))
    temperatures = {float(s["temperature"]) for s in body["segments"]}  # type: ignore[union-attr]
    print(f"\nrepetition: {len(recording) / SAMPLE_RATE:.0f} s, WER {error:.3f} (sentences alone {floor:.3f}), "
          f"temperatures {temperatures}")  # fmt: skip
    # Within 0.03 of the sentences read alone (about two words of its 85): the drill's windows hold
    # other neighbours than each sentence alone, and the pause kept at each joint moves where
    # Whisper reads them (measured 0.094 against 0.071 alone, all at T=0).
    assert error <= floor + 0.03
    # Honest repetition is not a loop: every window kept its first, greedy reading.
    assert temperatures == {0.0}
