"""Committed items being transcribed: one task each, running side by side, their events sent in commit order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from app.audio.decode import Audio, resample
from app.ops.metrics import Metrics
from app.output.formats import usage
from app.output.streaming import Delta, Done, StreamEvent, stream_transcript
from app.realtime.events import RATE, server_event
from app.realtime.session import Commit
from app.scheduling.admission import Admission
from app.scheduling.pipeline import Plan, Transcriber
from models.interface import DecodeOptions

Event = dict[str, Any]
Run = Callable[[Commit], AsyncIterator[Event]]
Send = Callable[[Event], Awaitable[None]]
ITEM_EVENTS = "conversation.item.input_audio_transcription"


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
        # `wait`, not `gather`: were this task itself cancelled meanwhile, gather would raise a
        # child's CancelledError in place of ours, which the caller's cancel scope does not own.
        await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved: a sender that met a closed socket is not a bug to log


def _item_event(item_id: str, event: StreamEvent) -> Event:
    """A stream's event as the Realtime API tells it about a committed item."""
    item = {"item_id": item_id, "content_index": 0}
    if isinstance(event, Delta):
        return server_event(f"{ITEM_EVENTS}.delta", **item, delta=event.text)
    if isinstance(event, Done):
        text, usage_ = event.transcript.text, usage(event.transcript).model_dump(exclude_none=True)
        return server_event(f"{ITEM_EVENTS}.completed", **item, transcript=text, usage=usage_)
    return server_event(f"{ITEM_EVENTS}.failed", **item, error=event.error.body()["error"])


async def transcribe(
    transcriber: Transcriber,
    commit: Commit,
    request_id: str,
    admission: Admission,
    timeout_s: float,
    metrics: Metrics | None = None,
) -> AsyncIterator[Event]:
    """`.delta` events as text arrives, then `.completed`; or `.failed`. Holds an admission slot meanwhile."""
    options = DecodeOptions(task="transcribe", language=commit.config.language, prompt=commit.config.prompt)

    async def prepare() -> Plan:
        rate = transcriber.model.get_speech_to_text_config("transcribe").sample_rate
        audio = await asyncio.to_thread(resample, Audio(commit.samples, RATE), rate)
        return await transcriber.plan(audio, options, request_id)

    deadline = asyncio.get_running_loop().time() + timeout_s
    stream = stream_transcript(
        transcriber, prepare, request_id, hold=admission.slot(), deadline=deadline, timeout_s=timeout_s, metrics=metrics
    )
    async with contextlib.aclosing(stream):
        async for event in stream:
            yield _item_event(commit.item_id, event)
