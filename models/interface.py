"""The contract between the gateway and a model family, after vLLM's `SupportsTranscription`.

Everything that crosses it is plain data: prompts are the dicts vLLM accepts, results are
lists and numbers. The gateway cuts audio into the family's pieces and hands each one to
the family with two engine calls; the family decides how to read it (prompts, retries,
re-reads, cleanup) and returns segments. The gateway never learns why a family asked twice.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, Self

import numpy as np

Task = Literal["transcribe", "translate"]
# How usage is reported: audio seconds (Whisper, as `whisper-1`) or tokens (audio LLMs, as
# OpenAI's token-billed transcription models).
UsageKind = Literal["duration", "tokens"]


class ModelInputError(ValueError):
    """A request the model cannot serve as asked (bad language, unsupported task...).

    `param` names the request field to change.
    """

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True)
class SpeechToTextConfig:
    """How the gateway prepares audio for a model."""

    sample_rate: int = 16_000
    # Longest piece one engine request may hold; None: the model takes any length.
    max_audio_clip_s: float | None = 30.0
    # How far back from a piece's end the cut may move to find a quiet point.
    overlap_chunk_second: float = 1.0
    # Samples in the RMS window used to find the quietest point; None disables energy search.
    min_energy_split_window_size: int | None = 1600
    allow_audio_chunking: bool = True
    # Read only the speech a voice-activity detector finds, packed into full pieces, unless the
    # request's `chunking_strategy` says otherwise. Off where a model is held to a reference
    # that hears the whole recording.
    pack_speech: bool = False


@dataclass(frozen=True)
class DecodeOptions:
    """What the client asked for that changes decoding."""

    task: Task = "transcribe"
    language: str | None = None
    prompt: str | None = None
    # Words to prefer (OpenAI's `keywords[]`).
    keywords: tuple[str, ...] = ()
    # Starting temperature; a model may raise it in its own fallback.
    temperature: float = 0.0
    # Languages a detection may choose from (the API's `languages[]`); empty: any.
    candidate_languages: tuple[str, ...] = ()
    want_logprobs: bool = False
    word_timestamps: bool = False
    # Segments with times are wanted (verbose_json, srt, vtt). False: the text alone (json,
    # text), which a model may read more cheaply (Whisper: no timestamp tokens).
    segment_times: bool = True


@dataclass(frozen=True)
class GenerationRequest:
    """One engine request as plain data; the engine module turns it into its own types."""

    prompt: Mapping[str, Any]
    max_tokens: int
    temperature: float = 0.0
    # Return the logprob of each sampled token.
    sample_logprobs: bool = False
    # Return logprobs of these ids at every step (language detection).
    logprob_token_ids: Sequence[int] | None = None
    # Return the top-k logprobs of every prompt position.
    prompt_logprobs: int | None = None
    allowed_token_ids: Sequence[int] | None = None
    # The checkpoint's own setting (its generation_config.json), so decoding matches its reference.
    repetition_penalty: float = 1.0
    # A per-request logits rule: "module:factory" inside `models`, called in the engine process
    # with the mapping; the factory returns a callable (output ids, logits row) -> logits row.
    logits_rule: tuple[str, Mapping[str, Any]] | None = None
    seed: int | None = None
    # A LoRA adapter directory the engine applies to this request (a checkpoint's own adapter, such
    # as Granite Speech's for turns holding audio); the family enables LoRA in its engine arguments.
    adapter: str | None = None


@dataclass(frozen=True)
class GenerationResult:
    """What the engine produced for one `GenerationRequest` (so far, while streaming)."""

    token_ids: list[int]
    text: str
    # Logprob of each sampled token, when asked.
    token_logprobs: list[float] = field(default_factory=list)
    # Logprobs of the requested ids at each step, when asked.
    step_logprobs: list[dict[int, float]] = field(default_factory=list)
    # Top logprobs per prompt position (None for the first), when asked.
    prompt_logprobs: list[dict[int, float] | None] = field(default_factory=list)
    finish_reason: str | None = None
    # The prompt as the engine ran it, multimodal placeholders expanded (in a stream: on the last result).
    prompt_token_ids: list[int] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: list[int]


@dataclass(frozen=True)
class Word:
    """A word with its times in seconds of the whole audio; its text keeps its leading space."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class Segment:
    """A stretch of transcript with its times in seconds of the whole audio."""

    start: float
    end: float
    text: str
    tokens: list[int] = field(default_factory=list)
    # Start of the piece the segment was read in (OpenAI's `seek`), in seconds.
    seek: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0
    logprobs: list[TokenLogprob] = field(default_factory=list)
    # Only when the request asked for word timestamps.
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Piece:
    """One stretch of the request's audio, read by one family call."""

    index: int
    samples: np.ndarray
    sample_rate: int
    offset_s: float
    # Nothing is cut off at the piece's end: the audio ends there, or speech pauses.
    final: bool

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Reading:
    """What a family made of one piece: segments in absolute time and what it cost."""

    segments: list[Segment] = field(default_factory=list)
    input_tokens: int = 0
    audio_tokens: int = 0
    output_tokens: int = 0
    # A language the family recognised in the output (Qwen3-ASR names it), as an ISO code.
    language: str | None = None


