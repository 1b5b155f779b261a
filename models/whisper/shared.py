"""One window read for the short pieces of several requests ("riders"), and each rider's own segments back.

The riders are laid out in one window with `GAP_S` of silence between them: a `Timeline`
whose stretch `i` is rider `i`. Two things keep one rider's words out of another's answer:

- By construction, the timestamp rule is told where each rider lies (the window's stretches,
  as for packed speech). No timestamp may fall in the gap between two riders, and a segment
  opened in one rider must close before that rider ends (`rules.py`). So every segment has
  exactly one owner by its own timestamps.
- The text is still the model's choice, so each rider's share is checked against that rider's
  own audio: it begins where its speech begins, ends where its speech ends, and holds no more
  tokens than its seconds can. A stray sentence shows as a rider left short or overfull.

On any doubt nothing of the window is used and every rider is read alone (fail closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from models.interface import DecodeOptions, EngineCalls, Piece, Segment
from models.interface import SpeechToTextConfig as SttConfig
from models.signal import HOP, frame_rms, loudness_threshold
from models.timeline import Timeline
from models.whisper.loops import MAX_TOKENS_PER_S, TOKEN_SLACK
from models.whisper.reading import WindowDecoder
from models.whisper.rules import SECONDS_PER_TIMESTAMP, timestamp_spans
from models.whisper.window import WindowOutcome

# Silence laid between two riders.
GAP_S = 1.0
# A rider's first segment starts at most this long after its speech does...
LATE_START_S = 1.0
# ... and its last one ends at most this long before its speech does.
EARLY_END_S = 1.5
# Frames this close to a rider's loud frames are its speech (for its onset and end).
SPEECH_MARGIN_DB = 30.0


@dataclass(frozen=True)
class SharedReading:
    """Each rider's segments in its own piece's time, or why the window cannot be trusted."""

    shares: list[list[Segment]]
    input_tokens: int = 0
    output_tokens: int = 0
    doubt: str | None = None


def lay_out(pieces: Sequence[Piece]) -> tuple[np.ndarray, Timeline]:
    """The riders' samples joined with `GAP_S` of silence, and where each lies (its source: its own offset)."""
    rate = pieces[0].sample_rate
    gap = np.zeros(round(GAP_S * rate), dtype=np.float32)
    samples = np.concatenate([part for p in pieces for part in (gap, p.samples)][1:])
    timeline = Timeline.laid_out([p.offset_s for p in pieces], [p.duration for p in pieces], len(gap) / rate)
    return samples, timeline


def owner(segment: Segment, spans: Sequence[Sequence[int]]) -> int | None:
    """The rider whose timestamp span holds the whole segment, if one does.

    `spans` are the rule's own (`rules.timestamp_spans`): a rider's first allowed timestamp is
    its start rounded to the 20 ms grid, which may fall a few ms before its start in seconds.
    """
    start = round(segment.start / SECONDS_PER_TIMESTAMP)
    end = round(segment.end / SECONDS_PER_TIMESTAMP)
    return next((i for i, (lo, hi) in enumerate(spans) if lo <= start and end <= hi), None)


def in_rider_time(segments: list[Segment], timeline: Timeline, i: int) -> list[Segment]:
    """Segments read in rider `i`'s stretch, in the time of its piece (which starts at its offset)."""

    def at(t: float) -> float:
        return round(timeline.within(i, t), 3)

    return [replace(s, start=at(s.start), end=at(s.end), seek=timeline.source[i]) for s in segments]


def speech_bounds(piece: Piece) -> tuple[float, float] | None:
    """Where the piece's speech starts and ends, in seconds into it (None: it holds none)."""
    rms = frame_rms(piece.samples)
    loud = np.flatnonzero(rms > loudness_threshold(rms, SPEECH_MARGIN_DB))
    if len(loud) == 0 or float(rms.max(initial=0.0)) < 10 ** (-60 / 20):
        return None
    return loud[0] * HOP / piece.sample_rate, (loud[-1] * HOP + 400) / piece.sample_rate


def doubt(share: list[Segment], piece: Piece) -> str | None:
    """Why a rider's share (in its piece's time) may not be its own words, or None."""
    bounds = speech_bounds(piece)
    texts = [s for s in share if s.text.strip()]
    if bounds is None:
        return "text in a silent rider" if texts else None
    onset, end = bounds
    if not texts:
        return "no text for speech"
    if texts[0].start - piece.offset_s > onset + LATE_START_S:
        return "starts after its speech"
    if texts[-1].end - piece.offset_s < end - EARLY_END_S:
        return "ends before its speech"
    if sum(len(s.tokens) for s in texts) > MAX_TOKENS_PER_S * (end - onset) + TOKEN_SLACK:
        return "more words than its speech holds"
    return None


def split(
    outcome: WindowOutcome, pieces: Sequence[Piece], timeline: Timeline
) -> tuple[list[list[Segment]], str | None]:
    """Each rider's segments (in its own time) and the first doubt found."""
    owned: list[list[Segment]] = [[] for _ in pieces]
    spans = timestamp_spans(timeline.stretches)
    for segment in outcome.segments:
        i = owner(segment, spans)
        if i is None:
            return [], f"a segment at {segment.start:.2f}-{segment.end:.2f} s lies in no rider"
        owned[i].append(segment)
    shares = [in_rider_time(s, timeline, i) for i, s in enumerate(owned)]
    for i, (share, piece) in enumerate(zip(shares, pieces, strict=True)):
        if (why := doubt(share, piece)) is not None:
            return [], f"rider {i}: {why}"
    return shares, None


async def read_shared(
    model: WindowDecoder,
    pieces: Sequence[Piece],
    options: DecodeOptions,
    stt: SttConfig,
    calls: EngineCalls,
) -> SharedReading:
    """One greedy reading of the riders' window under the rider-aware timestamp rule, split and checked."""
    samples, timeline = lay_out(pieces)
    window_s = len(samples) / pieces[0].sample_rate
    request = model.get_generation_prompt(samples, stt, options, 0.0, timeline.stretches)
    result = await calls.generate(request, "shared")
    outcome = model.parse_window(result, window_s, 0.0, 0.0, final=True)
    spent = {"input_tokens": result.prompt_tokens, "output_tokens": len(result.token_ids)}
    if outcome.retry or result.finish_reason == "length":
        # The reading would be retried alone (unsure, looping or cut off): so it is, rider by rider.
        return SharedReading([], **spent, doubt="the window's reading failed its checks")
    shares, why = split(outcome, pieces, timeline)
    return SharedReading(shares, **spent, doubt=why)
