"""Where the times read in a piece fall in the audio: stretches of audio laid out with pauses between them.

A piece the model reads may be made of several stretches: speech regions packed into one
window with the silence between them shortened (`app/audio/packing.py`), or short clips of
several requests sharing one window (`models/whisper/sharing.py`). A `Timeline` maps a time
read in the piece back to the audio the stretch came from, and `place` moves a reading's
segments and words there.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

from models.interface import Piece, Reading, Segment, Word


@dataclass(frozen=True)
class Timeline:
    """Stretch `i` lies at `local[i]` seconds into the piece, `lengths[i]` long, and starts at `source[i]` in the audio.

    Between two stretches lies a pause (silence laid in, and both stretches' paddings). A
    segment that starts in a pause belongs to the speech after it, and one that ends there to
    the speech before it; `snap_s` is how far around a joint such stamps are moved. A stretch
    may begin with `leads[i]` seconds of padding before its speech: a start stamped there is
    the speech's (a model stamps a window's first words at its start).
    """

    local: tuple[float, ...]
    source: tuple[float, ...]
    lengths: tuple[float, ...]
    snap_s: float = 0.0
    leads: tuple[float, ...] = ()

    @classmethod
    def contiguous(cls, offset_s: float, duration_s: float) -> Timeline:
        return cls((0.0,), (offset_s,), (duration_s,))

    @classmethod
    def laid_out(
        cls,
        sources: list[float],
        lengths: list[float],
        pauses_s: float | list[float],
        snap_s: float = 0.0,
        leads: tuple[float, ...] = (),
    ) -> Timeline:
        """Stretches laid one after another with a pause between each two (one length for all, or one each)."""
        pauses = pauses_s if isinstance(pauses_s, list) else [pauses_s] * max(len(lengths) - 1, 0)
        local, at = [0.0], 0.0
        for length, pause in zip(lengths, pauses, strict=False):
            at += length + pause
            local.append(round(at, 6))
        return cls(tuple(local), tuple(sources), tuple(lengths), snap_s, leads)

    def _lead(self, i: int) -> float:
        return min(self.leads[i], self.lengths[i]) if self.leads else 0.0

    @property
    def stretches(self) -> tuple[tuple[float, float], ...]:
        """Each stretch's (start, end) in seconds into the piece."""
        return tuple((lo, lo + n) for lo, n in zip(self.local, self.lengths, strict=True))

    def within(self, i: int, local_s: float) -> float:
        """The audio's time for `local_s` seconds into the piece, held to stretch `i`."""
        return self.source[i] + min(max(local_s - self.local[i], 0.0), self.lengths[i])

    def _gap(self, i: int) -> bool:
        """Whether audio was left out between stretch `i` and the next (not a cut inside speech)."""
        return self.source[i + 1] - (self.source[i] + self.lengths[i]) > 1e-3

    def stretch_at(self, local_s: float) -> int:
        """The stretch that `local_s` falls in, or the last one before it (the first when before all)."""
        return min(max(bisect.bisect_right(self.local, local_s) - 1, 0), len(self.local) - 1)

    def to_source(self, local_s: float, is_end: bool = False) -> float:
        """The audio's time for `local_s` seconds into the piece."""
        last = len(self.local) - 1
        i = self.stretch_at(local_s)
        within = local_s - self.local[i]
        # A start in the pause after stretch i, or just before the next stretch, is the next one's.
        before_next = i < last and self._gap(i) and self.local[i + 1] - local_s <= self.snap_s
        if not is_end and i < last and (within >= self.lengths[i] or before_next):
            return self.source[i + 1] + self._lead(i + 1)
        if not is_end and within < self._lead(i):
            return self.source[i] + self._lead(i)
        if is_end and i > 0 and self._gap(i - 1) and within <= self.snap_s:
            return self.source[i - 1] + self.lengths[i - 1]
        return self.within(i, local_s)


def place(reading: Reading, piece: Piece, timeline: Timeline) -> Reading:
    """A piece's segments with their times in the original audio (families count from `offset_s`)."""

    def span(start_s: float, end_s: float) -> tuple[float, float]:
        start = timeline.to_source(start_s - piece.offset_s)
        end = timeline.to_source(end_s - piece.offset_s, is_end=True)
        return start, max(end, start)

    def moved(s: Segment) -> Segment:
        start, end = span(s.start, s.end)
        words = tuple(_retimed(w, *span(w.start, w.end)) for w in s.words)
        return replace(s, start=round(start, 3), end=round(end, 3), seek=round(timeline.source[0], 3), words=words)

    return replace(reading, segments=[moved(s) for s in reading.segments])


def _retimed(word: Word, start: float, end: float) -> Word:
    return replace(word, start=round(start, 2), end=round(end, 2))
