"""The one consumer of a streamed transcription: text deltas (or speaker segments) once final, then the transcript.

A failure at any step ends the stream with the error the client should see (the same mapping for
every stream). Server-sent events (`app.http.routes.audio`) and the Realtime socket
(`app.realtime.items`) each only shape these events into their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

from app.http.errors import APIError, internal_error, refused, timed_out
from app.ops.metrics import Metrics
from app.output.speakers import SpeakerSegment
from app.output.transcript import Transcript
from app.scheduling.pipeline import PieceDone, Plan, Transcriber
from models.interface import ModelInputError, Reading, TextDelta, TokenLogprob

log = logging.getLogger("speech_gateway.streaming")

T = TypeVar("T")
# Makes the plan once the stream holds its slot (decoding, cutting, the family's preparation).
Prepare = Callable[[], Awaitable[Plan]]


@dataclass(frozen=True)
class Delta:
    """Text that is final now; the stream's first delta has no leading whitespace."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Said:
    """A speaker segment of a diarized transcription, complete; `index` counts them from 0."""

    segment: SpeakerSegment
    index: int


@dataclass(frozen=True)
class Done:
    """Every piece is read: the whole transcript (and, diarized, who said what)."""

    transcript: Transcript
    said: tuple[SpeakerSegment, ...] = ()


@dataclass(frozen=True)
class Failed:
    """The stream ends here, with what to tell the client."""

    error: APIError


StreamEvent = Delta | Done | Failed
DiarizedEvent = Said | Done | Failed
E = TypeVar("E", bound=Delta | Said | Done)


async def _by(deadline: float, step: Awaitable[T]) -> T:
    """`step`, cut off with TimeoutError at `deadline` (the event loop's clock).

    In this task, not a task of its own (as `wait_for` makes): a client that leaves cancels the
    step where it runs, so the transcript's generator is idle again when it is closed.
    """
    async with asyncio.timeout_at(deadline):
        return await step


def _delta(event: TextDelta, begun: bool) -> Delta | None:
    text = event.text if begun else event.text.lstrip()
    return Delta(text, event.logprobs) if text else None


def _failure(error: Exception, request_id: str) -> APIError:
    """What the client is told when a stream fails: the API error, or a refusal, or no internals."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, ModelInputError):
        return refused(error)
    log.error("stream %s failed", request_id, exc_info=error)
    return internal_error()


async def _guarded(
    body: AsyncGenerator[E, None],
    request_id: str,
    hold: AbstractAsyncContextManager[Any],
    deadline: float,
    timeout_s: float,
) -> AsyncGenerator[E | Failed, None]:
    """`body`'s events once `hold` is entered, each step by `deadline`; any failure as `Failed`, last."""
    try:
        async with AsyncExitStack() as stack:
            await _by(deadline, stack.enter_async_context(hold))
            stack.push_async_callback(body.aclose)
            while True:
                try:
                    event = await _by(deadline, anext(body))
                except StopAsyncIteration:
                    break
                yield event
    except TimeoutError:
        yield Failed(timed_out(timeout_s))
    except Exception as error:
        yield Failed(_failure(error, request_id))


async def _transcript_events(
    transcriber: Transcriber, plan: Plan | Prepare, request_id: str, metrics: Metrics | None
) -> AsyncGenerator[Delta | Done, None]:
    started = time.perf_counter()
    ready = plan if isinstance(plan, Plan) else await plan()
    readings: list[Reading] = []
    begun = False
    async with aclosing(transcriber.events(ready, request_id, streaming=True)) as events:
        async for event in events:
            if isinstance(event, PieceDone):
                readings.append(event.reading)
            elif (delta := _delta(event, begun)) is not None:
                begun = True
                yield delta
    transcript = transcriber.transcript(ready, readings)
    if metrics is not None:
        metrics.observe_audio(ready.options.task, transcript.duration, time.perf_counter() - started)
    yield Done(transcript)


def stream_transcript(
    transcriber: Transcriber,
    plan: Plan | Prepare,
    request_id: str,
    *,
    hold: AbstractAsyncContextManager[Any],
    deadline: float,
    timeout_s: float,
    metrics: Metrics | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    """`Delta`s in order as text becomes final, then `Done`; or `Failed`, wherever it failed.

    `hold` (an admission slot) is entered first and released when the stream ends, however it
    ends; a `Prepare` makes the plan while it is held. All of it must be done by `deadline` (the
    event loop's clock; `timeout_s` is what the client is told). Closing or cancelling the
    consumer aborts the engine work.
    """
    body = _transcript_events(transcriber, plan, request_id, metrics)
    return _guarded(body, request_id, hold, deadline, timeout_s)


async def _said_events(
    steps: AsyncGenerator[SpeakerSegment | Transcript, None], metrics: Metrics | None
) -> AsyncGenerator[Said | Done, None]:
    started = time.perf_counter()
    said: list[SpeakerSegment] = []
    async with aclosing(steps):
        async for step in steps:
            if isinstance(step, SpeakerSegment):
                said.append(step)
                yield Said(step, len(said) - 1)
            else:
                if metrics is not None:
                    metrics.observe_audio(step.task, step.duration, time.perf_counter() - started)
                yield Done(step, tuple(said))
                return


def stream_diarized(
    steps: AsyncGenerator[SpeakerSegment | Transcript, None],
    request_id: str,
    *,
    hold: AbstractAsyncContextManager[Any],
    deadline: float,
    timeout_s: float,
    metrics: Metrics | None = None,
) -> AsyncGenerator[DiarizedEvent, None]:
    """`Said` for each speaker segment once it is known, then `Done`; or `Failed` (as `stream_transcript`)."""
    return _guarded(_said_events(steps, metrics), request_id, hold, deadline, timeout_s)
