"""A piece's one segment split into sentence segments at the times of its aligned words.

A sentence ends at a word ending in . ? ! (closing quotes and brackets after it allowed) or before
a long pause. Each sentence segment takes its words' times, and the model's tokens (and their
logprobs) that wrote it, so that the segments together still hold every token of the piece.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from models.interface import Segment, Word

SENTENCE_END = ".?!。？！"
CLOSING = "\"'”’)]}»"
# Silence this long between two words ends a segment even without a full stop.
PAUSE_S = 1.0

Decode = Callable[[Sequence[int]], str]


def sentence_groups(words: Sequence[Word], pause_s: float = PAUSE_S) -> list[list[Word]]:
    """Consecutive runs of `words`, one per sentence."""
    groups: list[list[Word]] = []
    current: list[Word] = []
    for i, word in enumerate(words):
        current.append(word)
        following = words[i + 1] if i + 1 < len(words) else None
        ends = word.word.rstrip().rstrip(CLOSING)[-1:] in tuple(SENTENCE_END)
        if following is None or ends or following.start - word.end >= pause_s:
            groups.append(current)
            current = []
    return groups


def token_cuts(tokens: Sequence[int], decode: Decode, text: str, cuts: Sequence[int]) -> list[int]:
    """For each character offset in `text` (the cleaned answer), how many of `tokens` it takes to write it.

    The answer's raw decoding holds `text` (cleanup strips a wrapper around it); where it does not, every
    token goes to the first sentence.
    """
    raw = decode(tokens)
    start = raw.find(text)
    if start < 0 or not tokens:
        return [len(tokens) if cut else 0 for cut in cuts]
    written = [len(decode(tokens[: k + 1])) for k in range(len(tokens))]
    out = []
    for cut in cuts:
        target = start + cut
        out.append(next((k + 1 for k, n in enumerate(written) if n >= target), len(tokens)) if cut else 0)
    return out


def sentence_segments(
    segment: Segment, words: Sequence[Word], decode: Decode, with_words: bool, pause_s: float = PAUSE_S
) -> list[Segment]:
    """`segment` (one piece's, text with a leading space) as sentences timed by `words` (in absolute time).

    The words' text joined is the segment's text; if not (the aligner's tokenizer wrote it otherwise),
    the piece keeps its one segment, with its words when asked.
    """
    if not words or "".join(w.word for w in words) != segment.text:
        return [replace(segment, words=tuple(words) if with_words else ())]
    groups = sentence_groups(words, pause_s)
    texts = ["".join(w.word for w in group) for group in groups]
    bounds = [0]
    for text in texts:
        bounds.append(bounds[-1] + len(text))
    # Offsets into the stripped answer: the segment's text is the answer with one leading space.
    cuts = token_cuts(segment.tokens, decode, segment.text[1:], [max(0, b - 1) for b in bounds[:-1]] + [bounds[-1] - 1])
    cuts[-1] = len(segment.tokens)
    out = []
    for i, (group, text) in enumerate(zip(groups, texts, strict=True)):
        a, b = cuts[i], cuts[i + 1]
        out.append(
            replace(
                segment,
                start=group[0].start,
                end=max(group[-1].end, group[0].start),
                text=text,
                tokens=list(segment.tokens[a:b]),
                logprobs=list(segment.logprobs[a:b]),
                words=tuple(group) if with_words else (),
            )
        )
    return out
