"""vLLM's Transformers backend (`model_impl="transformers"`) against vLLM's own AudioFlamingo 3 class.

The same tiny checkpoint, the same clips, greedy: the backend must give the native class's tokens.
The native class's engine is the one the family's server runs (`family_gateway`, tests/families/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.scheduling.engine import VllmEngine
from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions
from models.registry import load_model
from tests.families.conftest import FamilyGateway, engine_settings, run_ours

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("family_gateway", ["audioflamingo3"], indirect=True)]


async def greedy_tokens(checkpoint: Path, audio: list[np.ndarray], **settings: object) -> list[list[int]]:
    model = load_model(checkpoint)
    assert isinstance(model, AudioChatFamily)
    engine = VllmEngine.start(engine_settings(**settings), checkpoint, model.engine_args())
    try:
        return [
            (await run_ours(model, engine, clip, DecodeOptions(), f"tb-{i}")).token_ids for i, clip in enumerate(audio)
        ]
    finally:
        engine.shutdown()


async def test_transformers_backend_matches_the_native_class(
    family_gateway: FamilyGateway, clip_3s: np.ndarray, clip_30s: np.ndarray
) -> None:
    """AudioFlamingo 3 through vLLM's Transformers backend (`model_impl=transformers`) and its own class."""
    model = family_gateway.model
    assert isinstance(model, AudioChatFamily)
    # `auto` (the server's setting) runs vLLM's own class where vLLM has one, as it does here.
    log = family_gateway.server.log_path.read_text(errors="replace")
    assert "Resolved architecture: AudioFlamingo3ForConditionalGeneration" in log
    clips = [clip_3s, clip_30s]
    native = [
        (await run_ours(model, family_gateway, clip, DecodeOptions(), f"native-{i}")).token_ids
        for i, clip in enumerate(clips)
    ]
    backend = await greedy_tokens(family_gateway.checkpoint, clips, model_impl="transformers")
    assert backend == native
    assert all(len(tokens) > 0 for tokens in native)
