"""What audio LLMs share: one chat turn per piece of audio, streamed, cleaned, billed in tokens.

A family module says how its chat looks (the conversation its processor documents, rendered
by the checkpoint's own chat template), which token stands for audio, which instruction asks
for a transcript or a translation, and how to unwrap the answer. Everything else is here:
loading the tokenizer and template, the engine request, streaming deltas that never have to
be taken back, usage, and the limits of what such a model can do for the API.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Self

from models.alignment import TextAligner
from models.checkpoint import feature_extractor_config, read_json
from models.interface import (
    DecodeOptions,
    Emit,
    EngineCalls,
    GenerationRequest,
    GenerationResult,
    ModelInputError,
    Piece,
    Reading,
    Segment,
    SharingSetup,
    SpeechToTextConfig,
    Task,
    TextDelta,
    TokenLogprob,
    UsageKind,
)
from models.languages import LANGUAGES, normalise_language, shown
from models.sentences import sentence_segments
from models.signal import is_silent, quiet_noise

# Tokens one piece may produce: 30 s of fast speech is about 120 tokens.
MAX_NEW_TOKENS = 448
# Characters held back while streaming, so cleanup at the end (a closing quote and full stop)
# never has to take back text already sent.
STREAM_HOLD_CHARS = 2
REPLACEMENT_CHAR = "\ufffd"


def _read_template(model_dir: Path, tokenizer: Any) -> str:
    """The checkpoint's chat template: the processor's file, else the tokenizer's."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("chat_template.json", "processor_config.json"):
        template = read_json(model_dir / name).get("chat_template")
        if isinstance(template, str):
            return template
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str):
        return template
    raise ValueError(f"{model_dir.name} has no chat template; the family needs one to build its prompts")


