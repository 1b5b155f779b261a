"""The realtime WebSocket through the real app with the scripted engine: auth, limits, a whole item."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.audio.vad import LoudnessVad
from app.main import create_app
from app.ops.metrics import Metrics
from app.scheduling.pipeline import Transcriber
from app.state import Runtime
from config import Settings, load_settings
from models.whisper import WhisperModel
from tests.api.conftest import ScriptedEngine

URL = "/v1/realtime?intent=transcription"


def serve(model: WhisperModel, engine: ScriptedEngine | None = None, **overrides: Any) -> TestClient:
    async def runtime(s: Settings, metrics: Metrics) -> Runtime:
        scripted = engine or ScriptedEngine(model)
        return Runtime(s, model, scripted, Transcriber(model, scripted, vad=LoudnessVad()), "whisper-base")

    return TestClient(create_app(load_settings({}, **overrides), runtime))


@pytest.fixture
def keyed(whisper_base: WhisperModel) -> Iterator[TestClient]:
    with serve(whisper_base, api_key="k1") as client:
        yield client


def pcm(seconds: float) -> str:
    t = np.arange(int(seconds * 24_000)) / 24_000
    return base64.b64encode((8000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()).decode()


def test_a_key_in_the_header_or_the_subprotocol_opens_a_session(keyed: TestClient) -> None:
    with keyed.websocket_connect(URL, headers={"Authorization": "Bearer k1"}) as ws:
        assert ws.receive_json()["type"] == "session.created"
    with keyed.websocket_connect(URL, subprotocols=["realtime", "openai-insecure-api-key.k1"]) as ws:
        assert ws.accepted_subprotocol == "realtime"
        assert ws.receive_json()["type"] == "session.created"


@pytest.mark.parametrize("protocols", [[], ["realtime", "openai-insecure-api-key.wrong"]])
def test_a_missing_or_wrong_key_is_told_and_closed(keyed: TestClient, protocols: list[str]) -> None:
    with keyed.websocket_connect(URL, subprotocols=protocols) as ws:
        event = ws.receive_json()
        assert event["type"] == "error" and event["error"]["code"] in ("missing_api_key", "invalid_api_key")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008


def test_an_unknown_model_in_the_url_is_refused(whisper_base: WhisperModel) -> None:
    with serve(whisper_base) as client, client.websocket_connect(URL + "&model=nope") as ws:
        assert ws.receive_json()["error"]["code"] == "model_not_found"


def test_sessions_past_the_limit_are_refused(whisper_base: WhisperModel) -> None:
    with serve(whisper_base, realtime_max_sessions=1) as client, client.websocket_connect(URL) as first:
        assert first.receive_json()["type"] == "session.created"
        with client.websocket_connect(URL) as second:
            assert second.receive_json()["error"]["code"] == "session_limit_reached"
        assert "speech_gateway_realtime_sessions 1.0" in client.get("/metrics").text


def test_a_committed_item_is_transcribed(whisper_base: WhisperModel) -> None:
    with serve(whisper_base) as client, client.websocket_connect(URL + "&model=whisper-1") as ws:
        assert ws.receive_json()["session"]["audio"]["input"]["transcription"]["model"] == "whisper-1"
        update = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {}}}}
        update["session"]["audio"]["input"] = {"turn_detection": None, "transcription": {"language": "xx"}}
        ws.send_text(json.dumps(update))
        assert ws.receive_json()["error"]["param"] == "session.audio.input.transcription.language"
        update["session"]["audio"]["input"]["transcription"] = {"model": "whisper-base", "language": "en"}
        ws.send_text(json.dumps(update))
        assert ws.receive_json()["type"] == "session.updated"
        ws.send_text("not json")
        assert ws.receive_json()["error"]["code"] == "invalid_json"
        ws.send_text(json.dumps({"type": "input_audio_buffer.append", "audio": pcm(2.0)}))
        ws.send_text(json.dumps({"type": "input_audio_buffer.commit"}))
        committed = ws.receive_json()
        assert committed["type"] == "input_audio_buffer.committed"
        events = [ws.receive_json()]
        while events[-1]["type"] != "conversation.item.input_audio_transcription.completed":
            events.append(ws.receive_json())
        done = events[-1]
        assert done["item_id"] == committed["item_id"] and "Window of 2 seconds" in done["transcript"]
        assert done["usage"] == {"type": "duration", "seconds": 2}


def test_idle_sessions_are_closed(whisper_base: WhisperModel) -> None:
    with serve(whisper_base, realtime_idle_timeout_s=0.2) as client, client.websocket_connect(URL) as ws:
        ws.receive_json()
        assert ws.receive_json()["error"]["code"] == "idle_timeout"


def test_a_failed_item_is_told_without_internals_and_the_session_goes_on(whisper_base: WhisperModel) -> None:
    engine = ScriptedEngine(whisper_base)
    working = engine.generate

    async def broken(request: Any, request_id: str) -> Any:
        raise RuntimeError("/secret/path exploded")

    engine.generate = broken  # type: ignore[method-assign]
    with serve(whisper_base, engine) as client, client.websocket_connect(URL) as ws:
        ws.receive_json()
        update = {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}
        ws.send_text(json.dumps(update))
        ws.receive_json()
        outcomes = []
        for _ in range(2):
            ws.send_text(json.dumps({"type": "input_audio_buffer.append", "audio": pcm(1.0)}))
            ws.send_text(json.dumps({"type": "input_audio_buffer.commit"}))
            assert ws.receive_json()["type"] == "input_audio_buffer.committed"
            event = ws.receive_json()
            while not event["type"].endswith((".failed", ".completed")):
                event = ws.receive_json()
            outcomes.append(event)
            engine.generate = working  # type: ignore[method-assign]
    failed, completed = outcomes
    assert failed["type"] == "conversation.item.input_audio_transcription.failed"
    assert failed["error"]["code"] == "internal_error" and "secret" not in json.dumps(failed)
    assert "Window of 1 seconds" in completed["transcript"]
