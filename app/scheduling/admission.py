"""Back-pressure: a bound on requests in flight and waiting; past it, 429 with Retry-After."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.http.errors import APIError

# Weight of the newest request when averaging request durations for Retry-After.
EWMA_ALPHA = 0.2


class Admission:
    """Lets `max_active` requests run and `max_waiting` more queue; refuses the rest at once."""

    def __init__(self, max_active: int, max_waiting: int) -> None:
        self.max_active = max_active
        self.max_waiting = max_waiting
        self.active = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(max_active)
        self._mean_s = 1.0

    def retry_after_s(self) -> int:
        """Roughly when a slot should be free: the queue ahead divided among the running slots."""
        ahead = self.waiting + 1
        return max(1, math.ceil(self._mean_s * ahead / self.max_active))

    def record(self, seconds: float) -> None:
        self._mean_s += EWMA_ALPHA * (seconds - self._mean_s)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.active >= self.max_active and self.waiting >= self.max_waiting:
            seconds = self.retry_after_s()
            raise APIError(
                429,
                f"the server is at capacity ({self.active} requests running, {self.waiting} waiting); "
                f"retry after {seconds} s",
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(seconds)},
            )
        self.waiting += 1
        try:
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
