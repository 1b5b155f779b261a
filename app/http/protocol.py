"""OpenAI's audio API shapes: the request form, validated, and the response and stream bodies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from app.audio.vad import VadParams
from app.http.chunking import parse_chunking
from app.http.errors import bad_request, shown
from app.http.speakers import KnownReference, parse_known_speakers
from app.http.upload import ParsedForm, UploadedFile
from config import bounded_json
from models.interface import Task

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"]
RESPONSE_FORMATS: tuple[str, ...] = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
GRANULARITIES = ("segment", "word")
INCLUDES = ("logprobs",)
# Fields OpenAI's API accepts for transcriptions; others are ignored as OpenAI does.
LIST_FIELDS = ("timestamp_granularities", "include", "languages", "keywords", "known_speaker_names")
MAX_PROMPT_CHARS = 20_000


@dataclass(frozen=True)
class TranscriptionParams:
    """A validated transcription or translation request (the audio itself aside)."""

    task: Task
    model: str
    language: str | None = None
    prompt: str | None = None
    response_format: ResponseFormat = "json"
    temperature: float = 0.0
    timestamp_granularities: tuple[str, ...] = ()
    stream: bool = False
    include_logprobs: bool = False
    languages: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    # `chunking_strategy`: None leaves it to the model family's default.
    chunking: VadParams | None = None
    # `known_speaker_names[]` with their `known_speaker_references[]` (diarized_json only).
    known_speakers: tuple[KnownReference, ...] = ()


def _scalar(form: ParsedForm, name: str) -> str | None:
    values = form.fields.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise bad_request(f"`{name}` was given {len(values)} times; send it once", param=name)
    return values[0]


def _list(form: ParsedForm, name: str) -> list[str]:
    # The SDK sends `name[]=a&name[]=b`; curl users often send `name=a`. Accept both.
    values = [*form.fields.get(f"{name}[]", []), *form.fields.get(name, [])]
    out: list[str] = []
    for value in values:
        if value.strip().startswith("["):
            try:
                parsed = bounded_json.loads(value)
            except bounded_json.JSONError as error:
                raise bad_request(f"`{name}` is not a valid JSON list: {error.message}", param=name) from None
            out.extend(str(v) for v in parsed)
        else:
            out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def _temperature(raw: str | None) -> float:
    if raw is None or raw.strip() == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"temperature must be a number between 0 and 1, got {shown(raw)}", "temperature") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise bad_request(f"temperature must be a number between 0 and 1, got {shown(raw)}", "temperature")
    return value


def _bool(raw: str | None, name: str) -> bool:
    if raw is None or raw.strip() == "":
        return False
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise bad_request(f"`{name}` must be true or false, got {shown(raw)}", param=name)


def upload_of(form: ParsedForm) -> UploadedFile:
    files = form.files.get("file", [])
    if not files:
        if "file" in form.fields:
            raise bad_request("`file` must be an uploaded file, not a text field", param="file")
        raise bad_request("you must provide an audio file in the `file` field", param="file")
    if len(files) > 1:
        raise bad_request("send one audio file per request", param="file")
    if files[0].size == 0:
        raise bad_request("the uploaded file is empty", param="file", code="empty_file")
    return files[0]


def parse_params(form: ParsedForm, task: Task) -> TranscriptionParams:
    """Validate the form's text fields as OpenAI does, naming the field at fault."""
    model = _scalar(form, "model")
    if model is None or not model.strip():
        raise bad_request("you must provide a model parameter", param="model")
    response_format = (_scalar(form, "response_format") or "json").strip()
    if response_format not in RESPONSE_FORMATS:
        raise bad_request(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}; got {shown(response_format)}",
            param="response_format",
        )
    granularities = _list(form, "timestamp_granularities")
    includes = _list(form, "include")
    prompt = _scalar(form, "prompt")
    if response_format == "diarized_json":
        _check_diarized(task, prompt, granularities, includes)
    for g in granularities:
        if g not in GRANULARITIES:
            raise bad_request(
                f"timestamp_granularities must be `segment` and/or `word`; got {shown(g)}",
                param="timestamp_granularities",
            )
    if granularities and response_format != "verbose_json":
        raise bad_request(
            "timestamp_granularities needs response_format `verbose_json`", param="timestamp_granularities"
        )
    for item in includes:
        if item not in INCLUDES:
            raise bad_request(f"include must list only `logprobs`; got {shown(item)}", param="include")
    keywords = _list(form, "keywords")
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise bad_request(f"prompt is longer than {MAX_PROMPT_CHARS} characters", param="prompt")
    if sum(len(k) for k in keywords) > MAX_PROMPT_CHARS:
        raise bad_request(f"keywords are longer than {MAX_PROMPT_CHARS} characters in all", param="keywords")
    language = _scalar(form, "language") if task == "transcribe" else None
    return TranscriptionParams(
        task=task,
        model=model.strip(),
        language=language.strip() or None if language else None,
        prompt=prompt,
        response_format=response_format,  # type: ignore[arg-type]
        temperature=_temperature(_scalar(form, "temperature")),
        timestamp_granularities=tuple(dict.fromkeys(granularities)),
        stream=_bool(_scalar(form, "stream"), "stream"),
        include_logprobs="logprobs" in includes,
        languages=tuple(_list(form, "languages")) if task == "transcribe" else (),
        keywords=tuple(keywords),
        chunking=parse_chunking(form),
        known_speakers=parse_known_speakers(form, response_format == "diarized_json"),
    )


