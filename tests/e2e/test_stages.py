"""Where a real request's time goes: the stage histograms of the real server account for it.

The API tier checks the access log against a scripted engine; here the engine, the speech detector
and the decoder are real, and /metrics before and after one request must show stages that add up
to the request's own duration within 10 % (they are exclusive wall time, so never above it).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import Server

pytestmark = pytest.mark.e2e

ROUTE = "/v1/audio/transcriptions"
SAMPLE = re.compile(r"^(speech_gateway_[a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$", re.M)


def samples(text: str) -> dict[tuple[str, str], float]:
    """Prometheus text -> {(name, labels): value}."""
    return {(name, labels or ""): float(value) for name, labels, value in SAMPLE.findall(text)}


def delta(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float], name: str) -> dict[str, float]:
    """Per label set of `name`, how much it grew."""
    return {labels: value - before.get((n, labels), 0.0) for (n, labels), value in after.items() if n == name}


def test_stages_of_a_real_request_add_up_to_its_duration(server: Server, speech_wav: Path) -> None:
    with httpx.Client(base_url=server.base_url, timeout=300) as http:
        before = samples(http.get("/metrics").text)
        response = http.post(
            ROUTE,
            files={"file": ("speech.wav", speech_wav.read_bytes(), "audio/wav")},
            data={"model": "whisper-1", "response_format": "verbose_json"},
        )
        assert response.status_code == 200, response.text
        after = samples(http.get("/metrics").text)
    duration = delta(before, after, "speech_gateway_request_duration_seconds_sum")[f'route="{ROUTE}"']
    stages = {
        labels.removeprefix('stage="').removesuffix('"'): grew
        for labels, grew in delta(before, after, "speech_gateway_stage_seconds_sum").items()
        if grew > 0
    }
    passes = delta(before, after, "speech_gateway_engine_passes_per_request_sum")[""]
    print(f"\nstages {stages} of {duration:.3f} s; {passes:.0f} engine passes")
    # No language given: the language is detected (one pass), then the speech is read.
    assert {"upload", "decode", "vad", "engine", "render"} <= set(stages)
    assert passes >= 2
    assert 0.9 * duration <= sum(stages.values()) <= duration * 1.001
