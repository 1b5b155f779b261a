"""Voxtral (`VoxtralForConditionalGeneration`): Mistral's speech model, prompted by `mistral_common`.

Voxtral has no chat template: its prompt is what `mistral_common`'s `encode_transcription` makes of
the audio and the language hint, `<s>[INST][BEGIN_AUDIO][AUDIO]xN[/INST][lang:xx][TRANSCRIBE]`, as
token ids, with the audio padded to a multiple of 30 s (N = 375 per 30 s). That is the prompt vLLM's
own transcription endpoint and transformers' `apply_transcription_request` build. vLLM serves it
only from Mistral's own layout (`params.json`, `consolidated.safetensors`, `tekken.json`), so the
family asks the engine for Mistral's tokenizer, config and weight formats.

The transcription request has no place for context: `prompt` and `keywords[]` are accepted and
unused (as vLLM's server does), and the model transcribes only.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Self

import soundfile as sf

from models.audio_chat import MAX_NEW_TOKENS, AudioChatFamily
from models.interface import DecodeOptions, GenerationRequest, Piece, SpeechToTextConfig, Task

# The languages Mistral names for Voxtral (vLLM's list for it).
VOXTRAL_LANGUAGES = {
    "ar": "arabic", "nl": "dutch", "en": "english", "fr": "french", "de": "german",
    "hi": "hindi", "it": "italian", "pt": "portuguese", "es": "spanish",
}  # fmt: skip
TOKENIZER_FILE = "tekken.json"


class VoxtralModel(AudioChatFamily):
    audio_token: ClassVar[str] = "[AUDIO]"
    languages: ClassVar[Mapping[str, str]] = VOXTRAL_LANGUAGES
    translates: ClassVar[bool] = False

    def __init__(self, tokenizer: Any) -> None:
        # No chat template and no HF tokenizer: everything goes through `mistral_common`.
        self.tokenizer = tokenizer
        audio = tokenizer.instruct_tokenizer.audio_encoder
        self.sample_rate = int(audio.audio_config.sampling_rate)
        # Audio is padded to whole chunks of this length; a longer piece would be read in several.
        self.chunk_s = float(audio.audio_config.chunk_length_s or 30.0)
        self.audio_token_id = int(audio.special_ids.audio)
        self.repetition_penalty = 1.0
        self.supported_languages: Mapping[str, str] = dict(self.languages)

    @classmethod
    def from_pretrained(cls, model_dir: Path, dtype: str = "auto") -> Self:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

        path = model_dir / TOKENIZER_FILE
        missing = [name for name in (TOKENIZER_FILE, "params.json") if not (model_dir / name).is_file()]
        if missing:
            # vLLM loads Voxtral only from Mistral's layout, which the published repositories carry
            # beside the Hugging Face files.
            raise ValueError(
                f"{model_dir.name} lacks {', '.join(missing)}: Voxtral is served from Mistral's own layout "
                "(params.json, consolidated.safetensors, tekken.json)"
            )
        return cls(MistralTokenizer.from_file(str(path)))

    def engine_args(self) -> Mapping[str, Any]:
        return {
            "limit_mm_per_prompt": {"audio": 1},
            "tokenizer_mode": "mistral",
            "config_format": "mistral",
            "load_format": "mistral",
        }

    def get_speech_to_text_config(self, task: Task) -> SpeechToTextConfig:
        return replace(super().get_speech_to_text_config(task), max_audio_clip_s=self.chunk_s)

    def prompt_ids(self, piece: Piece, options: DecodeOptions) -> tuple[list[int], list[Any]]:
        """`encode_transcription`'s ids and the audio it padded, for one piece."""
        from mistral_common.protocol.transcription.request import TranscriptionRequest

        # The request carries a sound file, as an upload would (16-bit WAV, as vLLM and transformers send it).
        wav = io.BytesIO()
        sf.write(wav, piece.samples, piece.sample_rate, format="WAV")
        request = TranscriptionRequest.model_validate({"audio": wav.getvalue(), "language": options.language})
        tokenized = self.tokenizer.encode_transcription(request)
        return list(tokenized.tokens), [audio.audio_array for audio in tokenized.audios]

    def generation_request(self, piece: Piece, options: DecodeOptions) -> GenerationRequest:
        ids, audios = self.prompt_ids(piece, options)
        return GenerationRequest(
            prompt={
                "prompt_token_ids": ids,
                "multi_modal_data": {"audio": [(audio, self.sample_rate) for audio in audios]},
            },
            max_tokens=MAX_NEW_TOKENS,
            temperature=options.temperature,
            sample_logprobs=options.want_logprobs,
        )

    def decode(self, token_ids: Sequence[int]) -> str:
        # Special tokens are dropped (the default policy), as transformers' processor decodes.
        return str(self.tokenizer.decode(list(token_ids)))

    def prompt_text(self, options: DecodeOptions) -> str:
        raise NotImplementedError("Voxtral's prompt is token ids: see prompt_ids")
