"""Where and in which precision a family runs its own PyTorch work, by the same rule as the engine."""

from __future__ import annotations

from typing import Any


def cpu_has_bf16() -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (AVX-512 BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_dtype(requested: str, checkpoint_dtype: str | None) -> Any:
    """`auto`: bfloat16 on a CPU that has it (else float32); on a GPU the checkpoint's own dtype."""
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if device() == "cpu":
        return torch.bfloat16 if cpu_has_bf16() else torch.float32
    return getattr(torch, checkpoint_dtype or "float16", torch.float16)
