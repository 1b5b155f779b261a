"""The chosen diarizer with its real packaged weights on a real two-talker conversation (about 20 s).

The talkers are pocketsphinx-testdata's (Debian, 1.8 MB): a LibriVox reader and the talker of
`goforward.raw`, `something.raw` and `numbers.raw` (one voice by CAM++, another than `cards/`), alternating
with 0.3-1.0 s gaps; a turn's time is its speech's (bench/conversation.py finds it).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.conversation import POCKETSPHINX, load
from bench.der import der
from models.speakers.interface import KnownSpeaker, SpeakerTurn
from models.speakers.registry import load_diarizer
from tests.speakers.talkers import LIBRIVOX, RATE, two_talkers

COLLAR_S = 0.25
pytestmark = pytest.mark.skipif(
    not LIBRIVOX, reason="needs the Debian package pocketsphinx-testdata (make install-dev installs it)"
)


@pytest.fixture(scope="module")
def conversation() -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    return two_talkers()


@pytest.fixture(scope="module")
def diarizer():  # type: ignore[no-untyped-def]
    return load_diarizer("campplus")


def _check_turns(turns: list[SpeakerTurn], truth: list[tuple[float, float, str]], label: dict[str, str]) -> None:
    assert all(a.end <= b.start for a, b in itertools.pairwise(turns)), "sorted, not overlapping"
    for start, end, who in truth:
        inside = [t for t in turns if t.end > start - COLLAR_S and t.start < end + COLLAR_S]
        assert {t.speaker for t in inside} == {label[who]}, (start, end, who, inside)
        assert abs(inside[0].start - start) <= COLLAR_S and abs(inside[-1].end - end) <= COLLAR_S, (start, end, inside)


def test_two_talkers_their_turns_within_the_collar(diarizer, conversation) -> None:  # type: ignore[no-untyped-def]
    audio, truth = conversation
    assert 18 <= len(audio) / RATE <= 24
    turns = diarizer.diarize(audio)
    assert sorted({t.speaker for t in turns}) == ["A", "B"]
    _check_turns(turns, truth, {"reader": "A", "other": "B"})  # A spoke first
    assert der(truth, [(t.start, t.end, t.speaker) for t in turns], COLLAR_S).der <= 0.05


def test_known_speakers_are_named(diarizer, conversation) -> None:  # type: ignore[no-untyped-def]
    audio, truth = conversation
    known = [
        KnownSpeaker("Otto", load(POCKETSPHINX / "numbers.raw", RATE)),
        KnownSpeaker("Rita", load(LIBRIVOX[3], RATE)),
    ]
    assert all(2.0 <= len(k.audio) / RATE <= 10.0 for k in known)
    turns = diarizer.diarize(audio, known)
    _check_turns(turns, truth, {"reader": "Rita", "other": "Otto"})
