"""Hugging Face architecture name -> the model class that serves it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from models.interface import TranscriptionModel

# `config.architectures[0]` -> "module:Class". Adding a model is one file and one line here.
ARCHITECTURES: dict[str, str] = {
    "WhisperForConditionalGeneration": "models.whisper:WhisperModel",
}


class UnsupportedModelError(ValueError):
    """The checkpoint's architecture has no entry in the registry."""


def architecture_of(model_dir: Path) -> str:
    config_path = model_dir / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnsupportedModelError(f"{model_dir} has no config.json; is it a Hugging Face checkpoint?") from None
    architectures = config.get("architectures") or []
    if not architectures:
        raise UnsupportedModelError(f"{config_path} names no architecture")
    return str(architectures[0])


def load_model(model_dir: Path) -> TranscriptionModel:
    """The registry's model object for the checkpoint in `model_dir`."""
    architecture = architecture_of(model_dir)
    target = ARCHITECTURES.get(architecture)
    if target is None:
        raise UnsupportedModelError(
            f"architecture {architecture!r} of {model_dir} is not supported; "
            f"supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    model: TranscriptionModel = cls.from_pretrained(model_dir)
    return model
