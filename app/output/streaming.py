"""Server-sent events of a streamed transcription: deltas as the family emits them, then the whole text."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from app.http.errors import APIError, internal_error, refused, timed_out
from app.http.protocol import TextDeltaEvent, TextDoneEvent
from app.ops.metrics import Metrics
from app.output.formats import logprob_list, logprobs_of, usage
from app.scheduling.pipeline import PieceDone, Plan, Transcriber
from models.interface import ModelInputError, Reading

log = logging.getLogger("speech_gateway.streaming")


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def transcript_events(
    transcriber: Transcriber,
    plan: Plan,
    request_id: str,
    resources: AsyncExitStack,
    deadline: float,
    metrics: Metrics,
    timeout_s: float,
) -> AsyncIterator[str]:
    """`transcript.text.delta` events in order as text becomes final, then `transcript.text.done`.

    Owns `resources` (the admission slot): released when the stream ends, however it ends.
    Starlette cancels this generator when the client disconnects, which aborts the engine work.
    """
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    readings: list[Reading] = []
    begun = False
    want_logprobs = plan.options.want_logprobs
    events = transcriber.events(plan, request_id, streaming=True)
    try:
        async with resources:
            while True:
                try:
                    event = await asyncio.wait_for(anext(events), timeout=max(0.0, deadline - loop.time()))
                except StopAsyncIteration:
                    break
                if isinstance(event, PieceDone):
                    readings.append(event.reading)
                    continue
                delta = event.text if begun else event.text.lstrip()
                if not delta:
                    continue
                begun = True
                logprobs = logprob_list(event.logprobs) if want_logprobs else None
                yield sse(TextDeltaEvent(delta=delta, logprobs=logprobs).model_dump(exclude_none=True))
            transcript = transcriber.transcript(plan, readings)
            done = TextDoneEvent(
                text=transcript.text,
                logprobs=logprobs_of(transcript.segments) if want_logprobs else None,
                usage=usage(transcript),
            )
            metrics.observe_audio(plan.options.task, transcript.duration, time.perf_counter() - started)
            yield sse(done.model_dump(exclude_none=True))
    except TimeoutError:
        yield sse(timed_out(timeout_s).body())
    except APIError as error:
        yield sse(error.body())
    except ModelInputError as error:
        yield sse(refused(error).body())
    except Exception:
        log.exception("stream %s failed", request_id)
        yield sse(internal_error().body())
    finally:
        await events.aclose()
