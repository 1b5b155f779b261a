"""The vLLM plugin that lets Qwen3-ASR's model module import without torchvision (CPU engine)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

ENTRY_POINT = "speech_gateway_torchvision_free"


def test_plugin_is_registered_with_vllm() -> None:
    plugins = {e.name: e.value for e in entry_points(group="vllm.general_plugins")}
    assert plugins.get(ENTRY_POINT) == "engine_plugins.torchvision_free:register"


HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


@pytest.mark.skipif(HAS_TORCHVISION, reason="the plugin does nothing where torchvision is installed")
def test_qwen3_asr_model_module_imports_after_vllm_loads_plugins() -> None:
    # A fresh interpreter, as vLLM's own processes are: load_general_plugins() runs the entry point.
    code = (
        "from vllm.plugins import load_general_plugins; load_general_plugins()\n"
        "import vllm.model_executor.models.qwen3_asr as m\n"
        "from transformers.models.qwen2_vl import image_processing_qwen2_vl as b\n"
        "assert b.smart_resize(224, 224) == (224, 224), b.smart_resize(224, 224)\n"
        "print(m.Qwen3ASRForConditionalGeneration.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("Qwen3ASRForConditionalGeneration")


def test_register_is_idempotent() -> None:
    from engine_plugins import torchvision_free

    before = list(sys.meta_path)
    torchvision_free.register()
    torchvision_free.register()
    added = [f for f in sys.meta_path if f not in before]
    assert len(added) <= 1
    for finder in added:  # leave this interpreter as it was
        sys.meta_path.remove(finder)
