"""Sentence segments cut from one piece's answer at its words' times (models/sentences.py)."""

from __future__ import annotations

from collections.abc import Sequence

from models.interface import Segment, TokenLogprob, Word
from models.sentences import sentence_groups, sentence_segments

# A toy tokenizer: token i writes PIECES[i].
PIECES = ["The", " cat", " sat", ".", " It", " slept", " well", "!", "<end>"]


def decode(tokens: Sequence[int]) -> str:
    return "".join(PIECES[t] for t in tokens if PIECES[t] != "<end>")


WORDS = [
    Word(" The", 0.5, 0.7),
    Word(" cat", 0.8, 1.0),
    Word(" sat.", 1.1, 1.4),
    Word(" It", 2.0, 2.2),
    Word(" slept", 2.3, 2.6),
    Word(" well!", 3.9, 4.2),
]


def answer() -> Segment:
    tokens = list(range(len(PIECES)))
    logprobs = [TokenLogprob(PIECES[t], -0.1 * t, []) for t in tokens]
    return Segment(0.0, 5.0, " " + decode(tokens), tokens=tokens, logprobs=logprobs, avg_logprob=-0.3)


def test_sentences_end_at_full_stops_and_long_pauses() -> None:
    groups = sentence_groups(WORDS, pause_s=1.0)
    assert [[w.word for w in g] for g in groups] == [[" The", " cat", " sat."], [" It", " slept"], [" well!"]]
    assert len(sentence_groups(WORDS, pause_s=2.0)) == 2
    assert sentence_groups([Word(' "Go."', 0, 1), Word(" Now", 1, 2)]) == [[Word(' "Go."', 0, 1)], [Word(" Now", 1, 2)]]


def test_each_sentence_takes_its_words_times_and_the_tokens_that_wrote_it() -> None:
    segments = sentence_segments(answer(), WORDS, decode, with_words=True)
    assert [s.text for s in segments] == [" The cat sat.", " It slept", " well!"]
    assert [(s.start, s.end) for s in segments] == [(0.5, 1.4), (2.0, 2.6), (3.9, 4.2)]
    assert [s.tokens for s in segments] == [[0, 1, 2, 3], [4, 5], [6, 7, 8]]
    assert [[lp.token for lp in s.logprobs] for s in segments] == [
        ["The", " cat", " sat", "."],
        [" It", " slept"],
        [" well", "!", "<end>"],
    ]
    assert [len(s.words) for s in segments] == [3, 2, 1] and all(s.avg_logprob == -0.3 for s in segments)
    assert all(not s.words for s in sentence_segments(answer(), WORDS, decode, with_words=False))


def test_words_that_do_not_spell_the_answer_leave_its_one_segment() -> None:
    assert sentence_segments(answer(), [], decode, with_words=True) == [answer()]
    [kept] = sentence_segments(answer(), WORDS[:-1], decode, with_words=True)
    assert (kept.start, kept.end, kept.text, kept.words) == (0.0, 5.0, answer().text, tuple(WORDS[:-1]))
