"""Fixtures of the audio-LLM family tier: tiny random checkpoints, built once per session, and test audio."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pytest

from config import Settings, load_settings
from models.audio_chat import AudioChatFamily
from models.interface import DecodeOptions, GenerationRequest, GenerationResult, Piece, TranscriptionModel
from tests.families import inprocess
from tests.families.inprocess import InProcessServer
from tests.families.tiny import build_checkpoint
from tests.families.tiny_gemma3n import build_gemma3n
from tests.families.tiny_musicflamingo import FAMILY as MUSICFLAMINGO
from tests.families.tiny_musicflamingo import build_musicflamingo_checkpoint
from tests.families.tiny_voxtral import build_voxtral
from tests.speech import SENTENCES, compose, require_tools, speak

FAMILIES = ("qwen2_audio", "audioflamingo3", "qwen3_asr", "granite_speech")
SEED = 0

MAX_TOKENS = 40
# A tiny checkpoint's KV cache needs little: leave memory for the engines other tests hold.
TINY_KV_SHARE = 0.05


def engine_settings(**overrides: object) -> Settings:
    """Float32 as transformers runs the reference; eager, a tiny KV share, and vLLM's one-process executor
    (the model in the engine core's process: no worker process to spawn, about 10 s less a start)."""
    return load_settings(
        {},
        dtype="float32",
        enforce_eager=True,
        max_model_len=2048,
        gpu_memory_utilization=TINY_KV_SHARE,
        distributed_executor_backend="uni",
        **overrides,
    )


class Generates(Protocol):
    async def generate(self, request: GenerationRequest, request_id: str) -> GenerationResult: ...


async def run_ours(
    model: AudioChatFamily, engine: Generates, audio: np.ndarray, options: DecodeOptions, tag: str
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
def gemma3n_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gemma3n(tmp_path_factory.mktemp("tiny-gemma3n"), seed=SEED)


@pytest.fixture(scope="session")
def clip_3s() -> np.ndarray:
    require_tools()
    speech = speak(SENTENCES[0])
    return np.resize(speech, 3 * 16_000).astype(np.float32)


@pytest.fixture(scope="session")
def clip_30s() -> np.ndarray:
    require_tools()
    return np.resize(compose(SENTENCES[:8], pause_s=0.5), 30 * 16_000).astype(np.float32)


@dataclass(frozen=True)
class FamilyGateway:
    """One family served by the real app in this process; `generate` runs its engine directly."""

    family: str  # the served model name
    checkpoint: Path  # the directory the server loaded
    server: InProcessServer

    @property
    def model(self) -> TranscriptionModel:
        """The family module instance the server runs (its prompts are the ones served)."""
        return self.server.runtime.model

    async def generate(self, request: GenerationRequest, request_id: str) -> GenerationResult:
        return await self.server.generate(request, request_id)


def served_checkpoint(request: pytest.FixtureRequest, family: str) -> Path:
    if family == "voxtral":
        return Path(request.getfixturevalue("voxtral_checkpoint")) / "mistral"  # the layout vLLM loads
    if family == MUSICFLAMINGO:
        return Path(request.getfixturevalue("musicflamingo_checkpoint"))
    if family == "gemma3n":
        return Path(request.getfixturevalue("gemma3n_checkpoint"))
    return Path(request.getfixturevalue("checkpoints")[family])


@pytest.fixture(scope="session")
def family_gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FamilyGateway]:
    """The family's one engine start, shared by its parity tests (the engine) and its server tests (the socket).

    Tests name their family by indirect parametrization (`parametrize("family_gateway", [...], indirect=True)`);
    pytest groups a session-scoped parameter's tests and stops one family's server before it starts the next.
    Settings as the server subprocess had them: float32 as transformers runs the reference, eager, a tiny KV share.
    """
    family = request.param
    checkpoint = served_checkpoint(request, family)
    # gateway_threads=0: the server shares this process with transformers' reference, whose torch threads the
    # product's default (1, set process-wide once the engine started) would cut to one for the rest of the session.
    settings = engine_settings(model=str(checkpoint), served_model_name=family, gateway_threads=0)
    running = inprocess.start(settings, tmp_path_factory.mktemp(f"{family}-server"))
    try:
        yield FamilyGateway(family, checkpoint, running)
    finally:
        inprocess.stop(running)


# The node ids of each family's last test: its server stops right after it, not at the end of the session
# (where pytest would finalize the last family's), so no later test runs beside an idle engine.
LAST_OF_FAMILY: set[str] = set()


def pytest_collection_finish(session: pytest.Session) -> None:
    last: dict[str, str] = {}
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "family_gateway" in callspec.params:
            last[callspec.params["family_gateway"]] = item.nodeid
    LAST_OF_FAMILY.update(last.values())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    result = yield
    if item.nodeid in LAST_OF_FAMILY:
        for running in list(inprocess.RUNNING):
            inprocess.stop(running)  # the fixture's own finalizer then finds it stopped
    return result