class AudioChatFamily:
    """Base of the audio LLM families: a subclass supplies the chat, the audio token and the cleanup."""

    supports_transcription_only: ClassVar[bool] = False
    usage_kind: ClassVar[UsageKind] = "tokens"
    # Words are timed when asked (`timed`), but a diarized request still reads each speaker's turn
    # as its own piece: an answer may drift across a change of speaker that its words would not show.
    supports_word_timestamps: ClassVar[bool] = False
    # The token the engine repeats once per audio position (counted for usage).
    audio_token: ClassVar[str]
    # Longest piece the model reads well; longer audio is cut at quiet points.
    max_clip_s: ClassVar[float] = 30.0
    # Languages the family accepts as a hint, ISO code -> lowercase English name.
    languages: ClassVar[Mapping[str, str]] = LANGUAGES
    translates: ClassVar[bool] = True
    # What the instruction asks to be read, and the verb that agrees with it ("..., which is in French,").
    heard: ClassVar[str] = "the input speech"
    heard_is: ClassVar[str] = "is"
    # Precision of the word aligner's own PyTorch work (the engine's, set by `from_pretrained`).
    aligner_dtype: str = "auto"

    def __init__(
        self, tokenizer: Any, chat_template: str, sample_rate: int = 16_000, repetition_penalty: float = 1.0
    ) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.sample_rate = sample_rate
        self.repetition_penalty = repetition_penalty
        self.supported_languages: Mapping[str, str] = dict(self.languages)
        self.audio_token_id = int(tokenizer.convert_tokens_to_ids(self.audio_token))

    @classmethod
    def from_pretrained(cls, model_dir: Path, dtype: str = "auto") -> Self:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        sample_rate = int(feature_extractor_config(model_dir).get("sampling_rate", 16_000))
        penalty = float(read_json(model_dir / "generation_config.json").get("repetition_penalty") or 1.0)
        model = cls(tokenizer, _read_template(model_dir, tokenizer), sample_rate, penalty)
        model.aligner_dtype = dtype
        return model

    @cached_property
    def text_aligner(self) -> TextAligner:
        """Times the words of an answer (the embedded Whisper's alignment heads), loaded on first use."""
        return TextAligner(self.aligner_dtype)

    # -- what the family says about itself -------------------------------------------------
    def conversation(self, options: DecodeOptions) -> list[dict[str, Any]]:
        """The chat for one piece, as the family's processor documents it (audio as a placeholder)."""
        raise NotImplementedError

    def instruction(self, options: DecodeOptions) -> str:
        """The request in words, then the client's context."""
        return "\n".join([self.request(options), *self.context_lines(options)])

    def request(self, options: DecodeOptions) -> str:
        """Transcribe or translate `heard`, with the language hint."""
        language = self.language_name(options.language) if options.language else None
        which = f", which {self.heard_is} in {language}," if language else ""
        if options.task == "translate":
            return f"Translate {self.heard}{which} into English."
        return f"Transcribe {self.heard}{which}".rstrip(",") + "."

    def context_lines(self, options: DecodeOptions) -> list[str]:
        lines = []
        if options.prompt and options.prompt.strip():
            lines.append(f"Context: {options.prompt.strip()}")
        if options.keywords:
            lines.append(f"These words may occur: {', '.join(options.keywords)}.")
        return lines

    def clean(self, text: str) -> str:
        """The transcript in the model's answer (the answer decoded without special tokens)."""
        return text.strip()

    def answer_language(self, text: str) -> str | None:
        """The language the answer names, as an ISO code, for families that name it."""
        return None

    def template_kwargs(self, options: DecodeOptions) -> dict[str, Any]:
        return {"add_generation_prompt": True}

    # -- capabilities -----------------------------------------------------------------------
    @property
    def supports_translation(self) -> bool:
        return self.translates

    @property
    def supports_language_detection(self) -> bool:
        return False

    def engine_args(self) -> Mapping[str, Any]:
        return {"limit_mm_per_prompt": {"audio": 1}}

    def get_speech_to_text_config(self, task: Task) -> SpeechToTextConfig:
        return SpeechToTextConfig(
            sample_rate=self.sample_rate,
            max_audio_clip_s=self.max_clip_s,
            overlap_chunk_second=5.0,
            min_energy_split_window_size=1600,
        )

    def validate_language(self, language: str | None) -> str | None:
        if language is None or not language.strip():
            return None
        key = language.strip().lower()
        code = key if key in self.supported_languages else normalise_language(language)
        if code is None or code not in self.supported_languages:
            raise ModelInputError(
                f"unsupported language {shown(language)}: this model takes one of "
                f"{', '.join(sorted(self.supported_languages))}",
                param="language",
                code="unsupported_language",
            )
        return code

    def validate_options(self, options: DecodeOptions) -> None:
        if options.task == "translate" and not self.supports_translation:
            raise ModelInputError(
                "this model only transcribes; use /v1/audio/transcriptions",
                param="model",
                code="translation_not_supported",
            )
        if options.word_timestamps:
            # A language the model does not take is refused as such first (`language`).
            self.text_aligner.check(self.validate_language(options.language), param="timestamp_granularities")
        if options.candidate_languages:
            raise ModelInputError(
                "this model does not pick among candidate languages; name the language with `language`",
                param="languages",
                code="unsupported_parameter",
            )

    # -- reading ----------------------------------------------------------------------------
    def language_name(self, code: str) -> str:
        return self.supported_languages[code].capitalize()

    def prompt_text(self, options: DecodeOptions) -> str:
        rendered = self.tokenizer.apply_chat_template(
            self.conversation(options),
            chat_template=self.chat_template,
            tokenize=False,
            **self.template_kwargs(options),
        )
        return str(rendered)

    def generation_request(self, piece: Piece, options: DecodeOptions) -> GenerationRequest:
        return GenerationRequest(
            prompt={
                "prompt": self.prompt_text(options),
                "multi_modal_data": {"audio": (piece.samples, piece.sample_rate)},
            },
            max_tokens=MAX_NEW_TOKENS,
            temperature=options.temperature,
            sample_logprobs=options.want_logprobs,
            repetition_penalty=self.repetition_penalty,
        )

    async def prepare(self, pieces: Sequence[Piece], options: DecodeOptions, calls: EngineCalls) -> DecodeOptions:
        return options

    def window_sharing(self, setup: SharingSetup) -> None:
        """An audio LLM's cost grows with the audio it hears: nothing to gain from sharing."""
        return None

    async def warm_up(self, calls: EngineCalls) -> None:
        piece = Piece(0, quiet_noise(1.0, self.sample_rate), self.sample_rate, 0.0, True)
        await calls.generate(replace(self.generation_request(piece, DecodeOptions()), max_tokens=2), "warmup")

    async def read(self, piece: Piece, options: DecodeOptions, calls: EngineCalls, emit: Emit | None = None) -> Reading:
        if is_silent(piece.samples):
            # Digital silence: nothing to hear, and LLMs invent text for it.
            return Reading()
        request = self.generation_request(piece, options)
        if emit is None:
            result = await calls.generate(request, "chat")
        else:
            result = await self._stream(request, calls, emit, options.want_logprobs)
        reading = self.reading(result, piece, options)
        # Times are aligned only for a client that sees them: a stream (or Realtime) carries text only.
        if emit is None and (options.word_timestamps or options.segment_times) and reading.segments:
            return await self.timed(reading, piece, options)
        return reading

    async def timed(self, reading: Reading, piece: Piece, options: DecodeOptions) -> Reading:
        """The piece's segment as sentences, timed by aligning its text to the audio (words when asked).

        A piece the aligner cannot take (longer than Whisper's window, or in a language it does not
        know, named by the answer only) keeps its one segment.
        """
        language = options.language or reading.language
        segment = reading.segments[0]
        if not self.text_aligner.can_align(piece.samples, piece.sample_rate, language):
            return reading
        words = await self.text_aligner.words(piece.samples, piece.sample_rate, segment.text, language)
        moved = [
            replace(w, start=round(w.start + piece.offset_s, 3), end=round(w.end + piece.offset_s, 3)) for w in words
        ]
        segments = sentence_segments(segment, moved, self.decode, options.word_timestamps)
        return replace(reading, segments=segments)

    async def _stream(
        self, request: GenerationRequest, calls: EngineCalls, emit: Emit, logprobs: bool
    ) -> GenerationResult:
        sent = ""
        sent_tokens = 0
        last: GenerationResult | None = None
        # Closed however this ends, so a cancelled stream aborts its engine request at once.
        async with aclosing(calls.stream(request, "chat")) as partials:
            async for partial in partials:
                last = partial
                visible = self.visible(partial.token_ids, final=partial.finish_reason is not None)
                # Only ever append: text that cleanup might still change stays held back.
                if len(visible) > len(sent) and visible.startswith(sent):
                    tokens = self.token_logprobs(partial.token_ids[sent_tokens:], partial.token_logprobs[sent_tokens:])
                    emit(TextDelta(_leading_space(visible[len(sent) :], sent), tuple(tokens) if logprobs else ()))
                    sent, sent_tokens = visible, len(partial.token_ids)
        if last is None:
            raise RuntimeError("the engine streamed no output")
        return last

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def visible(self, token_ids: Sequence[int], final: bool) -> str:
        """The cleaned text so far that no later token or cleanup can change."""
        text = self.decode(token_ids)
        if final:
            return self.clean(text)
        partial = self.clean_partial(text.rstrip(REPLACEMENT_CHAR))
        return partial[: max(0, len(partial) - STREAM_HOLD_CHARS)]

    def clean_partial(self, text: str) -> str:
        """`clean` for an answer still being written; empty while a wrapper may still be forming."""
        return self.clean(text)

    def token_logprobs(self, token_ids: Sequence[int], logprobs: Sequence[float]) -> list[TokenLogprob]:
        out = []
        for token, logprob in zip(token_ids, logprobs, strict=False):
            text = self.decode([token])
            out.append(TokenLogprob(token=text, logprob=logprob, bytes=list(text.encode("utf-8"))))
        return out

    def reading(self, result: GenerationResult, piece: Piece, options: DecodeOptions) -> Reading:
        answer = self.decode(result.token_ids)
        text = self.clean(answer)
        logprobs = list(result.token_logprobs)
        avg = sum(logprobs) / len(logprobs) if logprobs else 0.0
        segment = Segment(
            start=round(piece.offset_s, 3),
            end=round(piece.offset_s + piece.duration, 3),
            # Pieces join with a space, as Whisper's segments do.
            text=" " + text if text else "",
            tokens=list(result.token_ids),
            seek=piece.offset_s,
            avg_logprob=avg if math.isfinite(avg) else 0.0,
            temperature=options.temperature,
            logprobs=self.token_logprobs(result.token_ids, logprobs) if options.want_logprobs else [],
        )
        return Reading(
            segments=[segment] if text else [],
            input_tokens=result.prompt_tokens,
            audio_tokens=sum(1 for t in result.prompt_token_ids if t == self.audio_token_id),
            output_tokens=len(result.token_ids),
            language=self.answer_language(answer),
        )


def _leading_space(delta: str, sent: str) -> str:
    # A piece's first delta starts with a space, as its segment text does.
    return " " + delta if not sent else delta
