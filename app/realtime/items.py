"""Committed items being transcribed: one task each, running side by side, their events sent in commit order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from app.audio.decode import Audio, resample
from app.http.errors import APIError, internal_error
from app.ops.metrics import Metrics
from app.output.formats import usage
from app.realtime.events import RATE, server_event
from app.realtime.session import Commit
from app.scheduling.admission import Admission
from app.scheduling.pipeline import PieceDone, Transcriber
from models.interface import DecodeOptions, ModelInputError

log = logging.getLogger("speech_gateway.realtime")

Event = dict[str, Any]
Run = Callable[[Commit], AsyncIterator[Event]]
Send = Callable[[Event], Awaitable[None]]


class Transcriptions:
    """Starts a task per commit; one sender drains their events item after item.

    `close()` cancels every task, which aborts the engine requests behind them.
    """

    def __init__(self, run: Run, send: Send) -> None:
        self._run = run
        self._send = send
        self._order: asyncio.Queue[asyncio.Queue[Event | None]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsent = 0
        self._sender = asyncio.create_task(self._drain())

    @property
    def busy(self) -> bool:
        """Items committed whose events are not all sent."""
        return self._unsent > 0

    def start(self, commit: Commit) -> None:
        events: asyncio.Queue[Event | None] = asyncio.Queue()
        task = asyncio.create_task(self._produce(commit, events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._unsent += 1
        self._order.put_nowait(events)

    async def _produce(self, commit: Commit, events: asyncio.Queue[Event | None]) -> None:
        try:
            async for event in self._run(commit):
                events.put_nowait(event)
        finally:
            events.put_nowait(None)

    async def _drain(self) -> None:
        while True:
            events = await self._order.get()
            try:
                while (event := await events.get()) is not None:
                    await self._send(event)
            finally:
                self._unsent -= 1

    async def close(self) -> None:
        tasks = [*self._tasks, self._sender]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)


def _failed(item_id: str, error: APIError) -> Event:
    return server_event(
        "conversation.item.input_audio_transcription.failed",
        item_id=item_id,
        content_index=0,
        error=error.body()["error"],
    )


async def transcribe(
    transcriber: Transcriber,
    commit: Commit,
    request_id: str,
    admission: Admission,
    timeout_s: float,
    metrics: Metrics | None = None,
) -> AsyncIterator[Event]:
    """`.delta` events as text arrives, then `.completed`; or `.failed`. Holds an admission slot meanwhile."""
    item = commit.item_id
    options = DecodeOptions(task="transcribe", language=commit.config.language, prompt=commit.config.prompt)
    started = time.perf_counter()
    try:
        async with admission.slot(), asyncio.timeout(timeout_s):
            rate = transcriber.model.get_speech_to_text_config("transcribe").sample_rate
            audio = await asyncio.to_thread(resample, Audio(commit.samples, RATE), rate)
            plan = await transcriber.plan(audio, options, request_id)
            readings = []
            begun = False
            async for event in transcriber.events(plan, request_id, streaming=True):
                if isinstance(event, PieceDone):
                    readings.append(event.reading)
                    continue
                delta = event.text if begun else event.text.lstrip()
                if delta:
                    begun = True
                    yield server_event(
                        "conversation.item.input_audio_transcription.delta", item_id=item, content_index=0, delta=delta
                    )
            transcript = transcriber.transcript(plan, readings)
    except TimeoutError:
        yield _failed(item, APIError(504, f"the transcription took longer than {timeout_s:.0f} s", code="timeout"))
        return
    except APIError as error:
        yield _failed(item, error)
        return
    except ModelInputError as error:
        yield _failed(item, APIError(400, str(error), param=error.param, code=error.code))
        return
    except Exception:
        log.exception("realtime item %s failed", request_id)
        yield _failed(item, internal_error())
        return
    if metrics is not None:
        metrics.observe_audio("transcribe", transcript.duration, time.perf_counter() - started)
    yield server_event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item,
        content_index=0,
        transcript=transcript.text,
        usage=usage(transcript).model_dump(exclude_none=True),
    )
