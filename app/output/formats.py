"""Transcript -> the body of each OpenAI response format (json, text, srt, vtt, verbose_json)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from app.http.protocol import (
    DiarizedSegmentJSON,
    DurationUsage,
    InputTokenDetails,
    Logprob,
    SegmentJSON,
    TokenUsage,
    TranscriptionDiarizedJSON,
    TranscriptionJSON,
    TranscriptionVerboseJSON,
    Usage,
    WordJSON,
)
from app.output.speakers import SpeakerSegment, spoken_text
from app.output.transcript import Transcript
from models.interface import Segment, TokenLogprob

TEXT_MEDIA_TYPES = {"text": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}


def usage(transcript: Transcript) -> Usage:
    if transcript.usage_kind == "tokens":
        return TokenUsage(
            input_tokens=transcript.input_tokens,
            output_tokens=transcript.output_tokens,
            total_tokens=transcript.input_tokens + transcript.output_tokens,
            input_token_details=InputTokenDetails(
                audio_tokens=transcript.audio_tokens, text_tokens=transcript.input_tokens - transcript.audio_tokens
            ),
        )
    # OpenAI bills whole seconds, rounded up.
    duration = transcript.duration
    return DurationUsage(seconds=max(1, math.ceil(duration)) if duration > 0 else 0)


def timestamp(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(segments: list[Segment]) -> list[Segment]:
    return [s for s in segments if s.text.strip()]


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{i}\n{timestamp(s.start, ',')} --> {timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(_cues(transcript.segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    blocks = [
        f"{timestamp(s.start, '.')} --> {timestamp(s.end, '.')}\n{s.text.strip()}\n" for s in _cues(transcript.segments)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_text(transcript: Transcript) -> str:
    return transcript.text + "\n"


def logprob_list(logprobs: Iterable[TokenLogprob]) -> list[Logprob]:
    return [Logprob(token=lp.token, logprob=lp.logprob, bytes=lp.bytes) for lp in logprobs]


def logprobs_of(segments: list[Segment]) -> list[Logprob]:
    return logprob_list(lp for s in segments for lp in s.logprobs)


def to_json(transcript: Transcript, include_logprobs: bool = False) -> dict[str, Any]:
    body = TranscriptionJSON(
        text=transcript.text,
        usage=usage(transcript),
        logprobs=logprobs_of(transcript.segments) if include_logprobs else None,
    )
    return body.model_dump(exclude_none=True)


def segment_json(i: int, s: Segment) -> SegmentJSON:
    return SegmentJSON(
        id=i,
        # OpenAI's `seek`: the start of the segment's window in 10 ms frames.
        seek=round(s.seek * 100),
        start=round(s.start, 2),
        end=round(s.end, 2),
        text=s.text,
        tokens=s.tokens,
        temperature=s.temperature,
        avg_logprob=s.avg_logprob,
        compression_ratio=s.compression_ratio,
        no_speech_prob=s.no_speech_prob,
    )


def to_verbose_json(transcript: Transcript, granularities: Sequence[str] = ()) -> dict[str, Any]:
    """OpenAI's verbose body: segments unless only words were asked for (then `segments` is null)."""
    with_words = "word" in granularities
    with_segments = not granularities or "segment" in granularities
    body = TranscriptionVerboseJSON(
        task=transcript.task,
        language=transcript.language_name or (transcript.language or ""),
        duration=round(transcript.duration, 3),
        text=transcript.text,
        segments=[segment_json(i, s) for i, s in enumerate(transcript.segments)] if with_segments else None,
        words=[WordJSON(word=w.word, start=w.start, end=w.end) for s in transcript.segments for w in s.words]
        if with_words
        else None,
        usage=usage(transcript),
    )
    out = body.model_dump(exclude_none=True)
    if not with_segments:
        out["segments"] = None
    return out


def diarized_segment(i: int, s: SpeakerSegment) -> DiarizedSegmentJSON:
    return DiarizedSegmentJSON(
        id=f"seg_{i}", start=round(s.start, 2), end=round(s.end, 2), text=s.text, speaker=s.speaker
    )


def to_diarized_json(transcript: Transcript, said: Sequence[SpeakerSegment]) -> dict[str, Any]:
    """OpenAI's `TranscriptionDiarized`: who said what, in order."""
    body = TranscriptionDiarizedJSON(
        duration=round(transcript.duration, 3),
        text=spoken_text(said),
        segments=[diarized_segment(i, s) for i, s in enumerate(said)],
        usage=usage(transcript),
    )
    return body.model_dump()


def render(
    transcript: Transcript, response_format: str, include_logprobs: bool = False, granularities: Sequence[str] = ()
) -> tuple[Any, str]:
    """(body, media type): a dict for the JSON formats, a string for the text ones."""
    if response_format == "json":
        return to_json(transcript, include_logprobs), "application/json"
    if response_format == "verbose_json":
        return to_verbose_json(transcript, granularities), "application/json"
    text = {"text": to_text, "srt": to_srt, "vtt": to_vtt}[response_format](transcript)
    return text, TEXT_MEDIA_TYPES[response_format]
