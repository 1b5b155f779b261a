"""Sentence segments of a long reading grouped back into the pieces they were read in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RATE = 16_000
# Segment times are rounded to milliseconds; a piece's bounds are samples.
SLACK_S = 0.011


def by_piece(segments: Sequence[Any], bounds: Sequence[tuple[int, int]]) -> list[list[Any]]:
    """The segments of each piece, in order; every segment lies inside one piece, times in order.

    An audio LLM's piece is one answer, cut into sentences timed by aligning it to the audio.
    """
    groups: list[list[Any]] = [[] for _ in bounds]
    last_end = 0.0
    for segment in segments:
        assert segment.start >= last_end - SLACK_S and segment.start <= segment.end, segment
        inside = [
            i
            for i, (a, b) in enumerate(bounds)
            if a / RATE - SLACK_S <= segment.start and segment.end <= b / RATE + SLACK_S
        ]
        groups[inside[0]].append(segment)
        last_end = segment.end
    return groups


def piece_texts(segments: Sequence[Any], bounds: Sequence[tuple[int, int]]) -> list[str]:
    """Each piece's text, its sentences joined."""
    return ["".join(s.text for s in group).strip() for group in by_piece(segments, bounds)]
