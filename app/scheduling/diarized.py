"""A diarized transcription: the served model's text with the diarizer's turns, as speaker segments.

The diarizer runs beside the engine. A family that times words reads the whole request
as usual and each word goes to its speaker; any other family reads each speaker's stretch of the
recording as a request of its own, and its segments carry that stretch's speaker. Either way
segments come out in order as soon as they are known, then the transcript (text, usage).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, replace

from app.audio.decode import MIN_AUDIO_SECONDS, Audio, quietest_point
from app.audio.vad import VadParams
from app.output.speakers import (
    Labels,
    SpeakerSegment,
    Turns,
    attribute,
    change_windows,
    speaker_spans,
    spoken_text,
)
from app.output.transcript import Transcript
from app.scheduling.diarization import Speakers
from app.scheduling.pipeline import PieceDone, Transcriber
from models.interface import DecodeOptions, ModelInputError
from models.speakers.interface import KnownSpeaker, SpeakerTurn

# Stretches of the recording read at once (each one is cut into pieces like any request).
SPANS_AT_ONCE = 8
# The window whose quiet is looked for at a change of speaker.
QUIET_WINDOW_S = 0.1

Step = SpeakerSegment | Transcript


@dataclass(frozen=True)
class DiarizedTranscript:
    """The transcript (duration, usage) and who said what, in order."""

    transcript: Transcript
    said: list[SpeakerSegment]

    @property
    def text(self) -> str:
        return spoken_text(self.said)


def _times_words(transcriber: Transcriber, options: DecodeOptions) -> bool:
    if not transcriber.model.supports_word_timestamps:
        return False
    try:
        transcriber.check(replace(options, word_timestamps=True))
    except ModelInputError:
        return False  # a checkpoint of such a family that cannot time its words
    return True


async def diarize(
    transcriber: Transcriber,
    speakers: Speakers,
    audio: Audio,
    options: DecodeOptions,
    request_id: str,
    chunking: VadParams | None = None,
    known: Sequence[KnownSpeaker] = (),
) -> AsyncGenerator[Step, None]:
    """Speaker segments in order, labelled `A`, `B`, ... by first appearance (or by known name), then the transcript."""
    options = replace(options, segment_times=True)  # segments are placed by their times
    turns = asyncio.create_task(speakers.turns(audio, known))
    labels = Labels(k.name for k in known)
    if _times_words(transcriber, options):
        steps = _by_words(transcriber, turns, audio, replace(options, word_timestamps=True), request_id, chunking)
    else:
        steps = _by_turns(transcriber, turns, audio, options, request_id, chunking)
    try:
        async with contextlib.aclosing(steps):
            async for step in steps:
                yield replace(step, speaker=labels(step.speaker)) if isinstance(step, SpeakerSegment) else step
    finally:
        turns.cancel()  # the thread finishes its work; nobody waits for it
        with contextlib.suppress(BaseException):
            await turns


async def collect(steps: AsyncGenerator[Step, None]) -> DiarizedTranscript:
    said: list[SpeakerSegment] = []
    async with contextlib.aclosing(steps):
        async for step in steps:
            if isinstance(step, SpeakerSegment):
                said.append(step)
            else:
                return DiarizedTranscript(step, said)
    raise RuntimeError("a diarized transcription ended without its transcript")


async def _by_words(
    transcriber: Transcriber,
    turns: asyncio.Task[list[SpeakerTurn]],
    audio: Audio,
    options: DecodeOptions,
    request_id: str,
    chunking: VadParams | None,
) -> AsyncGenerator[Step, None]:
    plan = await transcriber.plan(audio, options, request_id, chunking)
    readings = []
    found: Turns | None = None
    async with contextlib.aclosing(transcriber.events(plan, request_id)) as events:
        async for event in events:
            if isinstance(event, PieceDone):
                readings.append(event.reading)
                found = found or Turns(await turns)
                for said in attribute(event.reading.segments, found):
                    yield said
    yield transcriber.transcript(plan, readings)


def quiet_cuts(audio: Audio, turns: Sequence[SpeakerTurn]) -> list[float]:
    """At each change of speaker, the quietest moment near it: a cut there splits no word."""
    rate = audio.sample_rate
    size = round(QUIET_WINDOW_S * rate)
    cuts = []
    for low, high in change_windows(turns):
        a, b = max(0, round(low * rate)), min(len(audio.samples), round(high * rate))
        cuts.append((a + quietest_point(audio.samples[a:b], size)) / rate if b > a else (low + high) / 2)
    return cuts


async def _by_turns(
    transcriber: Transcriber,
    turns: asyncio.Task[list[SpeakerTurn]],
    audio: Audio,
    options: DecodeOptions,
    request_id: str,
    chunking: VadParams | None,
) -> AsyncGenerator[Step, None]:
    found = await turns
    spans = speaker_spans(found, audio.duration, quiet_cuts(audio, found))
    rate = audio.sample_rate
    slots = asyncio.Semaphore(SPANS_AT_ONCE)

    async def read(i: int, span: SpeakerTurn) -> Transcript | None:
        a, b = round(span.start * rate), round(span.end * rate)
        if b - a < MIN_AUDIO_SECONDS * rate:
            return None  # a sliver between two cuts: no word fits in it
        async with slots:
            return await transcriber.transcribe(
                Audio(audio.samples[a:b], rate), options, f"{request_id}-s{i}", chunking
            )

    tasks = [asyncio.create_task(read(i, span)) for i, span in enumerate(spans)]
    parts: list[Transcript] = []
    try:
        for span, task in zip(spans, tasks, strict=True):
            part = await task
            if part is None:
                continue
            parts.append(part)
            for s in part.segments:
                if s.text.strip():
                    yield SpeakerSegment(s.start + span.start, s.end + span.start, s.text.strip(), span.speaker)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    yield _joined(parts, options, audio.duration, transcriber)


def _joined(parts: list[Transcript], options: DecodeOptions, duration: float, transcriber: Transcriber) -> Transcript:
    """One transcript's duration, language and usage from the stretches' own."""
    language = options.language or next((p.language for p in parts if p.language), None)
    return Transcript(
        task=options.task,
        language=language,
        duration=duration,
        language_name=transcriber.model.supported_languages.get(language or "", language or ""),
        usage_kind=transcriber.model.usage_kind,
        input_tokens=sum(p.input_tokens for p in parts),
        audio_tokens=sum(p.audio_tokens for p in parts),
        output_tokens=sum(p.output_tokens for p in parts),
    )
