"""The SDK's view of the API: shapes it parses, errors it raises, events it types."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.api.conftest import ScriptedEngine, wav_bytes

Served = tuple[AsyncOpenAI, ScriptedEngine, httpx.AsyncClient]


async def test_json_is_text_and_usage(api: Served) -> None:
    client, _, _ = api
    result = await client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav_bytes(3.0)))
    assert result.text == "Window of 3 seconds."
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 3


async def test_verbose_json_through_the_sdk_type(api: Served) -> None:
    client, _, _ = api
    result = await client.audio.transcriptions.create(
        model="whisper-base",
        file=("a.wav", wav_bytes(2.0)),
        response_format="verbose_json",
        timestamp_granularities=["segment"],
    )
    assert result.language == "english" and result.duration == pytest.approx(2.0)
    assert result.segments is not None and result.segments[0].end == pytest.approx(2.0)
    assert result.segments[0].no_speech_prob == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("fmt", "start"), [("text", "Window of 2 seconds."), ("srt", "1\n00:00:00,000 --> 00:00:02,000"), ("vtt", "WEBVTT")]
)
async def test_text_formats_are_plain_bodies(api: Served, fmt: str, start: str) -> None:
    client, _, _ = api
    body = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav_bytes(2.0)), response_format=fmt
    )  # type: ignore[call-overload]
    assert isinstance(body, str) and body.startswith(start)


async def test_long_audio_is_cut_into_windows_in_order(api: Served) -> None:
    client, engine, _ = api
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav_bytes(70.0)), response_format="verbose_json", language="en"
    )
    assert result.segments is not None and len(result.segments) == 3
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert sum(s.end - s.start for s in result.segments) == pytest.approx(70.0, abs=0.1)
    assert len(engine.requests) == 3


async def test_language_is_detected_when_not_given(api: Served) -> None:
    client, engine, _ = api
    engine.language = "de"
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav_bytes(2.0)), response_format="verbose_json"
    )
    assert result.language == "german"
    assert engine.requests[0].max_tokens == 1
    decoder = engine.requests[1].prompt["decoder_prompt"]["prompt_token_ids"]
    assert engine.model.vocab.languages["de"] in decoder


async def test_detection_is_limited_to_the_languages_sent(api: Served) -> None:
    _, engine, http = api
    engine.language = "fr"
    response = await http.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", wav_bytes(2.0))},
        data={"model": "whisper-1", "languages[]": ["fr", "it"]},
    )
    assert response.status_code == 200
    ids = engine.model.vocab.languages
    assert engine.requests[0].allowed_token_ids == [ids["fr"], ids["it"]]


async def test_translation(api: Served) -> None:
    client, engine, _ = api
    result = await client.audio.translations.create(model="whisper-1", file=("a.wav", wav_bytes(2.0)))
    assert result.text == "Window of 2 seconds."
    assert engine.model.vocab.translate in engine.requests[-1].prompt["decoder_prompt"]["prompt_token_ids"]


async def test_streaming_yields_typed_events(api: Served) -> None:
    client, _, _ = api
    stream = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav_bytes(65.0)), stream=True, language="en"
    )
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds[-1] == "transcript.text.done" and kinds[:-1] == ["transcript.text.delta"] * (len(kinds) - 1)
    assert len(kinds) >= 3
    done = events[-1]
    assert done.text == "".join(e.delta for e in events[:-1])  # type: ignore[union-attr]
    assert done.usage is not None and done.usage.seconds == 65  # type: ignore[union-attr]


async def test_prompt_and_logprobs(api: Served) -> None:
    client, engine, _ = api
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav_bytes(2.0)), prompt="vLLM", include=["logprobs"], language="en"
    )
    assert result.logprobs and all(lp.logprob == pytest.approx(-0.1) for lp in result.logprobs)
    assert engine.requests[-1].prompt["decoder_prompt"]["prompt_token_ids"][0] == engine.model.vocab.sot_prev


async def test_models_list_serves_name_and_alias(api: Served) -> None:
    client, _, _ = api
    models = await client.models.list()
    assert [m.id for m in models.data] == ["whisper-base", "whisper-1"]
    assert (await client.models.retrieve("whisper-1")).id == "whisper-1"


async def test_health_and_ready(api: Served) -> None:
    _, engine, http = api
    assert (await http.get("/health")).json() == {"status": "ok"}
    assert (await http.get("/ready")).status_code == 200
    engine.healthy = False
    assert (await http.get("/ready")).status_code == 503


def _envelope(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


async def test_unknown_model_is_404(api: Served) -> None:
    client, _, http = api
    with pytest.raises(openai.NotFoundError):
        await client.audio.transcriptions.create(model="gpt-nope", file=("a.wav", wav_bytes(1.0)))
    response = await http.post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes(1.0))}, data={"model": "x"}
    )
    assert response.status_code == 404 and _envelope(response)["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("data", "files", "param"),
    [
        ({"model": "whisper-1"}, None, "file"),
        ({"model": "whisper-1", "response_format": "xml"}, "ok", "response_format"),
        ({"model": "whisper-1", "temperature": "warm"}, "ok", "temperature"),
        ({"model": "whisper-1", "language": "xx"}, "ok", "language"),
        (
            {"model": "whisper-1", "timestamp_granularities[]": "word", "response_format": "verbose_json"},
            "ok",
            "timestamp_granularities",
        ),
        ({"model": "whisper-1"}, "short", "file"),
        ({"model": "whisper-1"}, "garbage", "file"),
        ({"model": "whisper-1"}, "empty", "file"),
    ],
)
async def test_bad_requests_are_400_envelopes(api: Served, data: dict[str, str], files: str | None, param: str) -> None:
    _, _, http = api
    payloads = {"ok": wav_bytes(1.0), "short": wav_bytes(0.05), "garbage": b"not audio" * 100, "empty": b""}
    upload = {"file": ("a.wav", payloads[files])} if files else None
    response = await http.post("/v1/audio/transcriptions", data=data, files=upload)
    assert response.status_code == 400
    error = _envelope(response)
    assert error["param"] == param and error["type"] == "invalid_request_error"


async def test_oversize_upload_is_413(api: Served) -> None:
    _, _, http = api
    response = await http.post(
        "/v1/audio/transcriptions", data={"model": "whisper-1"}, files={"file": ("a.wav", wav_bytes(150.0))}
    )
    assert response.status_code == 413 and "limit" in str(_envelope(response)["message"])


async def test_unknown_routes_and_methods_are_envelopes(api: Served) -> None:
    _, _, http = api
    assert _envelope(await http.get("/v1/nothing"))["code"] == "not_found"
    assert (await http.get("/v1/audio/transcriptions")).status_code == 405


async def test_translation_on_english_only_model_is_400(english_only_api: Served) -> None:
    client, _, _ = english_only_api
    with pytest.raises(openai.BadRequestError, match="English-only"):
        await client.audio.translations.create(model="whisper-1", file=("a.wav", wav_bytes(1.0)))
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav_bytes(1.0)), response_format="verbose_json"
    )
    assert result.language == "english"


async def test_unknown_fields_are_ignored(api: Served) -> None:
    _, _, http = api
    response = await http.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1", "chunking_strategy": "auto", "something_new": "1"},
        files={"file": ("a.wav", wav_bytes(1.0))},
    )
    assert response.status_code == 200


async def test_unsure_windows_fall_back_to_higher_temperatures(api: Served) -> None:
    client, engine, _ = api
    engine.logprob_at = {0.0: -2.0, 0.2: -2.0, 0.4: -0.3, 0.6: -0.2}
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav_bytes(2.0)), response_format="verbose_json", language="en"
    )
    temperatures = [r.temperature for r in engine.requests]
    # T=0, then 0.2 alone, then the rest at once; the coolest passing reading wins.
    assert temperatures[:2] == [0.0, 0.2] and sorted(temperatures[2:]) == [0.4, 0.6, 0.8, 1.0]
    assert result.segments is not None and result.segments[0].temperature == 0.4

    engine.requests.clear()
    engine.logprob_at = {0.0: -2.0}
    await client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav_bytes(2.0)), language="en")
    assert [r.temperature for r in engine.requests] == [0.0, 0.2]


async def test_a_fixed_temperature_is_never_raised(api: Served) -> None:
    client, engine, _ = api
    engine.logprob_at = {0.3: -2.0}
    await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav_bytes(2.0)), language="en", temperature=0.3
    )
    assert [r.temperature for r in engine.requests] == [0.3]


async def test_unknown_candidate_language_names_languages(api: Served) -> None:
    _, _, http = api
    response = await http.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", wav_bytes(1.0))},
        data={"model": "whisper-1", "languages[]": ["fr", "elvish"]},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "languages"


def _tone_pause_tone(pause_s: float) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    tone, _ = sf.read(io.BytesIO(wav_bytes(2.0)), dtype="float32")
    joined = np.concatenate([tone, np.zeros(int(pause_s * 16000), dtype=np.float32), tone])
    buffer = io.BytesIO()
    sf.write(buffer, joined, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "strategy", ["auto", {"type": "server_vad", "threshold": 0.4, "prefix_padding_ms": 200, "silence_duration_ms": 300}]
)
async def test_chunking_strategy_from_the_sdk_skips_the_pause(api: Served, strategy: object) -> None:
    client, engine, _ = api
    result = await client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.wav", _tone_pause_tone(10.0)),
        response_format="verbose_json",
        chunking_strategy=strategy,  # type: ignore[arg-type]
    )
    # One piece: both sounds, a pause of a second between them instead of 10 s (and a second of
    # silence to end on); its times are the recording's.
    windows = [r for r in engine.requests if r.max_tokens > 1]
    audio, rate = windows[0].prompt["encoder_prompt"]["multi_modal_data"]["audio"]
    assert len(windows) == 1 and len(audio) / rate < 7.5
    assert result.segments is not None and result.segments[0].start == pytest.approx(0.0)
    assert result.segments[0].end == pytest.approx(14.0, abs=0.4) and result.duration == pytest.approx(14.0)


async def test_a_bad_chunking_strategy_is_a_400(api: Served) -> None:
    client, _, _ = api
    with pytest.raises(openai.BadRequestError) as caught:
        await client.audio.transcriptions.create(
            model="whisper-1",
            file=("a.wav", wav_bytes(1.0)),
            chunking_strategy={"type": "server_vad", "threshold": 3},  # type: ignore[typeddict-item]
        )
    assert caught.value.body["param"] == "chunking_strategy"  # type: ignore[index]
