"""Where one request's time goes: a per-request stage clock, carried in a context variable.

The gateway starts a clock per request; code on the request's way records named intervals
into whichever clock is current (none: nothing is recorded). It lives here, below both `app/`
and the families, so a family may time its own steps without knowing about HTTP.

Stages of one request overlap (pieces are read concurrently), so two views are kept:
- `exclusive()`: each instant of the request is given to at most one stage, the first in
  `STAGES` order among those active then, so the stages add up to no more than the request's
  wall time (the rest is routing, parsing, sending: `other`);
- `passes`: every engine pass with its own duration and kind; these overlap each other.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

# Critical-path stages, most specific first: an instant in an engine pass and in a sharing
# wait (another piece) counts as engine time; time inside the decoder's resampler as resample.
# `model` is the family's own work around its passes (prompts, parsing): what is left of reading;
# `route` the time before the route's handler ran (routing, authentication, dependencies).
STAGES = (
    "render",
    "align",
    "engine",
    "sharing_wait",
    "model",
    "vad",
    "resample",
    "decode",
    "admission_wait",
    "upload",
    "route",
)
# Kinds of engine pass, told apart by the tag a family gives each call (see `pass_kind`).
PASS_KINDS = ("first", "tail", "fallback", "lang", "shared", "warmup", "other")

# Tags families use: `d<depth>-t<temperature>` for a window read at a depth (0: the piece's
# start; more: a tail read again), with `-fb` (a hotter fallback reading) or `-np` (read again
# without the prompt); `lang<i>` language detection; `shared` a window of several requests;
# `chat` a one-pass family's reading.
_WINDOW = re.compile(r"d(\d+)-t[\d.]+(-fb|-np)*$")


def pass_kind(tag: str) -> str:
    """The kind of engine pass a family's call tag names."""
    if match := _WINDOW.search(tag):
        if match.group(2):
            return "fallback"
        return "tail" if int(match.group(1)) > 0 else "first"
    for prefix, kind in (("lang", "lang"), ("shared", "shared"), ("chat", "first"), ("warmup", "warmup")):
        if tag.startswith(prefix):
            return kind
    return "other"


@dataclass(frozen=True)
class Interval:
    name: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass
class StageClock:
    """Intervals of one request, on `time.perf_counter()`'s scale."""

    started: float = field(default_factory=time.perf_counter)
    intervals: list[Interval] = field(default_factory=list)
    # Engine passes as (kind, interval); each is also an `engine` interval above.
    passes: list[tuple[str, Interval]] = field(default_factory=list)

    def record(self, name: str, start: float, end: float) -> None:
        self.intervals.append(Interval(name, start, end))

    def record_pass(self, kind: str, start: float, end: float) -> None:
        self.passes.append((kind, Interval(kind, start, end)))
        self.record("engine", start, end)

    def pass_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind, _ in self.passes:
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def exclusive(self, end: float | None = None) -> dict[str, float]:
        """Seconds per stage with overlaps given to the earlier stage in `STAGES` (a sweep)."""
        end = time.perf_counter() if end is None else end
        rank = {name: i for i, name in enumerate(STAGES)}
        spans = [iv for iv in self.intervals if iv.name in rank and iv.end > iv.start]
        edges = sorted({self.started, end, *(t for iv in spans for t in (iv.start, iv.end))})
        totals = dict.fromkeys(STAGES, 0.0)
        for lo, hi in itertools.pairwise(edges):
            if lo < self.started or hi > end:
                continue
            active = [iv.name for iv in spans if iv.start <= lo and iv.end >= hi]
            if active:
                totals[min(active, key=rank.__getitem__)] += hi - lo
        return {name: seconds for name, seconds in totals.items() if seconds > 0}


_current: ContextVar[StageClock | None] = ContextVar("stage_clock", default=None)


def current() -> StageClock | None:
    return _current.get()


@contextmanager
def clocked() -> Iterator[StageClock]:
    """A fresh clock, current for the code inside (and the tasks and threads it hands the context)."""
    clock = StageClock()
    token = _current.set(clock)
    try:
        yield clock
    finally:
        _current.reset(token)


@contextmanager
def _timed(record: Callable[[StageClock, float, float], None]) -> Iterator[None]:
    """Times the code inside and hands (clock, start, end) to `record`, if a clock is current."""
    clock = _current.get()
    start = time.perf_counter()
    try:
        yield
    finally:
        if clock is not None:
            record(clock, start, time.perf_counter())


def stage(name: str) -> AbstractContextManager[None]:
    """Records the time spent inside as stage `name` of the current request, if any."""
    return _timed(lambda clock, start, end: clock.record(name, start, end))


def record_bits(name: str, seconds: float) -> None:
    """Records `seconds` of `name` done in many small bits, as one interval ending now."""
    clock = _current.get()
    if clock is not None and seconds > 0:
        now = time.perf_counter()
        clock.record(name, now - seconds, now)


def since_start(name: str) -> None:
    """Records `name` from the request's start to now (what came before the handler ran)."""
    clock = _current.get()
    if clock is not None:
        clock.record(name, clock.started, time.perf_counter())


def engine_pass(tag: str) -> AbstractContextManager[None]:
    """Records one engine call, its kind read from the family's `tag`."""
    return _timed(lambda clock, start, end: clock.record_pass(pass_kind(tag), start, end))
