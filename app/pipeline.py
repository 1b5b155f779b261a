"""One request from audio to a Transcript: split, detect language, decode every piece at once, merge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from app.audio import Audio, check_length, decode, has_speech, is_silent, resample, split_windows
from models.interface import (
    DecodeOptions,
    GenerationRequest,
    GenerationResult,
    ModelInputError,
    Segment,
    SpeechToTextConfig,
    Task,
    TranscriptionModel,
    WindowOutcome,
)

log = logging.getLogger("speech_gateway.pipeline")

# A window whose transcript stops this far before its end, with speech after, has that tail read again.
MIN_TAIL_S = 0.5
MAX_REREADS = 3
# Windows tried, in order, for language detection before settling on the best guess.
DETECTION_WINDOWS = 3
NO_SPEECH_THRESHOLD = 0.6
# Windows a stream starts with before its first window is done.
STREAM_HEAD_START = 2


class Engine(Protocol):
    """What the pipeline needs of an engine; `app.engine.VllmEngine` is the real one."""

    async def generate(self, request: GenerationRequest, request_id: str) -> GenerationResult: ...

    async def check_health(self) -> bool: ...

    def pending(self) -> int:
        """Engine requests not yet finished."""
        ...

    def shutdown(self) -> None: ...


@dataclass(frozen=True)
class Transcript:
    task: Task
    language: str | None
    duration: float
    segments: list[Segment] = field(default_factory=list)
    # How OpenAI reports the language: its lowercase English name.
    language_name: str = ""

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments).strip()


@dataclass(frozen=True)
class Plan:
    """A request ready to decode: the audio at the model's rate, its pieces, the final options."""

    audio: Audio
    windows: list[tuple[int, int]]
    options: DecodeOptions
    stt: SpeechToTextConfig


