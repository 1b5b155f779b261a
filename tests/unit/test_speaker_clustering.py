"""The diarizers' pure steps: windows, clusters, small-cluster merging, frame labels, turns, names."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.speakers import clustering
from models.speakers.interface import SpeakerTurn
from models.speakers.registry import UnknownDiarizer, load_diarizer


def test_windows_cover_each_region_and_keep_short_ones_whole() -> None:
    spans = clustering.windows([(0.0, 1.0), (2.0, 5.0), (6.0, 6.1)], 1.5, 0.75)
    assert spans[0] == (0.0, 1.0)
    assert spans[1:] == [(2.0, 3.5), (2.75, 4.25), (3.5, 5.0)]  # the last ends with the region


def test_letters_go_on_past_z() -> None:
    assert [clustering.letter(i) for i in (0, 1, 25, 26, 27)] == ["A", "B", "Z", "AA", "AB"]


def _two_voices(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    return np.stack([(a if i % 2 == 0 else b) + 0.1 * rng.standard_normal(16) for i in range(n)])


def test_agglomerate_finds_two_voices() -> None:
    labels = clustering.agglomerate(_two_voices(10), threshold=0.5)
    assert len(set(labels[0::2])) == 1 and len(set(labels[1::2])) == 1 and labels[0] != labels[1]
    assert clustering.agglomerate(_two_voices(1), 0.5).tolist() == [0]


def test_merge_small_joins_a_stray_window_to_its_nearest_speaker() -> None:
    vectors = np.array([[1, 0], [1, 0.1], [0, 1], [0, 1.1], [0.9, 0.3]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1, 2])
    merged = clustering.merge_small(vectors, labels, np.array([1.0, 1.0, 1.0, 1.0, 0.5]), min_weight=1.0)
    assert merged.tolist() == [0, 0, 1, 1, 0]
    # All small: the largest stands and takes the rest.
    tiny = clustering.merge_small(vectors[:3], np.array([0, 0, 1]), np.full(3, 0.2), min_weight=1.0)
    assert tiny.tolist() == [0, 0, 0]


def test_frame_labels_follow_the_nearest_window_and_leave_silence_unlabelled() -> None:
    spans = [(0.0, 1.0), (0.5, 1.5), (2.0, 2.5)]
    frames = clustering.frame_labels(spans, np.array([0, 1, 0]), [(0.0, 1.5), (2.0, 2.5)], 3.0)
    assert frames[:75].tolist() == [0] * 75 and frames[75:150].tolist() == [1] * 75
    assert (frames[150:200] == -1).all() and (frames[200:250] == 0).all() and (frames[250:] == -1).all()


def test_smooth_removes_a_blip_inside_a_turn() -> None:
    frames = np.array([0] * 50 + [1] * 10 + [0] * 50 + [-1] * 5 + [1] * 30)
    out = clustering.smooth(frames, min_run=25)
    assert out.tolist() == [0] * 110 + [-1] * 5 + [1] * 30


def test_turns_are_lettered_by_first_appearance_and_named_where_known() -> None:
    frames = np.array([2] * 100 + [-1] * 50 + [0] * 100 + [1] * 100 + [2] * 50)
    assert clustering.turns(frames, {}) == [
        SpeakerTurn(0.0, 1.0, "A"),
        SpeakerTurn(1.5, 2.5, "B"),
        SpeakerTurn(2.5, 3.5, "C"),
        SpeakerTurn(3.5, 4.0, "A"),
    ]
    named = clustering.turns(frames, {0: "Ann"})
    assert [t.speaker for t in named] == ["A", "Ann", "B", "A"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(named))


def test_name_clusters_gives_each_name_once_and_only_above_the_threshold() -> None:
    centres = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.9, 0.1, 0.0]])
    refs = np.array([[1.0, 0.05, 0.0], [0.0, 0.0, 1.0]])
    assert clustering.name_clusters(centres, refs, ["Ann", "Bob"], threshold=0.5) == {0: "Ann"}
    assert clustering.name_clusters(centres, refs[:0], [], 0.5) == {}


def test_unknown_diarizer_is_a_clear_error() -> None:
    with pytest.raises(UnknownDiarizer, match="campplus"):
        load_diarizer("pyannote")
    with pytest.raises(UnknownDiarizer, match="off"):
        load_diarizer("off")
    assert load_diarizer("CampPlus").sample_rate == 16_000  # lazily: no weights loaded yet
