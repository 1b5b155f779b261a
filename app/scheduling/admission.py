"""Back-pressure: bounds on requests and on audio seconds in flight and waiting; past them, 429 with Retry-After."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.http.errors import APIError
from models import stages

# Weight of the newest request when averaging request durations for Retry-After.
EWMA_ALPHA = 0.2


class Admission:
    """Lets `max_active` requests run and `max_waiting` more queue; refuses the rest at once."""

    def __init__(self, max_active: int, max_waiting: int, audio_budget_s: float = math.inf) -> None:
        self.max_active = max_active
        self.max_waiting = max_waiting
        self.active = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(max_active)
        self._mean_s = 1.0
        self.audio = AudioBudget(audio_budget_s, self)

    def retry_after_s(self) -> int:
        """Roughly when a slot should be free: the queue ahead divided among the running slots."""
        ahead = self.waiting + 1
        return max(1, math.ceil(self._mean_s * ahead / self.max_active))

    def record(self, seconds: float) -> None:
        self._mean_s += EWMA_ALPHA * (seconds - self._mean_s)

    def refuse(self, why: str) -> APIError:
        seconds = self.retry_after_s()
        return APIError(
            429,
            f"the server is at capacity ({why}); retry after {seconds} s",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(seconds)},
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.active >= self.max_active and self.waiting >= self.max_waiting:
            raise self.refuse(f"{self.active} requests running, {self.waiting} waiting")
        self.waiting += 1
        try:
            with stages.stage("admission_wait"):
                await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            yield
        finally:
            self.active -= 1
            self._slots.release()
            self.record(loop.time() - started)


class AudioBudget:
    """Seconds of audio in flight, bounded by `budget_s`: memory follows audio, not requests.

    A request takes its seconds once its upload's length is known and before it is decoded,
    and gives them back when it is done. First come, first served. One that does not fit waits
    while the audio queued ahead of it, with its own, is within one budget (so waits stay
    bounded); past that, 429. A request longer than the whole budget runs alone.
    """

    def __init__(self, budget_s: float, admission: Admission) -> None:
        self.budget_s = budget_s
        self.in_flight_s = 0.0
        self.holders = 0
        self._admission = admission
        self._queue: deque[tuple[float, asyncio.Future[None]]] = deque()

    @property
    def waiting_s(self) -> float:
        return sum(seconds for seconds, _ in self._queue)

    def _fits(self, seconds: float) -> bool:
        return self.holders == 0 or self.in_flight_s + seconds <= self.budget_s

    @asynccontextmanager
    async def hold(self, seconds: float) -> AsyncIterator[None]:
        with stages.stage("admission_wait"):
            await self._take(seconds)
        try:
            yield
        finally:
            self._give(seconds)

    async def _take(self, seconds: float) -> None:
        if not self._queue and self._fits(seconds):
            self._grant(seconds)
            return
        ahead = self.waiting_s
        if self._queue and ahead + seconds > self.budget_s:
            raise self._admission.refuse(
                f"{self.in_flight_s:.0f} s of audio in flight and {ahead:.0f} s waiting, "
                f"against a budget of {self.budget_s:.0f} s"
            )
        entry = (seconds, asyncio.get_running_loop().create_future())
        self._queue.append(entry)
        try:
            await entry[1]
        except asyncio.CancelledError:
            if entry in self._queue:
                self._queue.remove(entry)
            elif entry[1].done() and not entry[1].cancelled():
                self._give(seconds)  # granted just as it was cancelled
            self._wake()
            raise

    def _wake(self) -> None:
        while self._queue and self._fits(self._queue[0][0]):
            seconds, granted = self._queue.popleft()
            self._grant(seconds)
            granted.set_result(None)

    def _grant(self, seconds: float) -> None:
        self.holders += 1
        self.in_flight_s += seconds

    def _give(self, seconds: float) -> None:
        self.holders -= 1
        self.in_flight_s = max(0.0, self.in_flight_s - seconds) if self.holders else 0.0
        self._wake()
