"""Several models in one gateway, through the real app and its real start-up code, with fake engines.

Whisper base on the scripted engine ("Window of N seconds.") and a fake family ("piece 0 lasts ...")
answer differently, so every answer tells which model read it. A third model fails to start.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI, NotFoundError
from starlette.testclient import TestClient

from app.audio.vad import LoudnessVad
from app.main import create_app
from app.ops.metrics import Metrics
from app.scheduling.pipeline import Transcriber
from app.startup import StartupError, start_models
from app.state import Runtime, Served
from config import ModelSpec, Settings, load_settings
from models.source import ModelProvisionError
from models.whisper import WhisperModel
from tests.api.conftest import ScriptedEngine, wav_bytes
from tests.api.test_fake_family_api import FakeFamily, WordEngine

MODELS = [
    {"model": "whisper-base", "served_model_name": "base", "model_aliases": ["whisper-1"]},
    {"model": "fake", "served_model_name": "fake-1", "model_aliases": ["fake"], "gpu_memory_utilization": 0.2},
    {"model": "/secret/checkpoints/broken", "served_model_name": "broken"},
]
AUDIO = wav_bytes(3.0)


class Fleet:
    """Starts each model of the settings on its fake engine; `broken` fails as a missing checkpoint does."""

    def __init__(self, whisper: WhisperModel) -> None:
        self.whisper = whisper
        self.scripted = ScriptedEngine(whisper)
        self.words = WordEngine()
        self.specs: dict[str, ModelSpec] = {}

    async def start(self, settings: Settings, spec: ModelSpec, metrics: Metrics) -> Runtime:
        self.specs[spec.model] = spec
        if spec.model == "whisper-base":
            transcriber = Transcriber(self.whisper, self.scripted, vad=LoudnessVad())
            return Runtime(settings, self.whisper, self.scripted, transcriber, "base", alias_names=spec.model_aliases)
        if spec.model == "fake":
            family = FakeFamily()
            transcriber = Transcriber(family, self.words, vad=LoudnessVad())
            return Runtime(settings, family, self.words, transcriber, "fake-1", alias_names=spec.model_aliases)
        raise ModelProvisionError(f"model path {spec.model!r} is not a checkpoint directory")

    async def served(self, settings: Settings, metrics: Metrics) -> Served:
        return await start_models(settings, metrics, self.start)


def settings_for(models: list[dict[str, Any]], **overrides: Any) -> Settings:
    return load_settings({"SPEECH_GATEWAY_MODELS": json.dumps(models)}, **overrides)


@pytest.fixture
async def gateway(whisper_base: WhisperModel) -> AsyncIterator[tuple[AsyncOpenAI, httpx.AsyncClient, Fleet]]:
    fleet = Fleet(whisper_base)
    app = create_app(settings_for(MODELS), fleet.served)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = AsyncOpenAI(api_key="unused", base_url="http://test/v1", http_client=http, max_retries=0)
        yield client, http, fleet


async def test_models_lists_every_served_model_and_alias(gateway: tuple[AsyncOpenAI, httpx.AsyncClient, Fleet]) -> None:
    client, _, fleet = gateway
    assert [card.id async for card in client.models.list()] == ["base", "whisper-1", "fake-1", "fake"]
    assert (await client.models.retrieve("fake")).id == "fake"
    # Each model got its own engine settings.
    assert (
        fleet.specs["fake"].gpu_memory_utilization == 0.2 and fleet.specs["whisper-base"].gpu_memory_utilization is None
    )


async def test_the_request_model_picks_the_engine(gateway: tuple[AsyncOpenAI, httpx.AsyncClient, Fleet]) -> None:
    client, _, fleet = gateway
    for name in ("base", "whisper-1"):
        answer = await client.audio.transcriptions.create(model=name, file=("a.wav", AUDIO))
        assert answer.text == "Window of 3 seconds."
    whisper_requests = len(fleet.scripted.requests)
    for name in ("fake-1", "fake"):
        answer = await client.audio.transcriptions.create(model=name, file=("a.wav", AUDIO))
        assert answer.text == "piece 0 lasts 2 seconds piece 1 lasts 1 seconds"
    assert len(fleet.scripted.requests) == whisper_requests  # the fake family's requests went to its engine only
    assert len(fleet.words.ids) == 4


@pytest.mark.parametrize("name", ["nope", "broken", "BASE"])
async def test_a_model_not_served_is_openai_404(
    gateway: tuple[AsyncOpenAI, httpx.AsyncClient, Fleet], name: str
) -> None:
    client, _, _ = gateway
    with pytest.raises(NotFoundError) as caught:
        await client.audio.transcriptions.create(model=name, file=("a.wav", AUDIO))
    error = caught.value.body
    assert isinstance(error, dict) and (error["code"], error["param"]) == ("model_not_found", "model")
    with pytest.raises(NotFoundError):
        await client.models.retrieve(name)


async def test_ready_tells_each_model_and_why_one_failed(gateway: tuple[AsyncOpenAI, httpx.AsyncClient, Fleet]) -> None:
    _, http, fleet = gateway
    response = await http.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["model"] == "base"
    failed = body["models"][2]
    assert body["models"][:2] == [{"id": "base", "status": "ready"}, {"id": "fake-1", "status": "ready"}]
    assert (failed["id"], failed["status"]) == ("broken", "failed")
    assert "could not be found" in failed["reason"] and "/secret" not in response.text
    # A started engine that dies makes the gateway unready, and /ready says which.
    fleet.scripted.healthy = False
    response = await http.get("/ready")
    assert response.status_code == 503 and response.json()["models"][0] == {"id": "base", "status": "unavailable"}


async def test_all_or_nothing_refuses_to_start_saying_why(whisper_base: WhisperModel) -> None:
    fleet = Fleet(whisper_base)
    app = create_app(settings_for(MODELS, require_all_models=True), fleet.served)
    with pytest.raises(StartupError, match="require_all_models") as caught:
        async with app.router.lifespan_context(app):
            pass
    assert "broken: its weights could not be found" in str(caught.value)
    assert not fleet.scripted.healthy  # the engines that had started are shut down


async def test_nothing_to_serve_refuses_to_start(whisper_base: WhisperModel) -> None:
    app = create_app(settings_for(MODELS[2:]), Fleet(whisper_base).served)
    with pytest.raises(StartupError, match="no model started"):
        async with app.router.lifespan_context(app):
            pass


def _pcm(seconds: float) -> str:
    t = np.arange(int(seconds * 24_000)) / 24_000
    return base64.b64encode((8000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()).decode()


def _transcript(ws: Any) -> str:
    ws.send_json({"type": "input_audio_buffer.append", "audio": _pcm(3.0)})
    ws.send_json({"type": "input_audio_buffer.commit"})
    while (event := ws.receive_json())["type"] != "conversation.item.input_audio_transcription.completed":
        assert event["type"] != "error", event
    return str(event["transcript"])


@pytest.fixture
def realtime(whisper_base: WhisperModel) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(MODELS), Fleet(whisper_base).served)) as client:
        yield client


def test_realtime_session_picks_its_model_and_names_the_param_of_an_unknown_one(realtime: TestClient) -> None:
    with realtime.websocket_connect("/v1/realtime?intent=transcription") as ws:
        assert ws.receive_json()["session"]["audio"]["input"]["transcription"]["model"] == "base"
        manual = {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}
        ws.send_json(manual)
        assert ws.receive_json()["type"] == "session.updated"
        assert _transcript(ws) == "Window of 3 seconds."
        pick = {"type": "session.update", "session": {"audio": {"input": {"transcription": {"model": "fake"}}}}}
        ws.send_json(pick)
        assert ws.receive_json()["type"] == "session.updated"
        assert _transcript(ws) == "piece 0 lasts 2 seconds piece 1 lasts 1 seconds"
        ws.send_json({"type": "transcription_session.update", "session": {"input_audio_transcription": {"model": "x"}}})
        error = ws.receive_json()["error"]
        assert (error["code"], error["param"]) == ("model_not_found", "session.input_audio_transcription.model")
    with realtime.websocket_connect("/v1/realtime?intent=transcription&model=fake-1") as ws:
        assert ws.receive_json()["session"]["audio"]["input"]["transcription"]["model"] == "fake-1"
