"""Who said what: words to speaker turns, runs into segments, stretches for families without word times."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.decode import Audio
from app.output.speakers import Labels, SpeakerSegment, Turns, attribute, merged_turns, speaker_spans
from app.scheduling.diarized import quiet_cuts
from models.interface import Segment, Word
from models.speakers.interface import SpeakerTurn

TURNS = [SpeakerTurn(0.0, 2.0, "A"), SpeakerTurn(2.2, 4.0, "B"), SpeakerTurn(4.0, 6.0, "A")]


def words(*spans: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(" " + text, start, end) for text, start, end in spans)


def test_a_word_goes_to_the_turn_it_overlaps_most() -> None:
    turns = Turns(TURNS)
    assert turns.speaker_at(0.5, 0.9) == "A"
    assert turns.speaker_at(1.8, 2.5) == "B"  # 0.2 s in A, 0.3 s in B
    assert turns.speaker_at(3.9, 4.3) == "A"  # across a turn change inside one word


def test_a_word_outside_every_turn_goes_to_the_nearest() -> None:
    turns = Turns(TURNS)
    assert turns.speaker_at(2.02, 2.08) == "A"  # in the gap, nearer A's end
    assert turns.speaker_at(2.12, 2.18) == "B"
    assert turns.speaker_at(6.5, 7.0) == "A"  # after the last turn
    assert Turns([]).speaker_at(0.0, 1.0) == "A"  # no turn found at all: one speaker


def test_runs_of_one_speaker_make_segments_and_no_word_is_lost() -> None:
    said = words(("Hello", 0.1, 0.5), ("there.", 0.6, 1.0), ("Hi,", 2.3, 2.6), ("how", 2.7, 2.9), ("so?", 4.1, 4.5))
    segments = [Segment(0.0, 5.0, "".join(w.word for w in said), words=said)]
    out = attribute(segments, Turns(TURNS))
    assert out == [
        SpeakerSegment(0.1, 1.0, "Hello there.", "A"),
        SpeakerSegment(2.3, 2.9, "Hi, how", "B"),
        SpeakerSegment(4.1, 4.5, "so?", "A"),
    ]
    assert " ".join(s.text for s in out).split() == segments[0].text.split()


def test_segments_break_at_the_model_segment_end_and_at_long_pauses() -> None:
    first = words(("one", 0.0, 0.3), ("two", 0.4, 0.6))
    second = words(("three", 0.7, 0.9), ("four", 1.95, 2.0))  # a 1.05 s pause, same speaker
    out = attribute(
        [Segment(0, 0.6, " one two", words=first), Segment(0.7, 2.0, " three four", words=second)], Turns(TURNS)
    )
    assert [(s.text, s.speaker) for s in out] == [("one two", "A"), ("three", "A"), ("four", "A")]


def test_a_segment_without_words_goes_whole_to_its_time() -> None:
    out = attribute([Segment(2.4, 3.8, " No words timed."), Segment(3.9, 4.0, "  ")], Turns(TURNS))
    assert out == [SpeakerSegment(2.4, 3.8, "No words timed.", "B")]


def test_turns_of_one_speaker_in_a_row_are_one_run() -> None:
    turns = [SpeakerTurn(0, 1, "A"), SpeakerTurn(1.2, 2, "A"), SpeakerTurn(2.5, 3, "B")]
    assert merged_turns(turns) == [SpeakerTurn(0, 2, "A"), SpeakerTurn(2.5, 3, "B")]


def test_stretches_cover_the_whole_recording_without_gaps() -> None:
    spans = speaker_spans(TURNS, 6.5)
    assert spans == [SpeakerTurn(0.0, 2.1, "A"), SpeakerTurn(2.1, 4.0, "B"), SpeakerTurn(4.0, 6.5, "A")]
    assert speaker_spans([], 3.0) == [SpeakerTurn(0.0, 3.0, "A")]
    # Cuts given by the caller (the quiet points) replace the middles.
    assert [s.end for s in speaker_spans(TURNS, 6.5, [2.15, 3.9])] == [2.15, 3.9, 6.5]


def test_cuts_fall_in_the_quiet_between_two_speakers() -> None:
    rate = 16_000
    samples = np.full(6 * rate, 0.3, np.float32)
    samples[int(2.30 * rate) : int(2.40 * rate)] = 0.0  # a pause just after B's turn starts, per the diarizer
    cuts = quiet_cuts(Audio(samples, rate), TURNS)
    assert cuts[0] == pytest.approx(2.35, abs=0.03)


def test_letters_by_first_appearance_and_known_names_kept() -> None:
    labels = Labels(["A"])
    assert [labels(s) for s in ["C", "A", "B", "C", "D"]] == ["B", "A", "C", "B", "D"]
