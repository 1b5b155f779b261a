"""Let vLLM build Gemma 3n where timm cannot be imported (the CPU engine has no torchvision).

vLLM's `Gemma3nForConditionalGeneration.__init__` builds the vision tower with
`AutoModel.from_config(config.vision_config)` even when no image may be sent: transformers maps
`Gemma3nVisionConfig` to `TimmWrapperModel`, which needs `timm`, and `import timm` imports
torchvision at its top (`timm/layers/create_norm.py`: `torchvision.ops.misc.FrozenBatchNorm2d`).
PyPI's torchvision builds fail beside the CPU torch, so the Makefile uninstalls them.

With `limit_mm_per_prompt={"image": 0}` (what the Gemma 3n family asks for) vLLM builds that
tower on the meta device, swaps it for a placeholder and skips its checkpoint weights: the tower
is never run and never loaded, only constructed. So where torchvision is absent, this plugin maps
`Gemma3nVisionConfig` to a stand-in without parameters, through transformers' own
`AutoModel.register`. Called, the stand-in says what is missing. Where torchvision is installed
(the GPU build) the plugin does nothing and timm builds the real tower.
"""

from __future__ import annotations

import importlib.util
from typing import Any

_registered = False


def _stand_in_class() -> type:
    # Imported here, not at module level: the plugin package stays light until vLLM calls it.
    from transformers import PreTrainedModel
    from transformers.models.gemma3n.configuration_gemma3n import Gemma3nVisionConfig

    class Gemma3nVisionStandIn(PreTrainedModel):
        """Gemma 3n's vision tower where timm is unavailable: no weights; images cannot be read."""

        config_class = Gemma3nVisionConfig
        base_model_prefix = "timm_model"
        main_input_name = "pixel_values"

        def __init__(self, config: Gemma3nVisionConfig) -> None:
            super().__init__(config)
            self.post_init()

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(
                "Gemma 3n's vision tower needs timm, which needs torchvision, which this engine build "
                "lacks; serve it for audio only (limit_mm_per_prompt image=0)"
            )

    return Gemma3nVisionStandIn


def register() -> None:
    """vLLM general plugin (called once per vLLM process; safe to call again)."""
    global _registered
    if _registered or importlib.util.find_spec("torchvision") is not None:
        return
    from transformers import AutoModel
    from transformers.models.gemma3n.configuration_gemma3n import Gemma3nVisionConfig

    AutoModel.register(Gemma3nVisionConfig, _stand_in_class(), exist_ok=True)
    _registered = True
