"""Speech detection and packing on real synthetic speech: regions, pieces and times mapped back."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from app.audio.packing import MAX_PAUSE_S, TAIL_SILENCE_S, _groups, _pause, cut
from app.audio.vad import LoudnessVad, SileroVad, VadParams, regions
from models.interface import Piece, Reading, Segment, SpeechToTextConfig
from models.timeline import Timeline, place
from tests.speech import SAMPLE_RATE, SENTENCES, speak

RATE = SAMPLE_RATE
STT = SpeechToTextConfig(max_audio_clip_s=30.0, overlap_chunk_second=5.0, pack_speech=True)


def noise(seconds: float, dbfs: float = -50.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def recording(gaps: list[float], seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Sentences after each gap of line noise, and where each sentence truly is."""
    parts, truth, t = [], [], 0.0
    for i, gap in enumerate(gaps):
        speech = speak(SENTENCES[i])
        parts += [noise(gap, seed=seed + i), speech]
        truth.append((t + gap, t + gap + len(speech) / RATE))
        t += gap + len(speech) / RATE
    parts.append(noise(1.0, seed=seed + 99))
    return np.concatenate(parts), truth


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def test_silero_finds_each_sentence_and_not_the_noise(vad: SileroVad) -> None:
    audio, truth = recording([6.7, 4.0, 2.5])
    found = regions(vad.probabilities(audio), VadParams(), len(audio) / RATE)
    assert len(found) == len(truth)
    for (lo, hi), (start, end) in zip(found, truth, strict=True):
        # Padded by 0.3 s on each side, within a frame or two of the words.
        assert start - 0.45 <= lo <= start and end <= hi <= end + 0.45


def test_silence_and_noise_hold_no_speech(vad: SileroVad) -> None:
    for quiet in (np.zeros(5 * RATE, dtype=np.float32), noise(5.0)):
        assert regions(vad.probabilities(quiet), VadParams(), 5.0) == []


def test_loading_the_model_leaves_torch_threads_alone(vad: SileroVad) -> None:
    before = torch.get_num_threads()
    vad.probabilities(noise(1.0))
    assert torch.get_num_threads() == before


def test_short_silences_stay_inside_a_region() -> None:
    probs = np.array([0] + [1] * 10 + [0] * 3 + [1] * 10 + [0] * 12, dtype=np.float32)
    frame = 0.032
    joined = regions(probs, VadParams(prefix_padding_s=0.0, silence_duration_s=0.2), len(probs) * frame)
    assert joined == [(pytest.approx(frame), pytest.approx(24 * frame))]
    split = regions(probs, VadParams(prefix_padding_s=0.0, silence_duration_s=0.05), len(probs) * frame)
    assert len(split) == 2


def test_packed_pieces_hold_only_speech_and_map_back(vad: SileroVad) -> None:
    gaps = [6.7, 8.0, 3.0, 9.0, 2.0, 7.0, 5.0, 4.0]
    audio, truth = recording(gaps)
    pieces, timelines = cut(audio, RATE, STT, VadParams(), vad)
    speech_s = sum(end - start for start, end in truth)
    packed_s = sum(p.duration for p in pieces)
    assert all(p.duration <= 30.0 for p in pieces) and pieces[-1].final
    # All of the speech and its padding, a pause between two regions, none of the ~45 s of noise.
    laid_in = MAX_PAUSE_S * (len(truth) - len(pieces)) + TAIL_SILENCE_S * len(pieces)
    assert speech_s + laid_in <= packed_s <= speech_s + laid_in + 0.7 * len(truth)
    assert len(audio) / RATE > packed_s + 30
    # Between two regions of a piece lies a pause, where Whisper ends a segment.
    for piece, timeline in zip(pieces, timelines, strict=True):
        for i in range(len(timeline.local) - 1):
            assert timeline.local[i + 1] - (timeline.local[i] + timeline.lengths[i]) == pytest.approx(MAX_PAUSE_S)
        gap = piece.samples[int((timeline.local[0] + timeline.lengths[0]) * RATE) :][: int(MAX_PAUSE_S * RATE)]
        # The pause is the recording's own (its line noise), not digital silence.
        assert len(timeline.local) == 1 or 0 < float(np.abs(gap).max()) < 0.05
    # Each piece starts at speech, in the original audio's time.
    onsets = [start for start, _ in truth]
    for piece, timeline in zip(pieces, timelines, strict=True):
        assert min(abs(timeline.to_source(0.0) - t) for t in onsets) < 0.45
        assert piece.offset_s == timeline.source[0]


