"""The vLLM plugin that lets vLLM build Gemma 3n's (unused) vision tower without timm (CPU engine)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

ENTRY_POINT = "speech_gateway_gemma3n_vision"
HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def test_plugin_is_registered_with_vllm() -> None:
    plugins = {e.name: e.value for e in entry_points(group="vllm.general_plugins")}
    assert plugins.get(ENTRY_POINT) == "engine_plugins.gemma3n_vision:register"


@pytest.mark.skipif(HAS_TORCHVISION, reason="the plugin does nothing where torchvision is installed")
def test_vision_tower_builds_after_vllm_loads_plugins_and_not_before() -> None:
    # A fresh interpreter, as vLLM's own processes are; the tower is built on the meta device as vLLM does
    # when images are off.
    code = (
        "import torch\n"
        "from transformers import AutoModel\n"
        "from transformers.models.gemma3n.configuration_gemma3n import Gemma3nVisionConfig\n"
        "config = Gemma3nVisionConfig(label_names=['LABEL_0', 'LABEL_1'])\n"
        "try:\n"
        "    with torch.device('meta'):\n"
        "        AutoModel.from_config(config)\n"
        "except ImportError as e:\n"
        "    assert 'timm' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('built without the plugin: is timm importable here?')\n"
        "from vllm.plugins import load_general_plugins; load_general_plugins()\n"
        "with torch.device('meta'):\n"
        "    tower = AutoModel.from_config(config)\n"
        "assert sum(p.numel() for p in tower.parameters()) == 0\n"
        "try:\n"
        "    tower(pixel_values=torch.zeros(1, 3, 8, 8))\n"
        "except RuntimeError as e:\n"
        "    assert 'image=0' in str(e), e\n"
        "print(type(tower).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("Gemma3nVisionStandIn")