class Transcriber:
    """Runs requests of one model on one engine."""

    def __init__(
        self, model: TranscriptionModel, engine: Engine, decode_workers: int = 2, windows_in_flight: int = 32
    ) -> None:
        self.model = model
        self.engine = engine
        # Per request: enough windows at once to batch well, few enough that the first ones finish
        # early (streams) and that one long recording cannot hold up every request behind it.
        self.windows_in_flight = windows_in_flight
        self._executor = ThreadPoolExecutor(max_workers=decode_workers, thread_name_prefix="decode")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- audio --------------------------------------------------------------------------------
    def _load(self, path: Path, task: Task, max_seconds: float) -> Audio:
        stt = self.model.get_speech_to_text_config(task)
        audio = resample(decode(path, max_seconds), stt.sample_rate)
        check_length(audio)
        return audio

    async def load_audio(self, path: Path, task: Task, max_seconds: float) -> Audio:
        """Decode and resample off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._load, path, task, max_seconds)

    # -- planning -----------------------------------------------------------------------------
    async def plan(self, audio: Audio, options: DecodeOptions, request_id: str) -> Plan:
        self.model.validate_options(options)
        options = replace(options, language=self.model.validate_language(options.language))
        try:
            candidates = tuple(self.model.validate_language(c) or c for c in options.candidate_languages)
        except ModelInputError as error:
            raise ModelInputError(str(error), param="languages", code=error.code) from None
        options = replace(options, candidate_languages=candidates)
        stt = self.model.get_speech_to_text_config(options.task)
        windows = (
            split_windows(
                audio.samples,
                audio.sample_rate,
                stt.max_audio_clip_s,
                stt.overlap_chunk_second,
                stt.min_energy_split_window_size,
            )
            if stt.allow_audio_chunking
            else [(0, len(audio.samples))]
        )
        if options.language is None and self.model.supports_language_detection:
            language = await self._detect_language(audio, windows, options, stt, request_id)
            # No speech to detect from: report the first candidate, or English as OpenAI does.
            fallback = options.candidate_languages[0] if options.candidate_languages else "en"
            options = replace(options, language=language or fallback)
        return Plan(audio, windows, options, stt)

    async def _detect_language(
        self,
        audio: Audio,
        windows: Sequence[tuple[int, int]],
        options: DecodeOptions,
        stt: SpeechToTextConfig,
        request_id: str,
    ) -> str | None:
        """The language of the first window that holds speech (the best guess if none does)."""
        best = None
        tried = 0
        for i, (start, end) in enumerate(windows):
            piece = audio.samples[start:end]
            if is_silent(piece):
                continue
            request = self.model.get_language_detection_prompt(piece, stt, options.candidate_languages)
            result = await self.engine.generate(request, f"{request_id}-lang{i}")
            guess = self.model.parse_language_detection(result, options.candidate_languages)
            if best is None or guess.no_speech_prob < best.no_speech_prob:
                best = guess
            tried += 1
            if guess.no_speech_prob < NO_SPEECH_THRESHOLD or tried >= DETECTION_WINDOWS:
                break
        if best is not None:
            log.debug("detected language %s (p=%.2f)", best.language, best.probability)
        return best.language if best else None

    # -- decoding -----------------------------------------------------------------------------
    async def _window(self, plan: Plan, start: int, end: int, request_id: str, depth: int = 0) -> list[Segment]:
        """Segments of samples [start, end): fallback temperatures, then the unread tail again."""
        rate = plan.audio.sample_rate
        piece = plan.audio.samples[start:end]
        if is_silent(piece):
            return []
        window_s, offset_s = len(piece) / rate, start / rate
        final = end == len(plan.audio.samples)
        requested = plan.options.temperature
        first, *others = self.model.fallback_temperatures if requested == 0 else [requested]
        outcome = await self._attempt(plan, piece, first, window_s, offset_s, final, f"{request_id}-d{depth}")
        attempts = [outcome]
        # The next temperature alone (it usually suffices: one more pass), then all the others at
        # once (two round trips at most instead of up to five in a row).
        for batch in (others[:1], others[1:]):
            if not batch or any(not a.retry for a in attempts):
                break
            attempts += await asyncio.gather(
                *(self._attempt(plan, piece, t, window_s, offset_s, final, f"{request_id}-d{depth}") for t in batch)
            )
        # The coolest reading that passes the model's checks, else the most confident one.
        outcome = next((a for a in attempts if not a.retry), max(attempts, key=lambda a: a.score))
        segments = list(outcome.segments)
        tail = start + max(1, int(outcome.consumed_s * rate))
        if (
            depth < MAX_REREADS
            and not outcome.no_speech
            and (end - tail) / rate > MIN_TAIL_S
            and has_speech(plan.audio.samples[tail:end], piece, rate=rate)
        ):
            # The model stopped short of speech it has not written down: read that part again.
            segments += await self._window(plan, tail, end, request_id, depth + 1)
        return segments

    async def _attempt(
        self,
        plan: Plan,
        piece: np.ndarray,
        temperature: float,
        window_s: float,
        offset_s: float,
        final: bool,
        request_id: str,
    ) -> WindowOutcome:
        request = self.model.get_generation_prompt(piece, plan.stt, plan.options, temperature)
        result = await self.engine.generate(request, f"{request_id}-t{temperature:g}")
        outcome = self.model.parse_window(result, window_s, offset_s, temperature, final)
        log.debug(
            "%s: %.2f s at %.2f s, T=%g: %d tokens (%s), consumed %.2f s%s%s",
            request_id,
            window_s,
            offset_s,
            temperature,
            len(result.token_ids),
            result.finish_reason,
            outcome.consumed_s,
            ", retry" if outcome.retry else "",
            ", no speech" if outcome.no_speech else "",
        )
        return outcome

    async def windows(
        self, plan: Plan, request_id: str, first_early: bool = False
    ) -> AsyncGenerator[list[Segment], None]:
        """Each window's segments, in order, as soon as it and all before it are done.

        Windows go to the engine in order, `windows_in_flight` at a time; leaving early
        cancels (and so aborts) the rest. `first_early` (streams) starts with only the first
        two windows, so the first one is not slowed by a crowd, and lets the rest follow as
        soon as it is done: the first delta comes sooner at little cost to the whole.
        """
        full = self.windows_in_flight
        start_with = min(full, STREAM_HEAD_START) if first_early else full
        slots = asyncio.Semaphore(start_with)

        async def limited(i: int, start: int, end: int) -> list[Segment]:
            async with slots:
                return await self._window(plan, start, end, f"{request_id}-w{i}")

        tasks = [asyncio.create_task(limited(i, start, end)) for i, (start, end) in enumerate(plan.windows)]
        try:
            for i, task in enumerate(tasks):
                segments = await task
                if i == 0:
                    for _ in range(full - start_with):
                        slots.release()
                yield segments
        finally:
            pending = [task for task in tasks if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                with contextlib.suppress(Exception):
                    await asyncio.gather(*pending, return_exceptions=True)

    async def transcribe(self, audio: Audio, options: DecodeOptions, request_id: str) -> Transcript:
        plan = await self.plan(audio, options, request_id)
        segments: list[Segment] = []
        async for window in self.windows(plan, request_id):
            segments.extend(window)
        return self.transcript(plan, segments)

    def transcript(self, plan: Plan, segments: list[Segment]) -> Transcript:
        language = plan.options.language
        return Transcript(
            task=plan.options.task,
            language=language,
            duration=plan.audio.duration,
            segments=merge(segments),
            language_name=self.model.supported_languages.get(language or "", language or ""),
        )


def merge(segments: list[Segment]) -> list[Segment]:
    """Segments in time order; a segment repeating the previous text over the same time is dropped."""
    out: list[Segment] = []
    for segment in sorted(segments, key=lambda s: (s.start, s.end)):
        if out and _duplicate(out[-1], segment):
            continue
        out.append(segment)
    return out


def _duplicate(previous: Segment, segment: Segment) -> bool:
    overlap = min(previous.end, segment.end) - max(previous.start, segment.start)
    shorter = min(previous.end - previous.start, segment.end - segment.start)
    return segment.text.strip() == previous.text.strip() and overlap > 0.5 * max(shorter, 0.01)
