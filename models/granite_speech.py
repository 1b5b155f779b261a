"""Granite Speech (`GraniteSpeechForConditionalGeneration`): transcription and translation by instruction.

The chat is the one vLLM's own transcription endpoint builds for this model
(`get_generation_prompt`): one user turn, the audio placeholder followed by the request,
"can you transcribe the speech into a written format?" or "translate the speech to
English", rendered by the checkpoint's chat template (which adds its own system turn). The
client's context (`prompt`, `keywords[]`) follows the request on lines of its own. The
model hears no language hint: vLLM leaves it out of the prompt, and so do we; a hint outside
the five languages the 3.3 models read (English, French, German, Spanish, Portuguese) is a 400.

The published checkpoints (`has_lora_adapter: true`) carry a LoRA adapter beside the weights
that is meant for turns holding audio, as transformers applies it in `generate`: the family
enables LoRA in the engine and attaches that adapter to each of its requests (all hold audio).

The audio becomes 10 tokens per second (windows of 15 encoder frames, 3 queries each) and the
encoder reads any length, but vLLM's endpoint cuts at 30 s (its default `SpeechToTextConfig`),
the length the model was trained on; the gateway does the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Self

from models.audio_chat import AudioChatFamily
from models.checkpoint import read_json
from models.interface import DecodeOptions, GenerationRequest, Piece

TRANSCRIBE = "can you transcribe the speech into a written format?"
TRANSLATE = "translate the speech to {language}"
# The speech the published checkpoints are trained to read (revision 3.3.2).
GRANITE_SPEECH_LANGUAGES = {"en": "english", "fr": "french", "de": "german", "es": "spanish", "pt": "portuguese"}
# The LoRA ranks vLLM's engine accepts (`max_lora_rank`); an adapter's rank is rounded up to one.
ENGINE_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def audio_adapter(model_dir: Path) -> tuple[str, int] | None:
    """The checkpoint's LoRA adapter for audio turns, as (directory, engine rank); None where it has none."""
    # GraniteSpeechConfig's default is True: a config without the key expects an adapter too.
    if not read_json(model_dir / "config.json").get("has_lora_adapter", True):
        return None
    adapter = read_json(model_dir / "adapter_config.json")
    if not adapter:
        raise ValueError(
            f"{model_dir.name} says has_lora_adapter but holds no adapter_config.json; "
            "use the full checkpoint (with its adapter) or set has_lora_adapter to false in config.json"
        )
    rank = int(adapter.get("r", 0))
    fitting = [r for r in ENGINE_LORA_RANKS if r >= rank]
    if not fitting:
        raise ValueError(f"{model_dir.name}'s adapter has rank {rank}; engine limit {ENGINE_LORA_RANKS[-1]}")
    return str(model_dir), fitting[0]


class GraniteSpeechModel(AudioChatFamily):
    audio_token: ClassVar[str] = "<|audio|>"
    max_clip_s: ClassVar[float] = 30.0
    languages: ClassVar[dict[str, str]] = GRANITE_SPEECH_LANGUAGES
    # (adapter directory, engine rank) where the checkpoint's audio turns need its LoRA adapter.
    adapter: tuple[str, int] | None = None

    @classmethod
    def from_pretrained(cls, model_dir: Path, dtype: str = "auto") -> Self:
        model = super().from_pretrained(model_dir, dtype)
        model.adapter = audio_adapter(model_dir)
        return model

    def engine_args(self) -> Mapping[str, Any]:
        args = dict(super().engine_args())
        if self.adapter is not None:
            args |= {"enable_lora": True, "max_lora_rank": self.adapter[1]}
        return args

    def generation_request(self, piece: Piece, options: DecodeOptions) -> GenerationRequest:
        request = super().generation_request(piece, options)
        # Every request holds audio: each gets the adapter (vLLM's `default_mm_loras` acts only in its own server).
        return replace(request, adapter=self.adapter[0]) if self.adapter else request

    def conversation(self, options: DecodeOptions) -> list[dict[str, Any]]:
        # Plain string content, as vLLM passes it: the template places the text verbatim.
        return [{"role": "user", "content": self.audio_token + self.instruction(options)}]

    def request(self, options: DecodeOptions) -> str:
        # OpenAI's translations endpoint always translates into English.
        return TRANSLATE.format(language="English") if options.task == "translate" else TRANSCRIBE