def _check_diarized(task: Task, prompt: str | None, granularities: list[str], includes: list[str]) -> None:
    """What OpenAI's API refuses with `diarized_json`, each naming its field."""
    if task != "transcribe":
        raise bad_request("response_format `diarized_json` is offered for transcriptions only", param="response_format")
    if prompt:
        raise bad_request("`prompt` cannot be used with response_format `diarized_json`", param="prompt")
    if granularities:
        raise bad_request(
            "timestamp_granularities cannot be used with response_format `diarized_json`",
            param="timestamp_granularities",
        )
    if includes:
        raise bad_request("`include` cannot be used with response_format `diarized_json`", param="include")


# -- response bodies ----------------------------------------------------------------------------


class DurationUsage(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: int


class InputTokenDetails(BaseModel):
    audio_tokens: int
    text_tokens: int


class TokenUsage(BaseModel):
    """How OpenAI bills its token-based transcription models."""

    type: Literal["tokens"] = "tokens"
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: InputTokenDetails


Usage = DurationUsage | TokenUsage


class Logprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class TranscriptionJSON(BaseModel):
    text: str
    usage: Usage | None = None
    logprobs: list[Logprob] | None = None


class SegmentJSON(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class WordJSON(BaseModel):
    word: str
    start: float
    end: float


class TranscriptionVerboseJSON(BaseModel):
    task: str = Field(description="`transcribe` or `translate`")
    language: str
    duration: float
    text: str
    segments: list[SegmentJSON] | None = None
    words: list[WordJSON] | None = None
    usage: Usage | None = None


class DiarizedSegmentJSON(BaseModel):
    """OpenAI's `TranscriptionDiarizedSegment`; the stream's `transcript.text.segment` event has the same fields."""

    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    start: float
    end: float
    text: str
    speaker: str


class TranscriptionDiarizedJSON(BaseModel):
    task: Literal["transcribe"] = "transcribe"
    duration: float
    text: str
    segments: list[DiarizedSegmentJSON]
    usage: Usage | None = None


class TextDeltaEvent(BaseModel):
    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    logprobs: list[Logprob] | None = None


class TextDoneEvent(BaseModel):
    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    logprobs: list[Logprob] | None = None
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "speech-gateway"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
