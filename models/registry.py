"""Hugging Face architecture name -> the family class that serves it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.audioflamingo3 import AudioFlamingo3Model
from models.gemma3n import Gemma3nModel
from models.granite_speech import GraniteSpeechModel
from models.interface import TranscriptionModel
from models.musicflamingo import MusicFlamingoModel
from models.qwen2_audio import Qwen2AudioModel
from models.qwen3_asr import Qwen3ASRModel
from models.voxtral import VoxtralModel
from models.whisper import WhisperModel

# `config.architectures[0]` -> family. Adding a family is one module and one line here; mypy
# checks each class against the `TranscriptionModel` protocol through this annotation.
ARCHITECTURES: dict[str, type[TranscriptionModel]] = {
    "WhisperForConditionalGeneration": WhisperModel,
    "Qwen2AudioForConditionalGeneration": Qwen2AudioModel,
    "AudioFlamingo3ForConditionalGeneration": AudioFlamingo3Model,
    "Qwen3ASRForConditionalGeneration": Qwen3ASRModel,
    "VoxtralForConditionalGeneration": VoxtralModel,
    "MusicFlamingoForConditionalGeneration": MusicFlamingoModel,
    "GraniteSpeechForConditionalGeneration": GraniteSpeechModel,
    "Gemma3nForConditionalGeneration": Gemma3nModel,
}


class UnsupportedModelError(ValueError):
    """The checkpoint's architecture has no entry in the registry."""


def _mistral_architecture(params: dict[str, Any]) -> str:
    """The architecture vLLM reads from a Mistral-format `params.json`, as its config adapter names it."""
    whisper = (params.get("multimodal") or {}).get("whisper_model_args") or {}
    if not whisper:
        return "MistralForCausalLM"
    causal = (whisper.get("encoder_args") or {}).get("causal")
    return "VoxtralRealtimeGeneration" if causal else "VoxtralForConditionalGeneration"


def architecture_of(model_dir: Path) -> str:
    config_path = model_dir / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        params_path = model_dir / "params.json"
        if params_path.is_file():
            # Mistral's own layout (params.json, consolidated.safetensors) has no config.json.
            return _mistral_architecture(json.loads(params_path.read_text(encoding="utf-8")))
        raise UnsupportedModelError(f"{model_dir} has no config.json; is it a Hugging Face checkpoint?") from None
    architectures = config.get("architectures") or []
    if not architectures:
        raise UnsupportedModelError(f"{config_path} names no architecture")
    return str(architectures[0])


def family_of(model_dir: Path) -> type[TranscriptionModel]:
    architecture = architecture_of(model_dir)
    family = ARCHITECTURES.get(architecture)
    if family is None:
        raise UnsupportedModelError(
            f"architecture {architecture!r} of {model_dir} is not supported; "
            f"supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    return family


def load_model(model_dir: Path, dtype: str = "auto") -> TranscriptionModel:
    """The registry's model object for the checkpoint in `model_dir`."""
    return family_of(model_dir).from_pretrained(model_dir, dtype)
