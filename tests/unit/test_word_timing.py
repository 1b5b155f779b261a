"""Word timestamps without an engine: warping, filtering, word splitting, punctuation, sound, placement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.output.formats import to_verbose_json
from app.output.transcript import Transcript
from models.interface import Piece, Reading, Segment, Word
from models.timeline import Timeline, place
from models.whisper import WhisperModel
from models.whisper.timing import alignment_matrix, dtw, median_filter, token_times
from models.whisper.words import (
    Timed,
    attach_words,
    merge_punctuation,
    snap_to_sound,
    split_words,
    time_words,
)


def slow_dtw(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The recurrence cell by cell, as OpenAI's reference writes it (a diagonal step only when strictly cheapest)."""
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    trace = -np.ones((n + 1, m + 1))
    cost[0, 0] = 0
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = x[i - 1, j - 1] + c
            trace[i, j] = t
    trace[0, :], trace[:, 0] = 2, 1
    i, j, path = n, m, []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        i, j = (i - 1, j - 1) if trace[i, j] == 0 else (i - 1, j) if trace[i, j] == 1 else (i, j - 1)
    rows, cols = np.array(path[::-1]).T
    return rows, cols


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (5, 40), (30, 12), (12, 300)])
def test_dtw_follows_the_reference_recurrence(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for x in (rng.normal(size=shape), rng.integers(0, 3, size=shape).astype(float)):  # ties too
        fast, slow = dtw(x), slow_dtw(x)
        assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])


def test_dtw_path_is_monotonic_and_finds_the_cheap_diagonal() -> None:
    x = np.ones((4, 8))
    for i, j in enumerate((1, 3, 5, 7)):
        x[i, j] = -10
    rows, cols = dtw(x)
    assert rows[0] == 0 and cols[0] == 0 and rows[-1] == 3 and cols[-1] == 7
    assert (np.diff(rows) >= 0).all() and (np.diff(cols) >= 0).all()
    assert {(1, 3), (2, 5), (3, 7)} <= set(zip(rows.tolist(), cols.tolist(), strict=True))


def test_median_filter_reflects_at_the_edges() -> None:
    x = np.random.default_rng(3).normal(size=(3, 4, 40))
    padded = np.pad(x, [(0, 0), (0, 0), (3, 3)], mode="reflect")
    expected = np.median(np.lib.stride_tricks.sliding_window_view(padded, 7, axis=-1), axis=-1)
    assert np.allclose(median_filter(torch.from_numpy(x)).numpy(), expected)
    short = torch.tensor([[1.0, 2.0]])
    assert torch.equal(median_filter(short), short)  # too short: unchanged


def test_token_times_follow_attention_moving_through_the_audio() -> None:
    # Three heads; decoder positions 0-1 are the prompt, 2-5 the text rows; each attends to its own stretch.
    attention = np.full((3, 7, 1500), 1e-6)
    for position, frame in enumerate((0, 0, 10, 40, 70, 100, 120)):
        attention[:, position, frame : frame + 20] = 1.0
    attention /= attention.sum(axis=-1, keepdims=True)
    times = token_times(alignment_matrix(torch.from_numpy(attention), num_frames=300, rows=slice(2, 6)))
    assert len(times) == 4 and (np.diff(times) > 0).all()
    # A row begins between the previous row's stretch and its own (the warping gives the gap to one of them).
    for time, (previous_end, own_start) in zip(times[1:], [(0.6, 0.8), (1.2, 1.4), (1.8, 2.0)], strict=True):
        assert previous_end - 0.02 <= time <= own_start + 0.02


def test_words_split_on_spaces_with_punctuation_apart(whisper_base: WhisperModel) -> None:
    tokenizer = whisper_base.tokenizer
    eot = whisper_base.vocab.eot
    tokens = [*tokenizer.encode(' He said "wonderful", then left.', add_special_tokens=False).ids, eot]

    def decode(ids: list[int]) -> str:
        return str(tokenizer.decode(list(ids), skip_special_tokens=False))

    words, groups = split_words(tokens, decode, eot, "en")
    assert "".join(words[:-1]) == ' He said "wonderful", then left.'
    assert words[-1] == "<|endoftext|>" and sum(len(g) for g in groups) == len(tokens)
    assert " said" in words and " then" in words
    timed = time_words(words, groups, np.arange(len(tokens), dtype=float))
    merge_punctuation(timed)
    shown = [t.word for t in timed if t.word]
    assert shown == [" He", " said", ' "wonderful",', " then", " left."]


