"""Fixtures of the audio-LLM family tier: tiny random checkpoints, built once per session, and test audio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.scheduling.engine import VllmEngine
from config import Settings, load_settings
from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions, GenerationResult, Piece
from tests.families.tiny import build_checkpoint
from tests.families.tiny_musicflamingo import build_musicflamingo_checkpoint
from tests.families.tiny_voxtral import build_voxtral
from tests.speech import SENTENCES, compose, require_tools, speak

FAMILIES = ("qwen2_audio", "audioflamingo3", "qwen3_asr", "granite_speech")
SEED = 0

MAX_TOKENS = 40
# A tiny checkpoint's KV cache needs little: leave memory for the engines other tests hold.
TINY_KV_SHARE = 0.05


def engine_settings(**overrides: object) -> Settings:
    return load_settings(
        {}, dtype="float32", enforce_eager=True, max_model_len=2048, gpu_memory_utilization=TINY_KV_SHARE, **overrides
    )


async def run_ours(
    model: AudioChatFamily, engine: VllmEngine, audio: np.ndarray, options: DecodeOptions, tag: str
) -> GenerationResult:
    piece = Piece(0, audio, 16_000, 0.0, True)
    request = replace(model.generation_request(piece, options), max_tokens=MAX_TOKENS)
    return await engine.generate(request, tag)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-checkpoints")
    return {family: build_checkpoint(family, root / family, seed=SEED) for family in FAMILIES}


@pytest.fixture(scope="session")
def voxtral_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Voxtral: `hf/` for transformers, `mistral/` (what vLLM loads) for the gateway."""
    return build_voxtral(tmp_path_factory.mktemp("tiny-voxtral"), seed=SEED)


@pytest.fixture(scope="session")
def musicflamingo_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_musicflamingo_checkpoint(tmp_path_factory.mktemp("tiny-musicflamingo"), seed=SEED)


@pytest.fixture(scope="session")
def clip_3s() -> np.ndarray:
    require_tools()
    speech = speak(SENTENCES[0])
    return np.resize(speech, 3 * 16_000).astype(np.float32)


@pytest.fixture(scope="session")
def clip_30s() -> np.ndarray:
    require_tools()
    return np.resize(compose(SENTENCES[:8], pause_s=0.5), 30 * 16_000).astype(np.float32)
