"""bench/conversation.py: the segment-timing metrics, and the layout of the real-conversation set."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench import conversation as conv
from bench.asterisk import MissingSounds
from bench.conversation import GAP_S, Segment, Turn

TURNS = [
    Turn(4.0, 6.0, "Hello, this is the front desk.", "a"),
    Turn(6.8, 9.0, "I would like to book a room.", "b"),
    Turn(10.0, 12.5, "For how many nights?", "a"),
]


# ---- metrics ----


def test_start_errors_first_segment_and_multi_turn_segments() -> None:
    segments = [
        Segment(3.5, 6.1, " Hello, this is the front desk."),
        Segment(6.9, 12.5, " I would like to book a room. For how many nights?"),
    ]
    text = "Hello, this is the front desk. I would like to book a room. For how many nights?"
    row = conv.score(TURNS, segments, text, audio_s=14.0, wall_s=2.0)
    assert row["start_errors"] == pytest.approx([0.5, 0.1, 3.1])
    assert row["median_start_error_s"] == pytest.approx(0.5)
    assert row["max_start_error_s"] == pytest.approx(3.1)
    assert row["first_segment_error_s"] == pytest.approx(0.5)
    assert row["longest_segment_s"] == pytest.approx(5.6)
    assert row["longest_sentences"] == 2
    assert row["longest_turns"] == 2
    assert row["multi_turn_segments"] == 1
    assert row["wer"] == 0.0
    assert row["rtfx"] == pytest.approx(7.0)


def test_no_segments_gives_no_figures_and_every_word_deleted() -> None:
    row = conv.score(TURNS, [], "", audio_s=14.0, wall_s=1.0)
    assert row["segments"] == 0
    assert row["median_start_error_s"] is None and row["first_segment_error_s"] is None
    assert row["longest_segment_s"] is None and row["longest_turns"] is None
    assert row["wer"] == 1.0


def test_first_segment_error_uses_the_earliest_segment() -> None:
    segments = [Segment(7.0, 9.0, "b"), Segment(4.2, 6.0, "a")]
    assert conv.first_segment_error([4.0, 7.0], segments) == pytest.approx(0.2)
    assert conv.first_segment_error([4.0], []) is None


def test_longest_segment_and_its_sentences() -> None:
    segments = [
        Segment(0.0, 2.0, "Short."),
        Segment(2.0, 11.0, "One long sentence, with a clause"),
        Segment(11, 12, ""),
    ]
    longest = conv.longest_segment(segments)
    assert longest is not None and longest.start == 2.0
    assert conv.sentences(longest.text) == 1
    assert conv.sentences("Yes. No? Maybe! 3.5 people") == 4
    assert conv.sentences(" And Mr. John Dashwood had then leisure to consider how much there might be.") == 1
    assert conv.sentences("At the sound of the tone, the time will be exactly...") == 1
    assert conv.sentences("") == 0
    assert conv.longest_segment([]) is None


def test_turns_spanned_needs_a_real_overlap() -> None:
    assert conv.turns_spanned(Segment(5.9, 9.0, ""), TURNS) == 1  # 0.1 s of the first turn does not count
    assert conv.turns_spanned(Segment(3.0, 13.0, ""), TURNS) == 3
    assert conv.turns_spanned(Segment(9.1, 9.9, ""), TURNS) == 0


# ---- layout ----


def test_layout_gaps_lead_in_and_lengths() -> None:
    lengths = [1.5, 3.0, 0.8, 2.2, 4.1, 1.0, 2.5, 1.7]
    spans = conv.layout(lengths, random.Random(3), (3.0, 7.0))
    assert 3.0 <= spans[0][0] <= 7.0
    for (start, end), length in zip(spans, lengths, strict=True):
        assert end - start == pytest.approx(length, abs=0.002)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert GAP_S[0] - 0.002 <= start - end <= GAP_S[1] + 0.002  # no overlap, gaps drawn in range
    assert spans == conv.layout(lengths, random.Random(3), (3.0, 7.0))


def test_alternate_gives_each_talker_every_other_turn() -> None:
    a = [conv.Utterance("a", str(i), Path(f"a{i}")) for i in range(3)]
    b = [conv.Utterance("b", str(i), Path(f"b{i}")) for i in range(6)]
    talkers = [u.talker for u in conv.alternate(a, b)]
    assert talkers == ["b", "a", "b", "a", "b", "a", "b"]


def test_cut_and_mix_put_the_speech_where_the_turn_says() -> None:
    rate = 8000
    t = np.arange(round(0.6 * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    recording = np.concatenate([np.zeros(rate // 2, np.float32), tone, np.zeros(rate, np.float32)])
    clip, onset, offset = conv.cut(recording, rate)
    assert offset - onset == pytest.approx(0.6, abs=0.02)
    audio = conv.mix([(clip, onset), (clip, onset)], [2.0, 3.5], rate)
    for start in (2.0, 3.5):
        before = audio[round((start - 0.2) * rate) : round((start - 0.02) * rate)]
        after = audio[round((start + 0.02) * rate) : round((start + 0.2) * rate)]
        assert np.abs(before).max() < 1e-3 < np.sqrt(np.mean(after**2))


def test_pocketsphinx_transcription_lines() -> None:
    lines = ["<s> ten of clubs  </s> (001)", "<s> he was not an ill disposed young man </s> (x-0880)", "junk"]
    assert conv.pocketsphinx_texts(lines) == {"001": "ten of clubs", "x-0880": "he was not an ill disposed young man"}


# ---- the set itself (real recordings from Debian packages) ----


def level(audio: np.ndarray, rate: int, a: float, b: float) -> float:
    part = audio[round(a * rate) : round(b * rate)].astype(np.float64)
    return float(10 * np.log10(np.mean(part**2)))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("building the conversation set needs ffmpeg (G.722 prompts)")
    directory = tmp_path_factory.mktemp("conversations")
    try:
        conv.build_set(directory)
    except MissingSounds as exc:
        pytest.skip(f"{exc} (apt-get install -y {' '.join(conv.PACKAGES)})")
    return directory


def test_set_has_telephone_and_wideband_calls_of_alternating_turns(built: Path) -> None:
    for name, rate, _, _, lead_s, _, _, gaps_s in conv.CALLS:
        truth = json.loads((built / f"{name}.json").read_text())
        turns = [Turn(**t) for t in truth["turns"]]
        assert sf.info(str(built / f"{name}.wav")).samplerate == rate == truth["rate"]
        assert 25.0 <= truth["duration_s"] <= 60.0
        assert 8 <= len(turns) <= 14
        assert lead_s[0] <= turns[0].start_s <= lead_s[1]
        assert all(t.text and t.end_s > t.start_s for t in turns)
        assert all(x.talker != y.talker for x, y in itertools.pairwise(turns))
        gaps = [y.start_s - x.end_s for x, y in itertools.pairwise(turns)]
        assert all(gaps_s[0] - 0.002 <= g <= gaps_s[1] + 0.002 for g in gaps)
    assert {rate for _, rate, *_ in conv.CALLS} == {8000, 16000}


def test_set_turns_start_where_their_speech_was_placed(built: Path) -> None:
    for name, *_ in conv.CALLS:
        audio, rate = sf.read(str(built / f"{name}.wav"), dtype="float32")
        turns = [Turn(**t) for t in json.loads((built / f"{name}.json").read_text())["turns"]]

        for turn in turns:  # the speech comes in at the turn's start, not before it
            after = level(audio, rate, turn.start_s, turn.start_s + 0.15)
            assert after > level(audio, rate, turn.start_s - 0.25, turn.start_s - 0.05) + 8
