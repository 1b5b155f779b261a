"""Where a request's time goes, as the access log, /metrics and OpenTelemetry tell it.

The scripted engine takes a fixed time per pass, so engine time dominates the request and the
recorded stages must account for nearly all of it; the check is a ratio, not a speed.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.main import create_app
from app.ops import tracing
from config import load_settings
from tests.api.conftest import wav_bytes

PASS_S = 0.25


def access_entries(caplog: pytest.LogCaptureFixture, path: str) -> list[dict[str, Any]]:
    return [vars(r) for r in caplog.records if r.name == "speech_gateway.access" and vars(r).get("path") == path]


async def transcribe(http: httpx.AsyncClient, seconds: float, rate: int = 16000, **fields: str) -> httpx.Response:
    files = {"file": ("tone.wav", wav_bytes(seconds, rate), "audio/wav")}
    response = await http.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1", **fields})
    assert response.status_code == 200, response.text
    return response


async def test_the_access_log_and_metrics_carry_the_stages_and_they_add_up(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="speech_gateway.access")
    async for _, engine, http in serve():
        engine.delay = PASS_S
        # The interpreter's collector pauses for up to 0.4 s on this test process's heap: not ours to account for.
        gc.collect()
        gc.disable()
        try:
            await transcribe(http, 4.0, rate=22050)  # resampled; no language given: detected, then read
        finally:
            gc.enable()
        metrics = (await http.get("/metrics")).text
    (entry,) = access_entries(caplog, "/v1/audio/transcriptions")
    stages_ms = entry["stages_ms"]
    assert {"route", "upload", "admission_wait", "decode", "resample", "vad", "model", "engine", "render"} <= set(
        stages_ms
    )
    assert entry["passes"] == {"lang": 1, "first": 1}
    assert entry["engine_passes"] == 2
    # The stages are exclusive wall time: they never exceed the request, and cover nearly all of it.
    ratio = sum(stages_ms.values()) / entry["duration_ms"]
    print(f"stages / duration = {ratio:.3f}: {stages_ms} of {entry['duration_ms']} ms")
    assert 0.9 <= ratio <= 1.0001
    assert stages_ms["engine"] >= 2 * PASS_S * 1000 * 0.9
    for line in (
        'speech_gateway_stage_seconds_count{stage="engine"} 1.0',
        'speech_gateway_stage_seconds_count{stage="decode"} 1.0',
        'speech_gateway_engine_pass_seconds_count{kind="lang"} 1.0',
        'speech_gateway_engine_pass_seconds_count{kind="first"} 1.0',
        "speech_gateway_engine_passes_per_request_sum 2.0",
    ):
        assert line in metrics


async def test_requests_without_stages_log_none(serve: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="speech_gateway.access")
    async for _, _, http in serve():
        await http.get("/health")
    (entry,) = access_entries(caplog, "/health")
    assert "stages_ms" not in entry and "engine_passes" not in entry


async def test_a_configured_endpoint_exports_a_span_per_request_with_its_stages(
    serve: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    endpoints: list[str] = []

    def in_memory(endpoint: str) -> InMemorySpanExporter:
        endpoints.append(endpoint)
        return exporter

    monkeypatch.setattr(tracing, "span_exporter", in_memory)
    async for _, _, http in serve(otel_endpoint="http://collector.invalid:4318"):
        await transcribe(http, 3.0, language="en")
    # The app's shutdown flushed the batch.
    assert endpoints == ["http://collector.invalid:4318"]
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "POST /v1/audio/transcriptions"
    assert root.attributes is not None and root.attributes["status"] == 200
    children = [s for s in spans if s.parent is not None]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in children)
    assert {"upload", "decode", "vad", "render", "engine_pass"} <= {s.name for s in children}
    (engine_pass,) = [s for s in children if s.name == "engine_pass"]
    assert engine_pass.attributes is not None and engine_pass.attributes["speech_gateway.pass_kind"] == "first"
    assert root.start_time is not None and root.end_time is not None
    assert all(root.start_time <= s.start_time <= s.end_time <= root.end_time for s in children)  # type: ignore[operator]


async def test_no_endpoint_means_no_tracing_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(endpoint: str) -> None:
        raise AssertionError("an exporter was created without an endpoint")

    monkeypatch.setattr(tracing, "span_exporter", refuse)
    app = create_app(load_settings({}))
    assert app.state.gateway.tracing is None
    assert tracing.Tracing.from_settings(load_settings({})) is None
