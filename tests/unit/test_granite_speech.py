"""Granite Speech without an engine: the feature plugin as vLLM loads it, and the adapter the family declares."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from models.granite_speech import audio_adapter

ENTRY_POINT = "speech_gateway_granite_features"
HAS_TORCHAUDIO = importlib.util.find_spec("torchaudio") is not None


def test_plugin_is_registered_with_vllm() -> None:
    plugins = {e.name: e.value for e in entry_points(group="vllm.general_plugins")}
    assert plugins.get(ENTRY_POINT) == "engine_plugins.granite_features:register"


@pytest.mark.skipif(HAS_TORCHAUDIO, reason="the plugin does nothing where torchaudio is installed")
def test_extractor_runs_after_vllm_loads_plugins() -> None:
    # A fresh interpreter, as vLLM's own processes are: load_general_plugins() runs the entry point.
    code = (
        "import numpy as np\n"
        "from vllm.plugins import load_general_plugins; load_general_plugins()\n"
        "from transformers import GraniteSpeechFeatureExtractor\n"
        "out = GraniteSpeechFeatureExtractor()(np.zeros(16000, dtype=np.float32))\n"
        "print(tuple(out['input_features'].shape), out['audio_embed_sizes'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # 1 s: 101 mel frames, stacked in pairs -> 50 frames of 160; 4 windows of 15 -> 12 audio tokens.
    assert done.stdout.strip().endswith("(1, 50, 160) [12]")


def _checkpoint(tmp_path: Path, config: dict[str, object], adapter: dict[str, object] | None) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if adapter is not None:
        (tmp_path / "adapter_config.json").write_text(json.dumps(adapter), encoding="utf-8")
    return tmp_path


def test_adapter_only_where_the_checkpoint_says_so(tmp_path: Path) -> None:
    assert audio_adapter(_checkpoint(tmp_path, {"has_lora_adapter": False}, {"r": 64})) is None
    assert audio_adapter(_checkpoint(tmp_path, {"has_lora_adapter": True}, {"r": 64})) == (str(tmp_path), 64)


def test_adapter_rank_rounds_up_to_one_the_engine_takes(tmp_path: Path) -> None:
    assert audio_adapter(_checkpoint(tmp_path, {}, {"r": 12})) == (str(tmp_path), 16)
    with pytest.raises(ValueError, match="rank 1000"):
        audio_adapter(_checkpoint(tmp_path, {}, {"r": 1000}))


def test_a_missing_adapter_is_a_clear_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"has_lora_adapter but holds no adapter_config\.json"):
        audio_adapter(_checkpoint(tmp_path, {"has_lora_adapter": True}, None))
