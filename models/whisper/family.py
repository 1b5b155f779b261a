"""Whisper: prompts as token ids, timestamped decoding and language detection (parsing: `window.py`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tokenizers import Tokenizer

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
    UsageKind,
)
from models.languages import LANGUAGES, normalise_language, shown
from models.signal import quiet_noise
from models.whisper.aligner import Aligner
from models.whisper.reading import LanguageGuess, Window, detect_language, read_window
from models.whisper.rules import timestamp_spans
from models.whisper.sharing import WindowSharing
from models.whisper.vocab import WhisperVocab, load_tokenizer
from models.whisper.window import SECONDS_PER_TIMESTAMP, WindowContext, WindowOutcome, decode_text, parse_window
from models.whisper.words import attach_words, snap_to_sound, split_words, time_words

MAX_INITIAL_TIMESTAMP_S = 1.0
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# Above this temperature the prompt is dropped: a prompt can itself pull the model into a loop.
PROMPT_RESET_TEMPERATURE = 0.5
# Top-k prompt logprobs requested to read P(no speech) at the start-of-transcript position.
NO_SPEECH_TOP_K = 20
# Enough for language detection over every Whisper language plus <|nospeech|>.
MAX_LOGPROBS = 128
# A warm-up reading: enough steps to build the decoder's kernels, too few to cost anything.
WARM_UP_TOKENS = 4
# Where the engine process finds the timestamp rule (see `rules.py`).
LOGITS_RULE = "models.whisper.rules:build_rule"


def _joined_prompt(options: DecodeOptions) -> str | None:
    """`keywords[]` lead the prompt: Whisper conditions on previous text, so listed words help."""
    if not options.keywords:
        return options.prompt
    return ", ".join(options.keywords) + (f". {options.prompt}" if options.prompt else "")


class WhisperModel:
    """Whisper served through the gateway: the SupportsTranscription-style contract."""

    supports_transcription_only: ClassVar[bool] = True
    usage_kind: ClassVar[UsageKind] = "duration"
    supports_word_timestamps: ClassVar[bool] = True

    def __init__(self, tokenizer: Tokenizer, config: Mapping[str, Any], generation: Mapping[str, Any]):
        self.tokenizer = tokenizer
        self.vocab = WhisperVocab.from_tokenizer(tokenizer)
        self.multilingual = bool(generation.get("is_multilingual", config.get("vocab_size", 0) >= 51865))
        # What parsing a reading needs (see `window.py`).
        self.window_context = WindowContext(tokenizer, self.vocab, self.multilingual)
        self.supported_languages: Mapping[str, str] = (
            {code: LANGUAGES[code] for code in self.vocab.languages} if self.multilingual else {"en": "english"}
        )
        self.max_target_positions = int(config.get("max_target_positions", 448))
        self.sample_len = self.max_target_positions // 2
        suppress = [int(t) for t in config.get("suppress_tokens") or generation.get("suppress_tokens") or []]
        # Special tokens between end-of-text and the timestamps never belong in a transcript.
        suppress += range(self.vocab.eot + 1, self.vocab.timestamp_begin)
        self.rule_args: dict[str, Any] = {
            "timestamp_begin": self.vocab.timestamp_begin,
            "eot": self.vocab.eot,
            "no_timestamps": self.vocab.no_timestamps,
            "suppress": sorted(set(suppress)),
            "suppress_begin": [int(t) for t in config.get("begin_suppress_tokens") or [220, self.vocab.eot]],
            "max_initial_timestamp_index": round(MAX_INITIAL_TIMESTAMP_S / SECONDS_PER_TIMESTAMP),
        }
        self.sample_rate = 16_000
        self.chunk_length_s = 30.0
        # Word timestamps need the checkpoint's alignment heads (set by `from_pretrained`).
        self.aligner: Aligner | None = None

    @classmethod
    def from_pretrained(cls, model_dir: Path, dtype: str = "auto") -> WhisperModel:
        config = read_json(model_dir / "config.json")
        generation = read_json(model_dir / "generation_config.json")
        model = cls(load_tokenizer(model_dir), config, generation)
        extractor = feature_extractor_config(model_dir)
        model.sample_rate = int(extractor.get("sampling_rate", 16_000))
        model.chunk_length_s = float(extractor.get("chunk_length", 30))
        if heads := generation.get("alignment_heads"):
            model.aligner = Aligner(model_dir, heads, dtype, config.get("torch_dtype") or config.get("dtype"))
        return model

    # -- capabilities -------------------------------------------------------------------------
    @property
    def supports_translation(self) -> bool:
        return self.multilingual and self.vocab.translate is not None

    @property
    def supports_language_detection(self) -> bool:
        return self.multilingual

    @property
    def fallback_temperatures(self) -> Sequence[float]:
        return FALLBACK_TEMPERATURES

    def engine_args(self) -> Mapping[str, Any]:
        return {"max_logprobs": MAX_LOGPROBS}

    def get_speech_to_text_config(self, task: Task) -> SpeechToTextConfig:
        return SpeechToTextConfig(
            sample_rate=self.sample_rate,
            max_audio_clip_s=self.chunk_length_s,
            overlap_chunk_second=5.0,
            min_energy_split_window_size=1600,
            allow_audio_chunking=True,
            # Silence and line noise decode into invented text and early timestamps (the first
            # timestamp must fall within a second of a window's start): read speech only.
            pack_speech=True,
        )

    # -- validation ---------------------------------------------------------------------------
    def validate_language(self, language: str | None) -> str | None:
        if language is None or not language.strip():
            return None if self.multilingual else "en"
        code = normalise_language(language)
        if code is None or code not in self.supported_languages:
            if not self.multilingual:
                raise ModelInputError(
                    f"this model is English-only and cannot transcribe language {shown(language)}",
                    param="language",
                    code="unsupported_language",
                )
            raise ModelInputError(
                f"unsupported language {shown(language)}: use an ISO-639-1 code such as 'en', 'de' or 'fr'",
                param="language",
                code="unsupported_language",
            )
        return code

    def validate_options(self, options: DecodeOptions) -> None:
        if options.task == "translate" and not self.supports_translation:
            raise ModelInputError(
                "this model is English-only and cannot translate; "
                "serve a multilingual Whisper checkpoint for /v1/audio/translations",
                param="model",
                code="translation_not_supported",
            )
        if options.word_timestamps and self.aligner is None:
            raise ModelInputError(
                "this checkpoint names no alignment heads (generation_config.json `alignment_heads`), "
                "so it cannot time words; use timestamp_granularities[]=segment",
                param="timestamp_granularities",
                code="unsupported_granularity",
            )
        for candidate in options.candidate_languages:
            try:
                self.validate_language(candidate)
            except ModelInputError as error:
                raise ModelInputError(str(error), param="languages", code=error.code) from None

    # -- reading ------------------------------------------------------------------------------
    async def prepare(self, pieces: Sequence[Piece], options: DecodeOptions, calls: EngineCalls) -> DecodeOptions:
        """Detect the language when the client gave none (multilingual checkpoints)."""
        candidates = tuple(self.validate_language(c) or c for c in options.candidate_languages)
        options = replace(options, candidate_languages=candidates, prompt=_joined_prompt(options))
        if options.language is not None or not self.supports_language_detection:
            return options
        stt = self.get_speech_to_text_config(options.task)
        guess = await detect_language(self, pieces, options, stt, calls)
        # No speech to detect from: report the first candidate, or English as OpenAI does.
        fallback = candidates[0] if candidates else "en"
        return replace(options, language=guess.language if guess else fallback)

    async def read(self, piece: Piece, options: DecodeOptions, calls: EngineCalls, emit: Emit | None = None) -> Reading:
        stt = self.get_speech_to_text_config(options.task)
        window = Window(piece, 0, len(piece.samples))
        segments, input_tokens, output_tokens = await read_window(self, window, options, stt, calls)
        if options.word_timestamps:
            segments = await self.timed_words(piece, segments, options)
        if emit is not None:
            # A window's text is final only once its fallback and re-reads are done.
            logprobs = tuple(lp for s in segments for lp in s.logprobs) if options.want_logprobs else ()
            emit(TextDelta("".join(s.text for s in segments), logprobs))
        return Reading(segments=segments, input_tokens=input_tokens, output_tokens=output_tokens)

    def window_sharing(self, setup: SharingSetup) -> WindowSharing:
        # The encoder reads 30 s whatever the clip's length: short clips of several requests share it.
        return WindowSharing(self, setup, self.chunk_length_s)

    def logits_rule(self, stretches: Sequence[tuple[float, float]] = ()) -> tuple[str, dict[str, Any]]:
        if len(stretches) < 2:
            return LOGITS_RULE, self.rule_args
        return LOGITS_RULE, {**self.rule_args, "spans": timestamp_spans(stretches)}

    async def warm_up(self, calls: EngineCalls) -> None:
        stt = self.get_speech_to_text_config("transcribe")
        noise = quiet_noise(1.0, stt.sample_rate)
        request = self.get_generation_prompt(noise, stt, DecodeOptions(language=self.validate_language(None)), 0.0)
        await calls.generate(replace(request, max_tokens=WARM_UP_TOKENS), "warmup")

    async def timed_words(self, piece: Piece, segments: list[Segment], options: DecodeOptions) -> list[Segment]:
        """The piece's segments with their words timed, aligned as one window as the reference does."""
        text = [t for s in segments for t in s.tokens]
        if self.aligner is None or not text:
            return segments
        eot = self.vocab.eot
        prefix = [*self.decoder_prompt(options.language, options.task, None), self.vocab.no_timestamps]
        starts = await self.aligner.token_starts(piece.samples, prefix, text, eot)
        words, groups = split_words([*text, eot], self._decode_raw, eot, options.language)
        timed = time_words(words, groups, starts)
        snap_to_sound(timed, piece.samples, piece.sample_rate)
        return attach_words(segments, timed, piece.offset_s, piece.offset_s)

    def _decode_raw(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=False)

    # -- prompts ------------------------------------------------------------------------------
    def _prompt_ids(self, prompt: str | None) -> list[int]:
        if not prompt or not prompt.strip():
            return []
        ids = self.tokenizer.encode(" " + prompt.strip(), add_special_tokens=False).ids
        return [self.vocab.sot_prev, *ids[-(self.sample_len - 1) :]]

    def decoder_prompt(self, language: str | None, task: Task, prompt: str | None) -> list[int]:
        ids = [*self._prompt_ids(prompt), self.vocab.sot]
        if self.multilingual:
            code = language or "en"
            task_id = self.vocab.translate if task == "translate" else self.vocab.transcribe
            assert task_id is not None
            ids += [self.vocab.languages[code], task_id]
        return ids

    @staticmethod
    def _enc_dec_prompt(audio: np.ndarray, sample_rate: int, decoder_ids: list[int]) -> dict[str, Any]:
        return {
            "encoder_prompt": {"prompt": "", "multi_modal_data": {"audio": (audio, sample_rate)}},
            "decoder_prompt": {"prompt_token_ids": decoder_ids},
        }

    def get_generation_prompt(
        self,
        audio: np.ndarray,
        stt_config: SpeechToTextConfig,
        options: DecodeOptions,
        temperature: float,
        stretches: Sequence[tuple[float, float]] = (),
    ) -> GenerationRequest:
        """`stretches` (seconds into `audio`): clips sharing the window; each segment stays in one (`rules.py`)."""
        prompt = options.prompt if temperature <= PROMPT_RESET_TEMPERATURE else None
        decoder_ids = self.decoder_prompt(options.language, options.task, prompt)
        timed = options.segment_times
        if timed:
            rule = self.logits_rule(stretches)
        else:
            # Text only (json, text), after <|notimestamps|> as OpenAI's `without_timestamps`:
            # timestamps are a fifth of what Whisper writes on dense speech, and every step of
            # the timestamp rule costs a softmax; the rule keeps only its suppression.
            decoder_ids = [*decoder_ids, self.vocab.no_timestamps]
            rule = (LOGITS_RULE, {**self.rule_args, "without_timestamps": True})
        # P(no speech) sits in the prompt row after <|startoftranscript|>; only an English-only
        # checkpoint reading with timestamps has that row as its first sampled step instead.
        from_prompt = self.multilingual or not timed
        return GenerationRequest(
            prompt=self._enc_dec_prompt(audio, stt_config.sample_rate, decoder_ids),
            max_tokens=min(self.sample_len, self.max_target_positions - len(decoder_ids)),
            temperature=temperature,
            sample_logprobs=True,
            prompt_logprobs=NO_SPEECH_TOP_K if from_prompt else None,
            logprob_token_ids=None if from_prompt else [self.vocab.no_speech],
            logits_rule=rule,
        )

    def get_language_detection_prompt(
        self, audio: np.ndarray, stt_config: SpeechToTextConfig, candidates: Sequence[str]
    ) -> GenerationRequest:
        ids = [self.vocab.languages[c] for c in (candidates or self.vocab.languages)]
        return GenerationRequest(
            prompt=self._enc_dec_prompt(audio, stt_config.sample_rate, [self.vocab.sot]),
            max_tokens=1,
            logprob_token_ids=[*ids, self.vocab.no_speech],
            allowed_token_ids=ids,
        )

    # -- outputs ------------------------------------------------------------------------------
    def parse_language_detection(self, result: GenerationResult, candidates: Sequence[str]) -> LanguageGuess:
        step = result.step_logprobs[0] if result.step_logprobs else {}
        codes = list(candidates or self.vocab.languages)
        scores = np.array([step.get(self.vocab.languages[c], -math.inf) for c in codes], dtype=np.float64)
        if not np.isfinite(scores).any():
            return LanguageGuess(language=codes[0], probability=0.0, no_speech_prob=0.0)
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        best = int(probs.argmax())
        no_speech = math.exp(step[self.vocab.no_speech]) if self.vocab.no_speech in step else 0.0
        return LanguageGuess(language=codes[best], probability=float(probs[best]), no_speech_prob=no_speech)

    def decode_text(self, token_ids: Sequence[int]) -> str:
        return decode_text(self.window_context, token_ids)

    def parse_window(
        self, result: GenerationResult, window_s: float, offset_s: float, temperature: float, final: bool = False
    ) -> WindowOutcome:
        """Split a timestamped window into segments: see `window.parse_window`."""
        return parse_window(self.window_context, result, window_s, offset_s, temperature, final)
