"""The vLLM plugin that registers this package's out-of-tree model classes (MusicFlamingo), checked without vLLM."""

from __future__ import annotations

import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

from engine_plugins.model_classes import MODEL_CLASSES


def test_plugin_is_registered_with_vllm() -> None:
    plugins = {e.name: e.value for e in entry_points(group="vllm.general_plugins")}
    assert plugins.get("speech_gateway_model_classes") == "engine_plugins.model_classes:register"


def test_each_target_names_a_class_of_that_architecture() -> None:
    # vLLM imports the target lazily, by name: a typo would surface only when a checkpoint asks for it.
    for architecture, target in MODEL_CLASSES.items():
        module, name = target.split(":")
        assert name == architecture
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None, module
        assert f"\nclass {name}(" in Path(spec.origin).read_text(encoding="utf-8")