def test_plain_cuts_without_packing_cover_everything(vad: SileroVad) -> None:
    audio, _ = recording([6.7, 4.0, 9.0, 12.0, 5.0])
    pieces, timelines = cut(audio, RATE, STT, None, vad)
    assert sum(len(p.samples) for p in pieces) == len(audio)
    assert all(t.to_source(1.0) == pytest.approx(p.offset_s + 1.0) for p, t in zip(pieces, timelines, strict=True))


def test_times_map_across_the_joints() -> None:
    # Two stretches: 0-2 s of the piece is 10-12 s of the audio, 2-5 s is 40-43 s.
    timeline = Timeline(local=(0.0, 2.0), source=(10.0, 40.0), lengths=(2.0, 3.0), snap_s=0.5)
    assert timeline.to_source(0.5) == 10.5
    assert timeline.to_source(4.0) == 42.0
    # A start stamped in the pause before the joint opens the speech after it; an end stamped
    # just after the joint closes the speech before it.
    assert timeline.to_source(1.6) == 40.0 and timeline.to_source(2.0) == 40.0
    assert timeline.to_source(1.6, is_end=True) == 11.6
    assert timeline.to_source(2.3, is_end=True) == 12.0 and timeline.to_source(2.6, is_end=True) == 40.6
    assert timeline.to_source(9.0, is_end=True) == 43.0  # past the end: clamped
    piece = Piece(0, np.zeros(5 * RATE, dtype=np.float32), RATE, 10.0, True)
    reading = Reading(segments=[Segment(10.5, 11.8, " a"), Segment(11.8, 14.5, " b")])
    placed = place(reading, piece, timeline)
    assert [(s.start, s.end, s.seek) for s in placed.segments] == [(10.5, 11.8, 10.0), (40.0, 42.5, 10.0)]
    # A start stamped inside a laid-in pause (here 2-3 s of the piece) opens the speech after it.
    paused = Timeline.laid_out([10.0, 40.0], [2.0, 3.0], pauses_s=1.0, snap_s=0.5)
    assert paused.local == (0.0, 3.0) and paused.to_source(2.2) == 40.0 and paused.to_source(2.2, is_end=True) == 12.0
    # Stretches cut out of one long region touch: nothing to snap across.
    touching = Timeline(local=(0.0, 2.0), source=(10.0, 12.0), lengths=(2.0, 3.0), snap_s=0.5)
    assert touching.to_source(1.8) == pytest.approx(11.8) and touching.to_source(2.2, is_end=True) == 12.2


def test_loudness_stands_in_for_the_model() -> None:
    audio, truth = recording([3.0, 3.0])
    found = regions(LoudnessVad().probabilities(audio), VadParams(), len(audio) / RATE)
    assert len(found) == 2 and abs(found[0][0] - truth[0][0]) < 0.5


def test_a_start_stamped_in_the_padding_before_speech_is_the_speech_onset() -> None:
    timeline = Timeline.laid_out([10.0, 40.0], [2.0, 3.0], pauses_s=1.0, snap_s=0.5, leads=(0.3, 0.3))
    assert timeline.to_source(0.0) == 10.3 and timeline.to_source(0.5) == 10.5
    assert timeline.to_source(2.5) == 40.3 and timeline.to_source(3.1) == 40.3
    assert timeline.to_source(0.1, is_end=True) == pytest.approx(10.1)  # ends are not moved


def test_a_short_pause_is_kept_as_it_was_and_a_long_one_shortened() -> None:
    spans = [(0, 16_000), (20_000, 36_000), (100_000, 116_000)]  # 0.25 s, then 4 s left out
    assert [_pause(a, b, 16_000) for a, b in itertools.pairwise(spans)] == [4_000, 16_000]
    # The window (here 3 s) counts each pause: 1 + 0.25 + 1 fits, adding 1 + 1 more does not.
    assert _groups(spans, 48_000, 16_000) == [spans[:2], spans[2:]]
