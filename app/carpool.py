"""Short pieces of concurrent requests share one window, and are split back by their timestamps.

An encoder-decoder model pays a whole window's encoder pass for a 3 s clip. Pieces of different
requests that would be read the same way (same options) ride together: joined in arrival order
with a second of silence between them, read once, and each segment goes back to the piece its
times fall in. No text may reach the wrong request: a segment that straddles two pieces, or a
piece that got no segment at all, sends the pieces concerned to be read alone.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import numpy as np

from models.interface import DecodeOptions, Piece, Reading, Segment

log = logging.getLogger("speech_gateway.carpool")

# Silence between two riders: a pause no segment should span.
GAP_S = 1.0
# A segment overlapping a piece by this much (or a third of a short piece) holds its words.
MIN_COVER_S = 0.5

ReadFn = Callable[[Piece, DecodeOptions, str], Awaitable[Reading]]


@dataclass(eq=False)  # riders are told apart by identity (their pieces hold arrays)
class _Rider:
    piece: Piece
    done: asyncio.Future[Reading]


@dataclass(eq=False)
class _Car:
    options: DecodeOptions
    riders: list[_Rider] = field(default_factory=list)
    departure: asyncio.TimerHandle | None = None
    trip: asyncio.Task[None] | None = None
    # Riders whose requests went away after departure: when all have, the trip is called off.
    gone: int = 0

    @property
    def length_s(self) -> float:
        return sum(r.piece.duration for r in self.riders) + GAP_S * max(len(self.riders) - 1, 0)


def _overlap(segment: Segment, span: tuple[float, float]) -> float:
    return max(0.0, min(segment.end, span[1]) - max(segment.start, span[0]))


def assign(segments: list[Segment], spans: list[tuple[float, float]]) -> tuple[list[list[Segment]], set[int]]:
    """Each segment to the one span it covers; the indices of spans a segment straddles or that got none.

    A segment covers a span when it overlaps a real part of it (`MIN_COVER_S`, or a third of a
    short span): timestamps a little into the gap or the next piece are imprecision, not speech.
    """
    out: list[list[Segment]] = [[] for _ in spans]
    alone: set[int] = set()
    for segment in segments:
        if not segment.text.strip():
            continue
        covered = [
            i for i, span in enumerate(spans) if _overlap(segment, span) >= min(MIN_COVER_S, (span[1] - span[0]) / 3)
        ]
        if len(covered) == 1:
            out[covered[0]].append(segment)
        else:
            # Two pieces' words in one segment, or a segment in no piece: no owner is certain.
            near = [i for i, (lo, hi) in enumerate(spans) if segment.start < hi + GAP_S and segment.end > lo - GAP_S]
            alone.update(covered or near)
    alone.update(i for i, got in enumerate(out) if not got)
    return out, alone


def _moved(segments: list[Segment], start_s: float, offset_s: float) -> list[Segment]:
    """Segments read at `start_s` into the shared window, in the time of the piece (which starts at `offset_s`)."""
    by = offset_s - start_s
    return [
        replace(
            s,
            start=round(s.start + by, 3),
            end=round(s.end + by, 3),
            seek=offset_s,
            words=tuple(replace(w, start=round(w.start + by, 2), end=round(w.end + by, 2)) for w in s.words),
        )
        for s in segments
    ]


class Carpool:
    """Collects short pieces per options for up to `wait_s`, or until a window is full, then reads them together."""

    def __init__(
        self, read: ReadFn, window_s: float, max_piece_s: float, wait_s: float, busy: Callable[[], bool] = lambda: True
    ) -> None:
        self._read = read
        # Whether the engine has work: an idle engine takes a lone piece at once, without waiting.
        self._busy = busy
        self.window_s = window_s
        self.max_piece_s = max_piece_s
        self.wait_s = wait_s
        self._cars: dict[DecodeOptions, _Car] = {}
        self._ids = itertools.count()
        self._trips: set[asyncio.Task[None]] = set()
        # Told of every shared window: how many pieces rode in it, how many were read again alone.
        self.on_trip: Callable[[int, int], None] | None = None

    def takes(self, piece: Piece) -> bool:
        return piece.duration <= self.max_piece_s

    async def read(self, piece: Piece, options: DecodeOptions) -> Reading:
        """The piece's reading, in its own time (as if read alone)."""
        loop = asyncio.get_running_loop()
        car = self._cars.get(options)
        if car is None and not self._busy():
            return await self._read(piece, options, f"pool{next(self._ids)}")
        if car is not None and car.length_s + GAP_S + piece.duration > self.window_s:
            self._depart(options)
            car = None
        if car is None:
            car = self._cars[options] = _Car(options)
            car.departure = loop.call_later(self.wait_s, self._depart, options)
        rider = _Rider(piece, loop.create_future())
        car.riders.append(rider)
        try:
            return await asyncio.shield(rider.done)
        except asyncio.CancelledError:
            if rider in car.riders and self._cars.get(options) is car:
                car.riders.remove(rider)  # not gone yet: leave without a trace
            else:
                car.gone += 1
                if car.gone == len(car.riders) and car.trip is not None:
                    car.trip.cancel()  # nobody waits for this window any more: abort its engine work
            raise

    def _depart(self, options: DecodeOptions) -> None:
        car = self._cars.pop(options, None)
        if car is None or not car.riders:
            return
        if car.departure is not None:
            car.departure.cancel()
        trip = car.trip = asyncio.get_running_loop().create_task(self._trip(car))
        self._trips.add(trip)
        trip.add_done_callback(self._trips.discard)

    async def _trip(self, car: _Car) -> None:
        riders = car.riders
        try:
            if len(riders) == 1:
                readings = [await self._read(riders[0].piece, car.options, f"pool{next(self._ids)}")]
            else:
                readings = await self._shared(car)
            for rider, reading in zip(riders, readings, strict=True):
                if not rider.done.done():
                    rider.done.set_result(reading)
        except Exception as error:  # every rider hears of it, as if it had read alone
            for rider in riders:
                if not rider.done.done():
                    rider.done.set_exception(error)

    async def _shared(self, car: _Car) -> list[Reading]:
        riders = car.riders
        rate = riders[0].piece.sample_rate
        gap = np.zeros(round(GAP_S * rate), dtype=np.float32)
        parts = [part for r in riders for part in (gap, r.piece.samples)][1:]
        window = Piece(0, np.concatenate(parts), rate, 0.0, True)
        shared = await self._read(window, car.options, f"pool{next(self._ids)}")
        starts = np.cumsum([0.0] + [r.piece.duration + GAP_S for r in riders[:-1]])
        spans = [(float(s), float(s) + r.piece.duration) for s, r in zip(starts, riders, strict=True)]
        owned, alone = assign(shared.segments, spans)
        total = sum(r.piece.duration for r in riders)
        readings: list[Reading | None] = []
        for i, rider in enumerate(riders):
            if i in alone:
                readings.append(None)
                continue
            share = rider.piece.duration / total
            readings.append(
                Reading(
                    segments=_moved(owned[i], spans[i][0], rider.piece.offset_s),
                    input_tokens=round(shared.input_tokens * share),
                    audio_tokens=round(shared.audio_tokens * share),
                    output_tokens=round(shared.output_tokens * share),
                )
            )
        again = [i for i, r in enumerate(readings) if r is None]
        if again:
            log.debug(
                "shared window of %d pieces at %s: %s read alone; segments %s",
                len(riders),
                [round(lo, 2) for lo, _ in spans],
                again,
                [(round(s.start, 2), round(s.end, 2), s.text[:30]) for s in shared.segments],
            )
        if self.on_trip is not None:
            self.on_trip(len(riders), len(again))
        redone = await asyncio.gather(
            *(self._read(riders[i].piece, car.options, f"pool{next(self._ids)}") for i in again)
        )
        for i, reading in zip(again, redone, strict=True):
            readings[i] = reading
        return [r for r in readings if r is not None]
