"""Granite Speech checkpoints that carry a LoRA adapter for audio turns, as the published ones do.

transformers turns the adapter on for `generate` with audio; the family enables LoRA in the engine and
attaches the adapter to each request (vLLM's `default_mm_loras` would not do: only vLLM's own server
reads it). Proof on a tiny checkpoint with a random adapter: the engine's greedy tokens equal transformers'
on the same weights with the adapter merged in, and differ from the base weights' (so the adapter was
applied, and matters).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.scheduling.engine import VllmEngine
from models.granite_speech import GraniteSpeechModel
from models.interface import DecodeOptions
from models.registry import load_model
from tests.families.conftest import MAX_TOKENS, engine_settings, run_ours
from tests.families.reference import hf_greedy, hf_prompt_ids
from tests.families.test_parity import assert_greedy_close
from tests.families.tiny_granite import LORA_RANK, build_granite_lora_checkpoints

pytestmark = pytest.mark.e2e
FAMILY = "granite_speech"


@pytest.fixture(scope="module")
def lora_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_granite_lora_checkpoints(tmp_path_factory.mktemp("granite-lora"))


@pytest.fixture(scope="module")
def lora_engine(lora_checkpoints: tuple[Path, Path]) -> Iterator[tuple[GraniteSpeechModel, VllmEngine]]:
    served, _ = lora_checkpoints
    model = load_model(served)
    assert isinstance(model, GraniteSpeechModel)
    engine = VllmEngine.start(engine_settings(), served, model.engine_args())
    try:
        yield model, engine
    finally:
        engine.shutdown()


def test_engine_is_told_to_enable_lora_only_where_there_is_an_adapter(lora_checkpoints: tuple[Path, Path]) -> None:
    served, merged = lora_checkpoints
    args = load_model(served).engine_args()
    assert args["enable_lora"] is True and args["max_lora_rank"] == LORA_RANK
    assert "enable_lora" not in load_model(merged).engine_args()


async def test_greedy_tokens_equal_transformers_with_the_adapter_merged(
    lora_engine: tuple[GraniteSpeechModel, VllmEngine], lora_checkpoints: tuple[Path, Path], clip_3s: np.ndarray
) -> None:
    model, engine = lora_engine
    served, merged = lora_checkpoints
    for options in (DecodeOptions(), DecodeOptions(task="translate")):
        instruction = model.instruction(options)
        ours = await run_ours(model, engine, clip_3s, options, f"lora-{options.task}")
        assert ours.prompt_token_ids == hf_prompt_ids(merged, FAMILY, clip_3s, instruction)
        with_adapter = hf_greedy(merged, FAMILY, clip_3s, instruction, max_new_tokens=MAX_TOKENS)
        assert_greedy_close(ours.token_ids, with_adapter.token_ids, with_adapter.top_logprobs)
        without = hf_greedy(served, FAMILY, clip_3s, instruction, max_new_tokens=MAX_TOKENS)
        assert without.token_ids != with_adapter.token_ids
