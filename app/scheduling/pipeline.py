"""One request from audio to a Transcript: cut into the family's pieces, read them concurrently, merge.

How a piece is read (prompts, retries, language detection, cleanup) is the family's business;
this module only knows pieces, the engine, and order.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from app.audio.decode import Audio, Source, check_length, open_source, read, resample
from app.audio.packing import cut
from app.audio.vad import SileroVad, SpeechDetector, VadParams
from app.output.transcript import Transcript, assemble
from models import stages
from models.interface import (
    DecodeOptions,
    EngineCalls,
    GenerationRequest,
    GenerationResult,
    Piece,
    Reading,
    SharedWindows,
    SharingSetup,
    SpeechToTextConfig,
    Task,
    TextDelta,
    TranscriptionModel,
)
from models.signal import quiet_noise
from models.timeline import Timeline, place

T = TypeVar("T")
# Pieces a stream starts with before its first piece is done.
STREAM_HEAD_START = 2
# Told of every shared window: how many pieces rode in it, how many of them were read again.
OnSharedWindow = Callable[[int, int], None]


class Engine(Protocol):
    """What the pipeline needs of an engine; `app.scheduling.engine.VllmEngine` is the real one."""

    async def generate(self, request: GenerationRequest, request_id: str) -> GenerationResult: ...

    def stream(self, request: GenerationRequest, request_id: str) -> AsyncGenerator[GenerationResult, None]:
        """Cumulative results as tokens arrive; cancelling the consumer aborts the request."""
        ...

    async def check_health(self) -> bool: ...

    def pending(self) -> int:
        """Engine requests not yet finished."""
        ...

    def shutdown(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """A request ready to decode: the audio at the model's rate, its pieces, the final options."""

    audio: Audio
    pieces: list[Piece]
    options: DecodeOptions
    stt: SpeechToTextConfig
    # Per piece: where its times fall in the audio (packed pieces skip what is not speech).
    timelines: list[Timeline]


@dataclass(frozen=True)
class PieceDone:
    """A piece is read; every delta of it has been yielded before this."""

    reading: Reading


def engine_calls(engine: Engine, request_id: str, piece: int) -> EngineCalls:
    """The engine as one piece's family call sees it: request ids made unique per request and piece."""

    async def generate(request: GenerationRequest, tag: str) -> GenerationResult:
        # Every pass of every family goes through here: the one place engine time is measured.
        with stages.engine_pass(tag):
            return await engine.generate(request, f"{request_id}-p{piece}-{tag}")

    async def stream(request: GenerationRequest, tag: str) -> AsyncGenerator[GenerationResult, None]:
        with stages.engine_pass(tag):
            async with contextlib.aclosing(engine.stream(request, f"{request_id}-p{piece}-{tag}")) as results:
                async for result in results:
                    yield result

    return EngineCalls(generate=generate, stream=stream)


