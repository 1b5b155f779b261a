"""Fixtures of the audio-LLM family tier: tiny random checkpoints, built once per session, and test audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.families.tiny import build_checkpoint
from tests.speech import SENTENCES, compose, require_tools, speak

FAMILIES = ("qwen2_audio", "audioflamingo3", "qwen3_asr")
SEED = 0


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-checkpoints")
    return {family: build_checkpoint(family, root / family, seed=SEED) for family in FAMILIES}


@pytest.fixture(scope="session")
def clip_3s() -> np.ndarray:
    require_tools()
    speech = speak(SENTENCES[0])
    return np.resize(speech, 3 * 16_000).astype(np.float32)


@pytest.fixture(scope="session")
def clip_30s() -> np.ndarray:
    require_tools()
    return np.resize(compose(SENTENCES[:8], pause_s=0.5), 30 * 16_000).astype(np.float32)