def test_words_of_unspaced_languages_split_per_character(whisper_base: WhisperModel) -> None:
    tokenizer = whisper_base.tokenizer
    eot = whisper_base.vocab.eot
    tokens = [*tokenizer.encode("今日は", add_special_tokens=False).ids, eot]
    words, _ = split_words(tokens, lambda ids: str(tokenizer.decode(list(ids))), eot, "ja")
    assert "".join(words[:-1]) == "今日は" and "\ufffd" not in "".join(words)


def test_words_shrink_to_their_own_sound() -> None:
    rate = 16_000
    samples = np.zeros(3 * rate, dtype=np.float32)
    noise = np.random.default_rng(0).normal(scale=0.2, size=rate).astype(np.float32)
    samples[int(0.50 * rate) : int(0.90 * rate)] = noise[: int(0.4 * rate)]  # word one
    samples[int(1.60 * rate) : int(2.10 * rate)] = noise[: int(0.5 * rate)]  # word two, after a pause
    # The warping gave the pause to word two and a little of word one's end as well.
    timed = [Timed(" one", [1], 0.4, 0.85), Timed(" two", [2], 0.85, 2.3)]
    snap_to_sound(timed, samples, rate)
    assert timed[0].start == pytest.approx(0.5, abs=0.03) and timed[0].end == pytest.approx(0.85)
    assert timed[1].start == pytest.approx(1.6, abs=0.03) and timed[1].end == pytest.approx(2.1, abs=0.03)


def test_words_are_given_to_their_segments_and_set_their_ends() -> None:
    segments = [Segment(10.0, 11.5, " Hello there.", tokens=[1, 2, 3]), Segment(12.0, 13.0, " Bye.", tokens=[4, 5])]
    timed = [
        Timed(" Hello", [1], 0.1, 0.5),
        Timed(" there", [2], 0.6, 1.0),
        Timed(".", [3], 1.0, 1.1),
        Timed(" Bye", [4], 2.1, 2.5),
        Timed(".", [5], 2.5, 2.6),
    ]
    out = attach_words(segments, timed, offset_s=10.0, since_s=10.0)
    assert [w.word for w in out[0].words] == [" Hello", " there."]
    assert [w.word for w in out[1].words] == [" Bye."]
    assert out[0].words[0] == Word(" Hello", 10.1, 10.5)
    assert (out[0].start, out[0].end) == (10.1, 11.0) and (out[1].start, out[1].end) == (12.1, 12.5)


def test_word_times_follow_the_packed_timeline() -> None:
    # A piece at 100 s holding two stretches: local 0-2 s is 100-102 s, local 2-4 s is 110-112 s.
    timeline = Timeline((0.0, 2.0), (100.0, 110.0), (2.0, 2.0))
    segment = Segment(100.5, 103.5, " a b", words=(Word(" a", 100.5, 101.0), Word(" b", 102.5, 103.5)))
    piece = Piece(0, np.zeros(64_000, dtype=np.float32), 16_000, 100.0, True)
    placed = place(Reading(segments=[segment]), piece, timeline).segments[0]
    assert placed.words == (Word(" a", 100.5, 101.0), Word(" b", 110.5, 111.5))


def test_verbose_json_carries_words_and_segments_as_asked() -> None:
    segment = Segment(0.0, 1.0, " Hi.", tokens=[1], words=(Word(" Hi.", 0.1, 0.4),))
    transcript = Transcript("transcribe", "en", 1.0, [segment], language_name="english")
    words_only = to_verbose_json(transcript, ("word",))
    assert words_only["segments"] is None
    assert words_only["words"] == [{"word": " Hi.", "start": 0.1, "end": 0.4}]
    both = to_verbose_json(transcript, ("segment", "word"))
    assert len(both["segments"]) == 1 and len(both["words"]) == 1
    assert "words" not in to_verbose_json(transcript, ("segment",))
    assert "words" not in to_verbose_json(transcript)