@dataclass(frozen=True)
class TextDelta:
    """Text to stream to the client now, with its token logprobs when asked."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


Generate = Callable[[GenerationRequest, str], Awaitable[GenerationResult]]
# Cumulative results as tokens arrive; the last one carries `finish_reason`.
StreamGenerate = Callable[[GenerationRequest, str], AsyncGenerator[GenerationResult, None]]
Emit = Callable[[TextDelta], None]


@dataclass(frozen=True)
class EngineCalls:
    """The engine as a family sees it. Tags name requests within one piece (made unique by the gateway)."""

    generate: Generate
    stream: StreamGenerate


@dataclass(frozen=True)
class SharingSetup:
    """What a family that shares engine windows between requests gets from the gateway."""

    # Engine calls for one shared window; the tag makes its request ids unique.
    calls: Callable[[str], EngineCalls]
    # How long a short piece may wait for others to share its window.
    wait_s: float
    # Whether the engine has work: an idle engine takes a lone piece at once.
    busy: Callable[[], bool]
    # Told of every shared window: how many pieces rode in it, how many were read again.
    on_window: Callable[[int, int], None] | None = None
    # Whether pieces of other requests are on their way (their audio is being decoded or cut):
    # with none, a window leaves at once instead of waiting out `wait_s` for riders who will not come.
    expected: Callable[[], bool] = lambda: True


class SharedWindows(Protocol):
    """Lets short pieces of concurrent requests share one engine window (a family's own economy)."""

    def takes(self, piece: Piece) -> bool:
        """Whether the piece may ride with others (the family reads any other piece alone)."""
        ...

    async def read(self, piece: Piece, options: DecodeOptions) -> Reading:
        """The piece's reading in its own time, exactly as if it were read alone."""
        ...

    def nudge(self) -> None:
        """No more pieces are on their way: waiting windows may leave."""
        ...


class TranscriptionModel(Protocol):
    """What a model family implements so the gateway can serve it."""

    # ISO 639-1 code -> language name (lowercase English, as OpenAI reports it).
    supported_languages: Mapping[str, str]
    # True for models that can only do speech-to-text (no free text generation).
    supports_transcription_only: ClassVar[bool]
    usage_kind: ClassVar[UsageKind]
    # Its segments carry timed words when `DecodeOptions.word_timestamps` asks (speakers are then
    # given word by word); else each speaker turn is read as its own piece.
    supports_word_timestamps: ClassVar[bool]

    @classmethod
    def from_pretrained(cls, model_dir: Path, dtype: str = "auto") -> Self:
        """The family for the checkpoint; `dtype` is the engine's (for any computation the family runs itself)."""
        ...

    @property
    def supports_translation(self) -> bool: ...

    @property
    def supports_language_detection(self) -> bool: ...

    def engine_args(self) -> Mapping[str, Any]:
        """Engine arguments the family needs (`limit_mm_per_prompt`, `max_logprobs`, ...)."""
        ...

    def get_speech_to_text_config(self, task: Task) -> SpeechToTextConfig: ...

    def validate_language(self, language: str | None) -> str | None:
        """Normalise `language` or raise ModelInputError naming `language`."""
        ...

    def validate_options(self, options: DecodeOptions) -> None:
        """Raise ModelInputError, naming the field, for what this family cannot do."""
        ...

    async def prepare(self, pieces: Sequence[Piece], options: DecodeOptions, calls: EngineCalls) -> DecodeOptions:
        """Options for every piece of one request (Whisper detects the language here)."""
        ...

    async def read(self, piece: Piece, options: DecodeOptions, calls: EngineCalls, emit: Emit | None = None) -> Reading:
        """Read one piece; `emit` (streams only) receives text as soon as it is final."""
        ...

    def window_sharing(self, setup: SharingSetup) -> SharedWindows | None:
        """Sharing of engine windows between requests, where the family's economy gains by it; else None."""
        ...

    async def warm_up(self, calls: EngineCalls) -> None:
        """One short engine request of the family's usual shape, so that the engine builds its
        kernels before the first client waits for them."""
        ...
