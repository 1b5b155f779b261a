"""Audio-bounded admission and slow uploads, through the real app: what a header claims is refused
before decoding, audio seconds are budgeted, and a trickling upload gives its slot back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from openai import AsyncOpenAI

from tests.api.conftest import ScriptedEngine, wav_bytes
from tests.e2e.amplification import one_hertz

Served = tuple[AsyncOpenAI, ScriptedEngine, httpx.AsyncClient]
Serve = Callable[..., AsyncIterator[Served]]
BOUNDARY = "trickle"


def transcribe(http: httpx.AsyncClient, body: bytes) -> object:
    return http.post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", body)}, data={"model": "whisper-1", "language": "en"}
    )


async def trickle(body: bytes, pause_s: float, stall_after: int | None = None) -> AsyncIterator[bytes]:
    """A multipart body sent in 64-byte chunks `pause_s` apart; `stall_after` chunks, then silence."""
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
    head += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    whole = head.encode() + body + f"\r\n--{BOUNDARY}--\r\n".encode()
    for i in range(0, len(whole), 64):
        if stall_after is not None and i // 64 >= stall_after:
            await asyncio.sleep(3600)
        yield whole[i : i + 64]
        await asyncio.sleep(pause_s)


def post_stream(http: httpx.AsyncClient, content: AsyncIterator[bytes]) -> object:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return http.post("/v1/audio/transcriptions", content=content, headers=headers)


async def test_a_one_hertz_header_is_a_400_naming_the_file(serve: Serve) -> None:
    async for _, engine, http in serve():
        response = await transcribe(http, one_hertz())  # type: ignore[misc]
        error = response.json()["error"]
        assert response.status_code == 400 and error["param"] == "file" and error["code"] == "sample_rate_too_low"
        assert engine.requests == []


async def test_audio_over_the_limit_is_refused_with_the_limit_named(serve: Serve) -> None:
    async for _, engine, http in serve(max_audio_seconds=5):
        response = await transcribe(http, wav_bytes(8.0))  # type: ignore[misc]
        error = response.json()["error"]
        assert response.status_code == 400 and error["code"] == "audio_too_long" and "limit of 5 s" in error["message"]
        assert engine.requests == []


async def test_audio_past_the_budget_waits_then_is_refused(serve: Serve) -> None:
    async for _, engine, http in serve(audio_budget_s=3):
        engine.delay = 1.0
        # The first runs; the second (2 s + 2 s > 3 s) waits for it; a third would queue more
        # than a budget's worth: 429.
        responses = await asyncio.gather(*(transcribe(http, wav_bytes(2.0)) for _ in range(3)))  # type: ignore[misc]
        assert sorted(r.status_code for r in responses) == [200, 200, 429]
        refused = next(r for r in responses if r.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1 and "budget of 3 s" in refused.json()["error"]["message"]
        # Longer than the whole budget, alone: served.
        assert (await transcribe(http, wav_bytes(5.0))).status_code == 200  # type: ignore[attr-defined]
        text = (await http.get("/metrics")).text
        assert "speech_gateway_audio_seconds_in_flight 0.0" in text
        assert "speech_gateway_audio_seconds_waiting 0.0" in text


@pytest.mark.parametrize(
    ("overrides", "body", "why"),
    [
        ({"upload_idle_timeout_s": 0.3}, {"pause_s": 0.0, "stall_after": 3}, "nothing arrived for 0.3 s"),
        ({"upload_timeout_s": 0.5}, {"pause_s": 0.05}, "took longer than 0.5 s"),
    ],
)
async def test_a_trickling_upload_is_cut_off_and_its_slot_comes_back(
    serve: Serve, overrides: dict[str, float], body: dict[str, float], why: str
) -> None:
    async for _, _, http in serve(max_concurrent_requests=1, max_queued_requests=0, **overrides):
        response = await post_stream(http, trickle(wav_bytes(1.0), **body))  # type: ignore[misc]
        error = response.json()["error"]
        assert response.status_code == 408 and error["code"] == "upload_timeout" and why in error["message"]
        # With one slot, the next request is served only if the cut-off one gave it back.
        assert (await transcribe(http, wav_bytes(1.0))).status_code == 200  # type: ignore[attr-defined]
        assert "speech_gateway_requests_in_flight 0.0" in (await http.get("/metrics")).text
