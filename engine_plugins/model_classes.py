"""Registers the out-of-tree vLLM model classes of this package with vLLM's model registry.

By name only: vLLM imports a class the first time a checkpoint asks for its architecture, so this
plugin stays cheap in every vLLM process and never imports torch model code itself.
"""

from __future__ import annotations

# Architecture (as in a checkpoint's config.json) -> "module:class" that vLLM imports on demand.
MODEL_CLASSES = {
    # vLLM 0.32 no longer has it ("supported until v0.24"); see engine_plugins/musicflamingo.py.
    "MusicFlamingoForConditionalGeneration": "engine_plugins.musicflamingo:MusicFlamingoForConditionalGeneration",
}


def register() -> None:
    """vLLM general plugin (called once per vLLM process; registering again is harmless)."""
    from vllm import ModelRegistry

    for architecture, target in MODEL_CLASSES.items():
        ModelRegistry.register_model(architecture, target)
