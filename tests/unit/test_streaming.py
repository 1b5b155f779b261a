"""The one streamed-transcription consumer: deltas, the transcript, and one error mapping for SSE and Realtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from app.http.errors import APIError
from app.output.streaming import Delta, Done, Failed, StreamEvent, stream_transcript
from app.output.transcript import Transcript
from app.scheduling.pipeline import PieceDone, Plan
from models.interface import DecodeOptions, ModelInputError, Reading, Segment, TextDelta

PLAN = Plan(audio=None, pieces=[], options=DecodeOptions(), stt=None, timelines=[])  # type: ignore[arg-type]


class FakeTranscriber:
    """Yields the scripted events, then raises `fail` if given; `hang` waits forever after them."""

    def __init__(self, script: list[TextDelta | PieceDone], fail: Exception | None = None, hang: bool = False) -> None:
        self.script, self.fail, self.hang = script, fail, hang
        self.closed = False

    async def events(self, plan: Plan, request_id: str, streaming: bool = False) -> AsyncGenerator[Any, None]:
        assert streaming
        try:
            for event in self.script:
                yield event
            if self.fail is not None:
                raise self.fail
            if self.hang:
                await asyncio.Event().wait()
        finally:
            self.closed = True

    def transcript(self, plan: Plan, readings: list[Reading]) -> Transcript:
        return Transcript("transcribe", "en", 1.0, [s for r in readings for s in r.segments])


class Hold:
    def __init__(self) -> None:
        self.held = self.released = False

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.held = True
        try:
            yield
        finally:
            self.released = True


async def run(transcriber: FakeTranscriber, hold: Hold, timeout_s: float = 5.0, plan: Any = PLAN) -> list[StreamEvent]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    stream = stream_transcript(
        transcriber,  # type: ignore[arg-type]
        plan,
        "req",
        hold=hold.slot(),
        deadline=deadline,
        timeout_s=timeout_s,
    )
    return [event async for event in stream]


async def test_deltas_then_the_transcript() -> None:
    reading = Reading(segments=[Segment(0.0, 1.0, " Hello world.")])
    script = [TextDelta("  Hello"), TextDelta(""), TextDelta(" world."), PieceDone(reading)]
    hold, transcriber = Hold(), FakeTranscriber(script)
    events = await run(transcriber, hold)
    assert events[:2] == [Delta("Hello"), Delta(" world.")]
    assert isinstance(events[2], Done) and events[2].transcript.text == "Hello world."
    assert hold.held and hold.released and transcriber.closed


async def test_a_plan_is_made_while_the_slot_is_held() -> None:
    hold = Hold()

    async def prepare() -> Plan:
        assert hold.held and not hold.released
        return PLAN

    events = await run(FakeTranscriber([TextDelta("hi")]), hold, plan=prepare)
    assert events[0] == Delta("hi") and isinstance(events[-1], Done)


async def test_errors_are_mapped_once_for_every_stream() -> None:
    refused = ModelInputError("no such language", param="language", code="unsupported_language")
    cases: list[tuple[Exception, int, str | None]] = [
        (APIError(429, "busy", code="rate_limit_exceeded"), 429, "rate_limit_exceeded"),
        (refused, 400, "unsupported_language"),
        (RuntimeError("secret internals"), 500, "internal_error"),
    ]
    for error, status, code in cases:
        hold = Hold()
        events = await run(FakeTranscriber([TextDelta("partial")], fail=error), hold)
        assert events[0] == Delta("partial")
        failed = events[-1]
        assert isinstance(failed, Failed) and (failed.error.status, failed.error.code) == (status, code)
        assert "secret" not in failed.error.message
        assert hold.released


async def test_a_stream_past_its_deadline_fails_with_a_timeout() -> None:
    hold, transcriber = Hold(), FakeTranscriber([TextDelta("slow")], hang=True)
    events = await run(transcriber, hold, timeout_s=0.05)
    failed = events[-1]
    assert isinstance(failed, Failed) and (failed.error.status, failed.error.code) == (504, "timeout")
    assert hold.released and transcriber.closed