class Transcriber:
    """Runs requests of one model on one engine."""

    def __init__(
        self,
        model: TranscriptionModel,
        engine: Engine,
        decode_workers: int = 2,
        windows_in_flight: int = 32,
        vad: SpeechDetector | None = None,
        window_sharing_wait_s: float = 0.0,
        on_shared_window: OnSharedWindow | None = None,
    ) -> None:
        self.model = model
        self.engine = engine
        # Per request: enough pieces at once to batch well, few enough that the first ones finish
        # early (streams) and that one long recording cannot hold up every request behind it.
        self.windows_in_flight = windows_in_flight
        self._executor = ThreadPoolExecutor(max_workers=decode_workers, thread_name_prefix="decode")
        # Audio jobs (decode, resample, speech detection) given to the executor and not yet done:
        # while there are any, pieces of other requests are on their way to the engine.
        self._audio_jobs = 0
        self.vad = vad or SileroVad()
        # Short pieces of concurrent requests may share engine windows, where the family offers it.
        self.sharing: SharedWindows | None = None
        if window_sharing_wait_s > 0:
            self.sharing = model.window_sharing(
                SharingSetup(
                    calls=lambda tag: engine_calls(engine, tag, 0),
                    wait_s=window_sharing_wait_s,
                    busy=lambda: engine.pending() > 0,
                    on_window=on_shared_window,
                    expected=lambda: self._audio_jobs > 0,
                )
            )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def warm_up(self) -> None:
        """Build before the first request what it would otherwise wait for: the resampler's
        filters, the speech detector and the engine's kernels (measured: a first request took
        2.9 s on a fresh server, the next ones 0.6 s)."""
        rate = self.model.get_speech_to_text_config("transcribe").sample_rate
        noise = quiet_noise(1.0, 44_100)
        loop = asyncio.get_running_loop()
        audio = await loop.run_in_executor(self._executor, resample, Audio(noise, 44_100), rate)
        await loop.run_in_executor(self._executor, self.vad.probabilities, audio.samples)
        await self.model.warm_up(engine_calls(self.engine, "warmup", 0))

    def _shares(self, piece: Piece, streaming: bool) -> bool:
        # A stream's deltas are its own; a shared window's text is split only once it is read.
        return self.sharing is not None and not streaming and self.sharing.takes(piece)

    # -- audio --------------------------------------------------------------------------------
    async def _audio_job(self, job: Callable[..., T], *args: Any) -> T:
        """`job(*args)` off the event loop; the last one done tells waiting shared windows to leave."""
        self._audio_jobs += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job, *args)
        finally:
            self._audio_jobs -= 1
            if self._audio_jobs == 0 and self.sharing is not None:
                self.sharing.nudge()

    async def open_audio(self, path: Path, max_seconds: float) -> Source:
        """What the upload claims, checked before anything is decoded (off the event loop)."""
        with stages.stage("decode"):
            return await self._audio_job(open_source, path, max_seconds)

    def _load(self, source: Source, task: Task) -> Audio:
        stt = self.model.get_speech_to_text_config(task)
        audio = read(source, stt.sample_rate)
        check_length(audio)
        return audio

    async def load_audio(self, source: Source, task: Task) -> Audio:
        """Decode and resample off the event loop, at the family's rate."""
        # The thread gets the request's context, so the resampler's share is told apart.
        run = contextvars.copy_context().run
        with stages.stage("decode"):
            return await self._audio_job(run, self._load, source, task)

    # -- planning -----------------------------------------------------------------------------
    def check(self, options: DecodeOptions) -> DecodeOptions:
        """Options the family accepts, normalised; ModelInputError names the field otherwise."""
        self.model.validate_options(options)
        return replace(options, language=self.model.validate_language(options.language))

    async def plan(
        self, audio: Audio, options: DecodeOptions, request_id: str, chunking: VadParams | None = None
    ) -> Plan:
        """Cut the audio into pieces and let the family prepare (detect the language...).

        `chunking` is the request's `chunking_strategy`; without one, the family's default holds.
        """
        options = self.check(options)
        stt = self.model.get_speech_to_text_config(options.task)
        packing = chunking or (VadParams() if stt.pack_speech else None)
        with stages.stage("vad"):
            pieces, timelines = await self._audio_job(cut, audio.samples, audio.sample_rate, stt, packing, self.vad)
        with stages.stage("model"):
            options = await self.model.prepare(pieces, options, engine_calls(self.engine, f"{request_id}-prep", 0))
        return Plan(audio, pieces, options, stt, timelines)

    # -- reading ------------------------------------------------------------------------------
    async def events(
        self, plan: Plan, request_id: str, streaming: bool = False
    ) -> AsyncGenerator[TextDelta | PieceDone, None]:
        """Each piece's text deltas as the family emits them, then its reading, piece after piece.

        Pieces go to the engine in order, `windows_in_flight` at a time; leaving early cancels
        (and so aborts) the rest. `streaming` asks families for deltas, and starts with only the
        first two pieces, so the first one is not slowed by a crowd; the rest follow once it is done.
        """
        full = self.windows_in_flight
        start_with = min(full, STREAM_HEAD_START) if streaming else full
        slots = asyncio.Semaphore(start_with)
        queues: list[asyncio.Queue[TextDelta | None]] = [asyncio.Queue() for _ in plan.pieces]

        async def read(piece: Piece) -> Reading:
            queue = queues[piece.index]
            try:
                async with slots:
                    if self.sharing is not None and self._shares(piece, streaming):
                        reading = await self.sharing.read(piece, plan.options)
                    else:
                        calls = engine_calls(self.engine, request_id, piece.index)
                        emit = queue.put_nowait if streaming else None
                        reading = await self.model.read(piece, plan.options, calls, emit)
                    return place(reading, piece, plan.timelines[piece.index])
            finally:
                queue.put_nowait(None)

        tasks = [asyncio.create_task(read(piece)) for piece in plan.pieces]
        # The family's own work around its engine passes (prompts, parsing, merging), in wall time.
        with stages.stage("model"):
            try:
                for i, task in enumerate(tasks):
                    while (delta := await queues[i].get()) is not None:
                        yield delta
                    reading = await task
                    if i == 0:
                        for _ in range(full - start_with):
                            slots.release()
                    yield PieceDone(reading)
            finally:
                pending = [task for task in tasks if not task.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    with contextlib.suppress(Exception):
                        await asyncio.gather(*pending, return_exceptions=True)

    async def transcribe(
        self, audio: Audio, options: DecodeOptions, request_id: str, chunking: VadParams | None = None
    ) -> Transcript:
        plan = await self.plan(audio, options, request_id, chunking)
        readings = [event.reading async for event in self.events(plan, request_id) if isinstance(event, PieceDone)]
        return self.transcript(plan, readings)

    def transcript(self, plan: Plan, readings: list[Reading]) -> Transcript:
        return assemble(
            plan.options.task,
            plan.options.language,
            plan.audio.duration,
            readings,
            self.model.supported_languages,
            self.model.usage_kind,
        )
