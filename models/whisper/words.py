"""Words from tokens and token times: split and timed as OpenAI's reference `add_word_timestamps` does.

Words begin with their space ("␣world"); punctuation joins the word it follows (or, for an
opening mark, the word it precedes). Times are each word's first and last token boundaries,
then two corrections of the reference: a word at a sentence end or after a pause may not
stretch beyond twice the median word, and a segment's ends follow its first and last words.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from models.interface import Segment, Word
from models.signal import HOP, frame_rms, loudness_threshold

PREPEND_PUNCTUATION = "\"'“¿([{-"
APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END = ".。!！?？"
# Written without spaces between words: split wherever a token completes characters.
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})
MAX_MEDIAN_WORD_S = 0.7
# Sound this far under the recording's loud frames still counts as a word's (quiet consonants).
WORD_SOUND_MARGIN_DB = 30.0
MIN_PAUSE_S = 0.1

Decode = Callable[[Sequence[int]], str]


@dataclass
class Timed:
    """A word being assembled: its text, tokens and times in seconds of the window."""

    word: str
    tokens: list[int]
    start: float
    end: float


def split_on_unicode(tokens: Sequence[int], decode: Decode) -> tuple[list[str], list[list[int]]]:
    """Runs of tokens that each decode to whole characters (a character may span tokens)."""
    full = decode(tokens)
    words: list[str] = []
    groups: list[list[int]] = []
    current: list[int] = []
    offset = 0
    for token in tokens:
        current.append(token)
        text = decode(current)
        broken = "\ufffd" in text
        if not broken or full[offset + text.index("\ufffd")] == "\ufffd":
            words.append(text)
            groups.append(current)
            current = []
            offset += len(text)
    return words, groups


def split_words(
    tokens: Sequence[int], decode: Decode, eot: int, language: str | None
) -> tuple[list[str], list[list[int]]]:
    """Words of `tokens` (text tokens, then end-of-text as a word of its own)."""
    pieces, groups = split_on_unicode(tokens, decode)
    if language in UNSPACED_LANGUAGES:
        return pieces, groups
    words: list[str] = []
    out: list[list[int]] = []
    for piece, group in zip(pieces, groups, strict=True):
        starts_word = group[0] >= eot or piece.startswith(" ") or piece.strip() in string.punctuation
        if starts_word or not words:
            words.append(piece)
            out.append(list(group))
        else:
            words[-1] += piece
            out[-1].extend(group)
    return words, out


def time_words(words: list[str], groups: list[list[int]], token_starts: np.ndarray) -> list[Timed]:
    """Each word (the end-of-text word excluded) from its first token's time to the next word's."""
    bounds = np.pad(np.cumsum([len(g) for g in groups[:-1]]), (1, 0))
    starts = token_starts[bounds[:-1]]
    ends = token_starts[bounds[1:]]
    return [
        Timed(word, group, float(start), float(end))
        for word, group, start, end in zip(words[:-1], groups[:-1], starts, ends, strict=True)
    ]


def snap_to_sound(timed: list[Timed], samples: np.ndarray, rate: int, join_s: float = 0.0) -> None:
    """Each word shrinks to the loudest stretch of sound inside its span.

    Attention cannot tell a pause from the word after it: the warping path gives the pause to
    one of the two words, so a word after a pause starts in it (measured: 0.47 s early on
    average for words 0.15-0.6 s apart), and its span may begin with the last sound of the
    word before. Stretches are sound broken by no pause of `MIN_PAUSE_S` or more (a stop
    consonant is shorter). Only a word's own span is looked at, so a word never moves onto
    another's sound; a span without sound is left as it is. With `join_s`, the stretch also takes
    in its neighbours across a silence shorter than that, unless they touch the span's edge (then
    they are likely the sound of the word beside): recorded words break inside at a stop closure.
    """
    rms = frame_rms(samples)
    loud = rms > loudness_threshold(rms, WORD_SOUND_MARGIN_DB)
    per_second = rate / HOP
    for t in timed:
        first = int(t.start * per_second)
        span = loud[first : int(np.ceil(t.end * per_second))]
        stretch = _loudest_stretch(span, rms[first:], per_second, join_s * per_second)
        if stretch is not None:
            t.start = max(t.start, (first + stretch[0]) / per_second)
            t.end = max(t.start, min(t.end, (first + stretch[1]) / per_second))


def _loudest_stretch(
    loud: np.ndarray, rms: np.ndarray, per_second: float, join_frames: float = 0.0
) -> tuple[int, int] | None:
    """Frames [start, end) of the stretch of sound with the most energy, or None."""
    frames = np.flatnonzero(loud)
    if not len(frames):
        return None
    breaks = np.flatnonzero(np.diff(frames) >= MIN_PAUSE_S * per_second)
    starts = frames[np.concatenate([[0], breaks + 1])]
    ends = frames[np.concatenate([breaks, [len(frames) - 1]])] + 1
    energy = [float(rms[s:e].sum()) for s, e in zip(starts, ends, strict=True)]
    first = last = int(np.argmax(energy))
    while first > 0 and starts[first] - ends[first - 1] < join_frames and starts[first - 1] > 0:
        first -= 1
    while last < len(ends) - 1 and starts[last + 1] - ends[last] < join_frames and ends[last + 1] < len(loud):
        last += 1
    return int(starts[first]), int(ends[last])


def merge_punctuation(timed: list[Timed]) -> None:
    """Opening marks join the next word, closing marks the previous one; the donor keeps no text."""
    i, j = len(timed) - 2, len(timed) - 1
    while i >= 0:
        previous, following = timed[i], timed[j]
        if previous.word.startswith(" ") and previous.word.strip() in PREPEND_PUNCTUATION:
            following.word = previous.word + following.word
            following.tokens = previous.tokens + following.tokens
            previous.word, previous.tokens = "", []
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(timed):
        previous, following = timed[i], timed[j]
        if not previous.word.endswith(" ") and following.word in APPEND_PUNCTUATION:
            previous.word += following.word
            previous.tokens = previous.tokens + following.tokens
            following.word, following.tokens = "", []
        else:
            i = j
        j += 1


def _clamp_sentence_ends(timed: list[Timed], max_s: float) -> None:
    for i in range(1, len(timed)):
        if timed[i].end - timed[i].start > max_s:
            if timed[i].word in SENTENCE_END:
                timed[i].end = timed[i].start + max_s
            elif timed[i - 1].word in SENTENCE_END:
                timed[i].start = timed[i].end - max_s


def median_word_s(timed: list[Timed]) -> float:
    durations = np.array([t.end - t.start for t in timed])
    durations = durations[durations.nonzero()]
    return min(MAX_MEDIAN_WORD_S, float(np.median(durations))) if len(durations) else 0.0


def attach_words(segments: Sequence[Segment], timed: list[Timed], offset_s: float, since_s: float) -> list[Segment]:
    """Segments of one window with their words (window times + `offset_s`), ends moved to the words.

    `since_s` is where speech last ended before this window (a long first word after a pause is cut).
    """
    median = median_word_s(timed)
    longest = median * 2
    _clamp_sentence_ends(timed, longest)
    merge_punctuation(timed)
    out: list[Segment] = []
    index = 0
    for segment in segments:
        words: list[Word] = []
        taken = 0
        while index < len(timed) and taken < len(segment.tokens):
            t = timed[index]
            if t.word:
                words.append(Word(t.word, round(offset_s + t.start, 2), round(offset_s + t.end, 2)))
            taken += len(t.tokens)
            index += 1
        if not words:
            out.append(segment)
            continue
        words = _after_pause(words, since_s, median, longest)
        segment, words = _fit_ends(segment, words, median)
        since_s = segment.end
        out.append(replace(segment, words=tuple(words)))
    return out


def _after_pause(words: list[Word], since_s: float, median: float, longest: float) -> list[Word]:
    """The first word after a pause may not stretch back into it (nor the second word forward)."""
    first = words[0]
    if first.end - since_s > median * 4 and (
        first.end - first.start > longest or (len(words) > 1 and words[1].end - first.start > longest * 2)
    ):
        if len(words) > 1 and words[1].end - words[1].start > longest:
            boundary = max(words[1].end / 2, words[1].end - longest)
            first = replace(first, end=boundary)
            words[1] = replace(words[1], start=boundary)
        words[0] = replace(first, start=max(0.0, first.end - longest))
    return words


def _fit_ends(segment: Segment, words: list[Word], median: float) -> tuple[Segment, list[Word]]:
    """The segment starts at its first word and ends at its last, unless that word is far too long."""
    first = words[0]
    if segment.start < first.end and segment.start - 0.5 > first.start:
        words[0] = replace(first, start=max(0.0, min(first.end - median, segment.start)))
    else:
        segment = replace(segment, start=first.start)
    last = words[-1]
    if segment.end > last.start and segment.end + 0.5 < last.end:
        words[-1] = replace(last, end=max(last.start + median, segment.end))
    else:
        segment = replace(segment, end=last.end)
    return segment, words
