"""Telling a decoding loop from speech that truly repeats, by what the timestamps show.

OpenAI's reference retries a window whose whole text compresses too well (ratio > 2.4). That
cannot tell a loop from a list read twice, a drill or a chorus: honest repetitive speech
compresses just as well, gets retried up to T=1.0 and can keep a worse, hotter reading. A
loop shows in the timestamps instead: text keeps coming while time barely moves, more than
the seconds can hold, or the same segment repeats without the time its words need.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from models.interface import Segment
from models.whisper.vocab import compression_ratio

# Fast speech is about 5 words a second, ~7 tokens; dense scripts (Chinese, Japanese) reach ~12.
MAX_TOKENS_PER_S = 15.0
# Short segments may carry a few tokens in no time at all ("Yes." between two timestamps).
TOKEN_SLACK = 10
# One segment repeating itself inside (one timestamp pair around "a a a a a ...").
SEGMENT_COMPRESSION_LIMIT = 2.4
# This many identical segments in a row must take the time their words need.
MIN_RUN = 3


def _room(seconds: float) -> float:
    return MAX_TOKENS_PER_S * max(seconds, 0.0)


def _normalised(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def _too_dense(segment: Segment) -> bool:
    """More tokens than the segment's seconds allow, or its own text repeating inside it."""
    if len(segment.tokens) > _room(segment.end - segment.start) + TOKEN_SLACK:
        return True
    return compression_ratio(segment.text) > SEGMENT_COMPRESSION_LIMIT


def _stalled_run(segments: Sequence[Segment]) -> bool:
    """`MIN_RUN` or more identical segments in a row, squeezed into less time than their words need."""
    run: list[Segment] = []
    for segment in segments:
        if run and _normalised(segment.text) == _normalised(run[-1].text):
            run.append(segment)
        else:
            run = [segment]
        if len(run) >= MIN_RUN:
            tokens = sum(len(s.tokens) for s in run)
            if tokens > _room(run[-1].end - run[0].start):
                return True
    return False


def too_dense_for(tokens: int, seconds: float) -> bool:
    """More tokens than `seconds` of speech can hold."""
    return tokens > _room(seconds) + TOKEN_SLACK


def looped(segments: Sequence[Segment]) -> bool:
    """Whether a window's reading is a decoding loop rather than what was said."""
    if not segments:
        return False
    if any(_too_dense(s) for s in segments):
        return True
    tokens = sum(len(s.tokens) for s in segments)
    if tokens > _room(segments[-1].end - segments[0].start) + TOKEN_SLACK:
        return True
    return _stalled_run(segments)
