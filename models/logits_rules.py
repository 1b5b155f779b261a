"""Per-request logits rules by name, so a request can carry its rule as plain data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from models.whisper_rules import WhisperLogitsRule, WhisperRuleArgs

LogitsRule = Callable[[Sequence[int], torch.Tensor], torch.Tensor]

_FACTORIES: dict[str, Callable[[Mapping[str, Any]], LogitsRule]] = {
    "whisper": lambda args: WhisperLogitsRule(WhisperRuleArgs.from_mapping(args)),
}


def build_rule(name: str, args: Mapping[str, Any]) -> LogitsRule:
    """The rule called `name`, configured by `args`; KeyError names an unknown rule."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown logits rule {name!r}; known: {sorted(_FACTORIES)}") from None
    return factory(args)
