"""Auth, back-pressure, timeouts, request ids and metrics, through the real app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from app.audio.vad import LoudnessVad
from app.main import create_app
from app.ops.metrics import Metrics
from app.scheduling.pipeline import Transcriber
from app.state import Runtime
from config import Settings, load_settings
from models.whisper import WhisperModel
from tests.api.conftest import ScriptedEngine, wav_bytes

Served = tuple[AsyncOpenAI, ScriptedEngine, httpx.AsyncClient]
Serve = Callable[..., AsyncIterator[Served]]


def transcribe(http: httpx.AsyncClient, seconds: float = 1.0, **headers: str) -> object:
    return http.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", wav_bytes(seconds))},
        data={"model": "whisper-1", "language": "en"},
        headers=headers,
    )


async def test_api_keys_guard_v1_but_not_probes(serve: Serve) -> None:
    async for client, _, http in serve(api_key="k1,k2"):
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
        missing = await http.get("/v1/models")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
        wrong = await http.get("/v1/models", headers={"Authorization": "Bearer k3"})
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        refused = await transcribe(http, Authorization="Bearer nope")  # type: ignore[misc]
        assert refused.status_code == 401
        for key in ("k1", "k2"):
            ok = await transcribe(http, Authorization=f"Bearer {key}")  # type: ignore[misc]
            assert ok.status_code == 200
        authed = AsyncOpenAI(api_key="k2", base_url="http://test/v1", http_client=http)
        assert (await authed.models.list()).data
        for probe in ("/health", "/ready", "/metrics"):
            assert (await http.get(probe)).status_code == 200


async def test_past_capacity_is_429_with_retry_after(serve: Serve) -> None:
    async for _, engine, http in serve(max_concurrent_requests=1, max_queued_requests=1):
        engine.delay = 0.3
        responses = await asyncio.gather(*(transcribe(http) for _ in range(4)))  # type: ignore[misc]
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 200, 429, 429]
        refused = next(r for r in responses if r.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        # Capacity comes back once they finish.
        assert (await transcribe(http)).status_code == 200  # type: ignore[attr-defined]


async def test_slow_requests_time_out_with_504_and_leave_nothing_running(serve: Serve) -> None:
    async for _, engine, http in serve(request_timeout_s=0.2):
        engine.delay = 5.0
        response = await transcribe(http)  # type: ignore[misc]
        assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"
        assert engine.running == 0


async def test_request_id_is_honoured_or_made(serve: Serve) -> None:
    async for _, _, http in serve():
        given = await http.get("/health", headers={"X-Request-ID": "abc-123"})
        assert given.headers["x-request-id"] == "abc-123"
        made = await http.get("/health", headers={"X-Request-ID": "bad id with spaces\n"})
        assert made.headers["x-request-id"] != "bad id with spaces\n" and len(made.headers["x-request-id"]) == 32


async def test_metrics_count_requests_audio_and_queues(serve: Serve) -> None:
    async for _, _, http in serve():
        assert (await transcribe(http, 3.0)).status_code == 200  # type: ignore[attr-defined]
        await http.get("/v1/nothing")
        text = (await http.get("/metrics")).text
        assert 'speech_gateway_requests_total{route="/v1/audio/transcriptions",status="200"} 1.0' in text
        assert 'speech_gateway_requests_total{route="other",status="404"} 1.0' in text
        assert 'speech_gateway_audio_seconds_total{task="transcribe"} 3.0' in text
        assert 'speech_gateway_real_time_factor_count{task="transcribe"} 1.0' in text
        for gauge in ("requests_in_flight", "requests_waiting", "engine_requests"):
            assert f"speech_gateway_{gauge} 0.0" in text
        assert "process_resident_memory_bytes" in text


async def test_streams_release_their_slot(serve: Serve) -> None:
    async for client, _, http in serve(max_concurrent_requests=1, max_queued_requests=0):
        for _ in range(3):
            stream = await client.audio.transcriptions.create(
                model="whisper-1", file=("a.wav", wav_bytes(2.0)), stream=True, language="en"
            )
            assert [e.type async for e in stream][-1] == "transcript.text.done"
        assert "speech_gateway_requests_in_flight 0.0" in (await http.get("/metrics")).text


async def test_shared_windows_are_counted_through_the_transcribers_callback(whisper_base: WhisperModel) -> None:
    # As `build_runtime` wires it: the transcriber tells the app's metrics of each shared window.
    engine = ScriptedEngine(whisper_base)
    engine.delay = 0.2  # the engine is busy, so short pieces wait for company

    async def runtime(s: Settings, metrics: Metrics) -> Runtime:
        transcriber = Transcriber(
            whisper_base,
            engine,
            vad=LoudnessVad(),
            window_sharing_wait_s=0.1,
            on_shared_window=metrics.observe_sharing,
        )
        return Runtime(s, whisper_base, engine, transcriber, "whisper-base")

    app = create_app(load_settings({}), runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answers = await asyncio.gather(*(transcribe(http, 3.0) for _ in range(4)))
            assert all(answer.status_code == 200 for answer in answers)
            text = (await http.get("/metrics")).text
    shared = [line for line in text.splitlines() if line.startswith("speech_gateway_shared_windows_total ")]
    assert shared and float(shared[0].split()[1]) >= 1


async def test_the_page_and_every_file_it_loads_are_served(serve: Serve) -> None:
    from app.http.routes.page import STATIC_DIR

    async for _, _, http in serve():
        page = await http.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        names = sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in {".js", ".css"})
        assert names, f"no page files in {STATIC_DIR}"
        for name in names:
            assert (await http.get(f"/static/{name}")).status_code == 200, name
