"""Short pieces of concurrent requests ride one Whisper window together: Whisper's own economy.

Whisper's encoder always reads a 30 s window, so a 3 s clip pays for 30. Pieces of different
requests that would be decoded the same way wait up to `wait_s` for others (or until the
window is full), ride one window together (`shared.py` reads it and splits it back), and each
gets its own segments in its own time. Words are timed afterwards on each rider's own audio.
A rider whose share is in doubt is not alone: then the window's riders are read again, in two
windows of half as many (the same checks hold in each), and alone once they are few.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Protocol

from models import stages
from models.interface import (
    DecodeOptions,
    Emit,
    EngineCalls,
    Piece,
    Reading,
    Segment,
    SharingSetup,
    SpeechToTextConfig,
    Task,
)
from models.whisper.reading import WindowDecoder
from models.whisper.shared import GAP_S, SharedReading, read_shared

log = logging.getLogger("speech_gateway.sharing")

# Pieces this short may share a window; longer ones fill most of a window by themselves.
MAX_SHARED_PIECE_S = 10.0
# A window in doubt with this many riders or more is read again as two; fewer are read alone.
# (Measured on the bench's 64 clips: a doubt is one rider's, most often an open segment that
# runs from it to the window's end, so the other half keeps its window.)
SPLIT_FROM = 4


class SharingModel(WindowDecoder, Protocol):
    """The parts of `WhisperModel` its window sharing uses."""

    def get_speech_to_text_config(self, task: Task) -> SpeechToTextConfig: ...

    async def read(
        self, piece: Piece, options: DecodeOptions, calls: EngineCalls, emit: Emit | None = None
    ) -> Reading: ...

    async def timed_words(self, piece: Piece, segments: list[Segment], options: DecodeOptions) -> list[Segment]: ...


@dataclass(eq=False)  # riders are told apart by identity (their pieces hold arrays)
class Rider:
    piece: Piece
    options: DecodeOptions
    done: asyncio.Future[Reading]
    # The request the piece is of (its stage clock; the rider itself outside a request).
    request: object = None


@dataclass(eq=False)
class Car:
    """Riders waiting for, then riding, one window."""

    riders: list[Rider] = field(default_factory=list)
    departure: asyncio.TimerHandle | None = None
    trip: asyncio.Task[None] | None = None
    # Riders whose requests went away after departure: when all have, the trip is called off.
    gone: int = 0
    departed: float | None = None  # perf_counter() time

    @property
    def length_s(self) -> float:
        return sum(r.piece.duration for r in self.riders) + GAP_S * max(len(self.riders) - 1, 0)


def decoding_key(options: DecodeOptions) -> DecodeOptions:
    """What must be equal for two pieces to be decoded in one window (words are timed per rider).

    Timestamps always: a shared window is split between its clips by them.
    """
    return replace(options, word_timestamps=False, segment_times=True)


class WindowSharing:
    """Collects short pieces per decoding for up to `wait_s` or a full window, then reads them together."""

    def __init__(self, model: SharingModel, setup: SharingSetup, window_s: float) -> None:
        self.model = model
        self.setup = setup
        self.window_s = window_s
        self._cars: dict[DecodeOptions, Car] = {}
        self._ids = itertools.count()
        self._trips: set[asyncio.Task[None]] = set()

    def takes(self, piece: Piece) -> bool:
        return piece.duration <= MAX_SHARED_PIECE_S

    def _calls(self) -> EngineCalls:
        return self.setup.calls(f"pool{next(self._ids)}")

    async def _alone(self, rider: Rider) -> Reading:
        # Read as a shared window reads it (with timestamps), so a clip's text does not depend
        # on whether other requests were in flight.
        options = replace(rider.options, segment_times=True)
        return await self.model.read(rider.piece, options, self._calls())

    async def read(self, piece: Piece, options: DecodeOptions) -> Reading:
        """The piece's reading, in its own time, as if read alone."""
        key = decoding_key(options)
        loop = asyncio.get_running_loop()
        rider = Rider(piece, options, loop.create_future())
        rider.request = stages.current() or rider
        car = self._cars.get(key)
        if car is None and not self.setup.busy():
            return await self._alone(rider)  # an idle engine takes a lone piece at once
        if car is not None and car.length_s + GAP_S + piece.duration > self.window_s:
            self._depart(key)
            car = None
        if car is None:
            car = self._cars[key] = Car()
            car.departure = loop.call_later(self.setup.wait_s, self._depart, key)
        car.riders.append(rider)
        if not self.setup.expected():
            self._soon(key)
        joined = time.perf_counter()
        try:
            reading = await asyncio.shield(rider.done)
            self._clock(joined, car.departed)
            return reading
        except asyncio.CancelledError:
            if rider in car.riders and self._cars.get(key) is car:
                car.riders.remove(rider)  # not gone yet: leave without a trace
            else:
                car.gone += 1
                if car.gone == len(car.riders) and car.trip is not None:
                    car.trip.cancel()  # nobody waits for this window any more: abort its engine work
            raise

    @staticmethod
    def _clock(joined: float, departed: float | None) -> None:
        """The rider's request: waited from joining to departure, then rode one shared pass."""
        clock = stages.current()
        if clock is not None and departed is not None:
            clock.record("sharing_wait", joined, departed)
            clock.record_pass("shared", departed, time.perf_counter())

    def nudge(self) -> None:
        for key in list(self._cars):
            self._soon(key)

    def _soon(self, key: DecodeOptions) -> None:
        """The window leaves once the pieces made with this one have joined, unless others are on their way.

        Two turns of the loop: a request's pieces are made together and join on the next turn.
        """
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, self._depart_unless_expected, key)

    def _depart_unless_expected(self, key: DecodeOptions) -> None:
        if not self.setup.expected():
            self._depart(key)

    def _depart(self, key: DecodeOptions) -> None:
        car = self._cars.pop(key, None)
        if car is None or not car.riders:
            return
        if car.departure is not None:
            car.departure.cancel()
        car.departed = time.perf_counter()
        # A context of its own: the trip's engine passes belong to every rider, not to the
        # request whose timer or arrival happened to send it off (each rider records its share).
        trip = car.trip = asyncio.get_running_loop().create_task(self._trip(car), context=contextvars.Context())
        self._trips.add(trip)
        trip.add_done_callback(self._trips.discard)

    async def _trip(self, car: Car) -> None:
        riders = car.riders
        # Sharing is between requests: one request's own pieces are read alone, side by side,
        # which is sooner than one after another in a window (2 min with pauses: RTFx 63.7 -> 83.2).
        one_request = len({id(r.request) for r in riders}) == 1
        try:
            readings = await (self._each_alone(riders) if one_request else self._shared(riders))
            for rider in riders:
                if not rider.done.done():
                    rider.done.set_result(readings[rider])
        except Exception as error:  # every rider hears of it, as if it had read alone
            for rider in riders:
                if not rider.done.done():
                    rider.done.set_exception(error)

    async def _each_alone(self, riders: list[Rider]) -> dict[Rider, Reading]:
        readings = await asyncio.gather(*(self._alone(r) for r in riders))
        return dict(zip(riders, readings, strict=True))

    async def _shared(self, riders: list[Rider]) -> dict[Rider, Reading]:
        pieces = [r.piece for r in riders]
        options = decoding_key(riders[0].options)
        stt = self.model.get_speech_to_text_config(options.task)
        shared = await read_shared(self.model, pieces, options, stt, self._calls())
        self._told(len(riders), shared)
        if shared.doubt is not None:
            return await self._again(riders)
        total_s = sum(p.duration for p in pieces)
        readings = await asyncio.gather(*(self._finished(r, shared, i, total_s) for i, r in enumerate(riders)))
        return dict(zip(riders, readings, strict=True))

    async def _again(self, riders: list[Rider]) -> dict[Rider, Reading]:
        """The riders of a window in doubt, read again: in two windows of half of them, or alone."""
        if len(riders) < SPLIT_FROM:
            return await self._each_alone(riders)
        half = len(riders) // 2
        first, second = await asyncio.gather(self._shared(riders[:half]), self._shared(riders[half:]))
        return {**first, **second}

    async def _finished(self, rider: Rider, shared: SharedReading, i: int, total_s: float) -> Reading:
        """Rider `i`'s share as its reading: words timed on its own audio, the window's cost shared out."""
        segments = shared.shares[i]
        if rider.options.word_timestamps:
            segments = await self.model.timed_words(rider.piece, segments, rider.options)
        share = rider.piece.duration / total_s
        return Reading(
            segments=segments,
            input_tokens=round(shared.input_tokens * share),
            output_tokens=round(shared.output_tokens * share),
        )

    def _told(self, riders: int, shared: SharedReading) -> None:
        if shared.doubt is not None:
            log.debug("shared window of %d pieces read again: %s", riders, shared.doubt)
        if self.setup.on_window is not None:
            self.setup.on_window(riders, riders if shared.doubt is not None else 0)
