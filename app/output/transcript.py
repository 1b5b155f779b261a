"""A finished request's result: segments in order, language, duration and what it cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from models.interface import Reading, Segment, Task, UsageKind


@dataclass(frozen=True)
class Transcript:
    task: Task
    language: str | None
    duration: float
    segments: list[Segment] = field(default_factory=list)
    # How OpenAI reports the language: its lowercase English name.
    language_name: str = ""
    usage_kind: UsageKind = "duration"
    input_tokens: int = 0
    audio_tokens: int = 0
    output_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments).strip()


def assemble(
    task: Task,
    language: str | None,
    duration: float,
    readings: Sequence[Reading],
    languages: Mapping[str, str],
    usage_kind: UsageKind,
) -> Transcript:
    """The transcript of a request from its pieces' readings, in order."""
    segments = [segment for reading in readings for segment in reading.segments]
    # A family that names the language in its output reports it when the client gave none.
    language = language or next((r.language for r in readings if r.language), None)
    return Transcript(
        task=task,
        language=language,
        duration=duration,
        segments=merge(segments),
        language_name=languages.get(language or "", language or ""),
        usage_kind=usage_kind,
        input_tokens=sum(r.input_tokens for r in readings),
        audio_tokens=sum(r.audio_tokens for r in readings),
        output_tokens=sum(r.output_tokens for r in readings),
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
