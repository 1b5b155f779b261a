"""`POST /v1/audio/transcriptions` and `/v1/audio/translations`, as OpenAI shapes them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from app.audio.decode import Audio
from app.http.errors import bad_request, timed_out
from app.http.protocol import (
    TextDeltaEvent,
    TextDoneEvent,
    TranscriptionParams,
    parse_params,
    upload_of,
)
from app.http.upload import parse_form
from app.ops.logs import request_id_var
from app.output.formats import diarized_segment, logprob_list, logprobs_of, render, to_diarized_json, usage
from app.output.speakers import spoken_text
from app.output.streaming import Delta, DiarizedEvent, Done, Said, StreamEvent, stream_diarized, stream_transcript
from app.scheduling.cancellation import until_disconnect
from app.scheduling.diarized import collect, diarize
from app.state import Gateway, Runtime, Served, get_gateway, served_of
from models import stages
from models.interface import DecodeOptions, Task
from models.speakers.interface import KnownSpeaker

router = APIRouter(prefix="/v1/audio", tags=["audio"])

# Shown in the OpenAPI document: the body is multipart, parsed by app.http.upload.
_FORM_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "model"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "model": {"type": "string"},
                        "language": {"type": "string"},
                        "prompt": {"type": "string"},
                        "response_format": {
                            "type": "string",
                            "enum": ["json", "text", "srt", "verbose_json", "vtt", "diarized_json"],
                        },
                        "known_speaker_names[]": {"type": "array", "items": {"type": "string"}},
                        "known_speaker_references[]": {
                            "description": "data URLs (`data:audio/wav;base64,...`) of 2-10 s clips",
                            "type": "array",
                            "items": {"type": "string"},
                        },
                        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                        "timestamp_granularities[]": {"type": "array", "items": {"type": "string"}},
                        "stream": {"type": "boolean"},
                        "include[]": {"type": "array", "items": {"type": "string"}},
                        "chunking_strategy": {
                            "description": "`auto`, or a `server_vad` object: type, threshold, prefix_padding_ms, "
                            "silence_duration_ms (as `chunking_strategy[key]` fields or one JSON field)",
                            "type": "string",
                        },
                    },
                }
            }
        },
    }
}


def _check_speakers(gateway: Gateway, params: TranscriptionParams) -> None:
    """A 400 for diarized_json when the settings turned the speaker model off."""
    if params.response_format != "diarized_json" or gateway.speakers is not None:
        return
    raise bad_request(
        "response_format `diarized_json` needs a speaker model, and this server runs without one (diarizer=off)",
        param="response_format",
    )


async def _read_request(
    request: Request, gateway: Gateway, served: Served, task: Task, hold: AsyncExitStack
) -> tuple[TranscriptionParams, Audio, Runtime, list[KnownSpeaker]]:
    """Parse the form, pick the model it names, check what the family can do, decode the upload.

    The upload's length is known (and checked) before it is decoded; its seconds of audio are
    then taken from the admission budget and held in `hold`. The spooled file is gone on return.
    """
    settings = gateway.settings
    with stages.stage("upload"):
        form = await parse_form(
            request.headers.get("content-type"),
            request.stream(),
            limit_bytes=settings.max_upload_bytes,
            idle_timeout_s=settings.upload_idle_timeout_s,
            total_timeout_s=settings.upload_timeout_s,
        )
    try:
        params = parse_params(form, task)
        _check_speakers(gateway, params)
        runtime = served.pick(params.model)
        # Before decoding: a request the family cannot serve costs no audio work.
        runtime.transcriber.check(_options(params))
        source = await runtime.transcriber.open_audio(upload_of(form).path, settings.max_audio_seconds)
        try:
            await hold.enter_async_context(gateway.admission.audio.hold(source.seconds))
            audio = await runtime.transcriber.load_audio(source, task)
        finally:
            source.close()
        known = []
        if gateway.speakers is not None and params.response_format == "diarized_json":
            speakers = await gateway.speakers.get()
            known = await speakers.references(params.known_speakers)
    finally:
        form.close()
    return params, audio, runtime, known


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _sse_events(stream: AsyncGenerator[StreamEvent, None], want_logprobs: bool) -> AsyncIterator[str]:
    """`transcript.text.delta` events, then `transcript.text.done`; or the error envelope."""
    async with aclosing(stream):
        async for event in stream:
            if isinstance(event, Delta):
                logprobs = logprob_list(event.logprobs) if want_logprobs else None
                yield _sse(TextDeltaEvent(delta=event.text, logprobs=logprobs).model_dump(exclude_none=True))
            elif isinstance(event, Done):
                transcript = event.transcript
                done = TextDoneEvent(
                    text=transcript.text,
                    logprobs=logprobs_of(transcript.segments) if want_logprobs else None,
                    usage=usage(transcript),
                )
                yield _sse(done.model_dump(exclude_none=True))
            else:
                yield _sse(event.error.body())


async def _sse_said(stream: AsyncGenerator[DiarizedEvent, None]) -> AsyncIterator[str]:
    """`transcript.text.segment` events, each with its speaker, then `transcript.text.done`; or the error envelope."""
    async with aclosing(stream):
        async for event in stream:
            if isinstance(event, Said):
                yield _sse(diarized_segment(event.index, event.segment).model_dump())
            elif isinstance(event, Done):
                done = TextDoneEvent(text=spoken_text(event.said), usage=usage(event.transcript))
                yield _sse(done.model_dump(exclude_none=True))
            else:
                yield _sse(event.error.body())


def _event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


# Formats whose answer holds no times.
TEXT_ONLY_FORMATS = frozenset({"json", "text"})


def _options(params: TranscriptionParams) -> DecodeOptions:
    return DecodeOptions(
        task=params.task,
        language=params.language,
        prompt=params.prompt,
        keywords=params.keywords,
        temperature=params.temperature,
        candidate_languages=params.languages,
        want_logprobs=params.include_logprobs,
        # A stream carries text only: timing its words would be wasted work.
        word_timestamps="word" in params.timestamp_granularities and not params.stream,
        segment_times=params.response_format not in TEXT_ONLY_FORMATS,
    )


async def _handle(request: Request, gateway: Gateway, task: Task) -> Response:
    stages.since_start("route")
    served = served_of(request)
    settings = gateway.settings
    request_id = request_id_var.get() or uuid.uuid4().hex
    resources = AsyncExitStack()
    # Admission comes first: a refused request costs no upload, a waiting one holds no audio.
    await resources.enter_async_context(gateway.admission.slot())
    deadline = asyncio.get_running_loop().time() + settings.request_timeout_s
    try:
        async with asyncio.timeout_at(deadline):
            params, audio, runtime, known = await _read_request(request, gateway, served, task, resources)
            transcriber = runtime.transcriber
            if gateway.speakers is not None and params.response_format == "diarized_json":
                steps = diarize(
                    transcriber,
                    await gateway.speakers.get(),
                    audio,
                    _options(params),
                    request_id,
                    params.chunking,
                    known,
                )
                if params.stream:
                    said = stream_diarized(
                        steps,
                        request_id,
                        hold=resources.pop_all(),
                        deadline=deadline,
                        timeout_s=settings.request_timeout_s,
                        metrics=gateway.metrics,
                    )
                    return _event_stream(_sse_said(said))
                started = time.perf_counter()
                result = await until_disconnect(request.receive, collect(steps))
                gateway.metrics.observe_audio(task, result.transcript.duration, time.perf_counter() - started)
                return JSONResponse(to_diarized_json(result.transcript, result.said))
            if params.stream:
                plan = await transcriber.plan(audio, _options(params), request_id, params.chunking)
                stream = stream_transcript(
                    transcriber,
                    plan,
                    request_id,
                    hold=resources.pop_all(),
                    deadline=deadline,
                    timeout_s=settings.request_timeout_s,
                    metrics=gateway.metrics,
                )
                return _event_stream(_sse_events(stream, plan.options.want_logprobs))
            started = time.perf_counter()
            transcript = await until_disconnect(
                request.receive, transcriber.transcribe(audio, _options(params), request_id, params.chunking)
            )
            gateway.metrics.observe_audio(task, transcript.duration, time.perf_counter() - started)
    except TimeoutError:
        raise timed_out(settings.request_timeout_s) from None
    finally:
        await resources.aclose()
    with stages.stage("render"):  # the response's body is encoded here too
        body, media_type = render(
            transcript, params.response_format, params.include_logprobs, params.timestamp_granularities
        )
        if isinstance(body, str):
            return PlainTextResponse(body, media_type=media_type)
        return JSONResponse(body)


@router.post("/transcriptions", openapi_extra=_FORM_DOC)
async def transcriptions(request: Request, gateway: Annotated[Gateway, Depends(get_gateway)]) -> Response:
    """Transcribe audio into the input language."""
    return await _handle(request, gateway, "transcribe")


@router.post("/translations", openapi_extra=_FORM_DOC)
async def translations(request: Request, gateway: Annotated[Gateway, Depends(get_gateway)]) -> Response:
    """Translate audio into English."""
    return await _handle(request, gateway, "translate")
