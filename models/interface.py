"""The contract between the gateway and a model family, after vLLM's `SupportsTranscription`.

Everything here is plain data: prompts are the dicts vLLM accepts, results are lists and
numbers, so the gateway can drive any model without knowing which one it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

Task = Literal["transcribe", "translate"]


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
    # How far back from a window's end the cut may move to find a quiet point.
    overlap_chunk_second: float = 1.0
    # Samples in the RMS window used to find the quietest point; None disables energy search.
    min_energy_split_window_size: int | None = 1600
    allow_audio_chunking: bool = True


@dataclass(frozen=True)
class DecodeOptions:
    """What the client asked for that changes decoding."""

    task: Task = "transcribe"
    language: str | None = None
    prompt: str | None = None
    # Starting temperature; a model may raise it in its own fallback.
    temperature: float = 0.0
    # Languages a detection may choose from (the API's `languages[]`); empty: any.
    candidate_languages: tuple[str, ...] = ()
    want_logprobs: bool = False


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
    # A per-request logits rule by name with its arguments, built in the engine process by
    # `models.logits_rules.build_rule`.
    logits_rule: tuple[str, Mapping[str, Any]] | None = None
    seed: int | None = None


@dataclass(frozen=True)
class GenerationResult:
    """What the engine produced for one `GenerationRequest`."""

    token_ids: list[int]
    text: str
    # Logprob of each sampled token, when asked.
    token_logprobs: list[float] = field(default_factory=list)
    # Logprobs of the requested ids at each step, when asked.
    step_logprobs: list[dict[int, float]] = field(default_factory=list)
    # Top logprobs per prompt position (None for the first), when asked.
    prompt_logprobs: list[dict[int, float] | None] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: list[int]


@dataclass(frozen=True)
class Segment:
    """A stretch of transcript with its times in seconds of the whole audio."""

    start: float
    end: float
    text: str
    tokens: list[int] = field(default_factory=list)
    # Start of the window the segment was read in (OpenAI's `seek`), in seconds.
    seek: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass(frozen=True)
class WindowOutcome:
    """How a model read one window of audio.

    `consumed_s` is how far into the window the transcript is complete; the gateway
    re-reads the rest of the window when it is short of the end. `retry` asks for the
    window again at the next fallback temperature.
    """

    segments: list[Segment]
    consumed_s: float
    retry: bool = False
    no_speech: bool = False
    output_tokens: int = 0
    # Higher is better; picks among attempts that all asked to retry (Whisper: average
    # log-probability, with repetitive readings ranked below all others).
    score: float = 0.0


@dataclass(frozen=True)
class LanguageGuess:
    language: str
    probability: float
    no_speech_prob: float


class TranscriptionModel(Protocol):
    """What a model family implements so the gateway can serve it."""

    # ISO 639-1 code -> language name.
    supported_languages: Mapping[str, str]
    # True for models that can only do speech-to-text (no free text generation).
    supports_transcription_only: ClassVar[bool]

    @property
    def supports_translation(self) -> bool: ...

    @property
    def supports_language_detection(self) -> bool: ...

    @property
    def fallback_temperatures(self) -> Sequence[float]:
        """Temperatures to retry a window at when its outcome asks for a retry."""
        ...

    def get_speech_to_text_config(self, task: Task) -> SpeechToTextConfig: ...

    def validate_language(self, language: str | None) -> str | None:
        """Normalise `language` or raise ModelInputError naming `language`."""
        ...

    def validate_options(self, options: DecodeOptions) -> None:
        """Raise ModelInputError for a request this model cannot serve (e.g. translation)."""
        ...

    def get_num_audio_tokens(self, audio_duration_s: float) -> int | None: ...

    def get_generation_prompt(
        self, audio: np.ndarray, stt_config: SpeechToTextConfig, options: DecodeOptions, temperature: float
    ) -> GenerationRequest:
        """The engine request that transcribes (or translates) one window of audio."""
        ...

    def parse_window(
        self, result: GenerationResult, window_s: float, offset_s: float, temperature: float, final: bool = False
    ) -> WindowOutcome:
        """Turn the engine's output for one window into segments in absolute time.

        `final`: the window ends where the audio ends.
        """
        ...

    def get_language_detection_prompt(
        self, audio: np.ndarray, stt_config: SpeechToTextConfig, candidates: Sequence[str]
    ) -> GenerationRequest: ...

    def parse_language_detection(self, result: GenerationResult, candidates: Sequence[str]) -> LanguageGuess: ...

    def decode_text(self, token_ids: Sequence[int]) -> str: ...
