"""The real server, engine and default model, called with the openai SDK, httpx and curl."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from openai import OpenAI

from tests.e2e.servers import Server
from tests.speech import FOREIGN, SAMPLE_RATE, convert, speak, wer, write_wav

pytestmark = pytest.mark.e2e

MAX_WER = 0.25


def test_sdk_transcription(client: OpenAI, speech_wav: Path, speech_text: str) -> None:
    with speech_wav.open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert wer(speech_text, result.text) < MAX_WER
    assert result.usage is not None and result.usage.type == "duration"


@pytest.mark.parametrize("suffix", [".flac", ".ogg", ".mp3", ".m4a", ".webm", ".mp4", ".wav"])
def test_every_container(http: httpx.Client, speech_wav: Path, speech_text: str, audio_dir: Path, suffix: str) -> None:
    # 48 kHz stereo on the way, so decoding, downmixing and resampling are all exercised.
    source = (
        speech_wav
        if suffix == ".wav"
        else convert(speech_wav, audio_dir / f"speech{suffix}", "-ar", "48000", "-ac", "2")
    )
    response = http.post(
        "/v1/audio/transcriptions",
        files={"file": (source.name, source.read_bytes())},
        data={"model": "whisper-base", "response_format": "text"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert wer(speech_text, response.text) < MAX_WER


def test_curl(server: Server, speech_wav: Path, speech_text: str) -> None:
    assert shutil.which("curl"), "curl is part of the test set-up"
    out = subprocess.run(
        ["curl", "-sS", "--fail-with-body", f"{server.base_url}/v1/audio/transcriptions",
         "-F", f"file=@{speech_wav}", "-F", "model=whisper-1", "-F", "response_format=json"],
        capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    assert wer(speech_text, json.loads(out.stdout)["text"]) < MAX_WER


def test_sdk_translation(client: OpenAI, audio_dir: Path) -> None:
    source = write_wav(audio_dir / "it.wav", speak(FOREIGN["it"], "it"))
    with source.open("rb") as f:
        result = client.audio.translations.create(model="whisper-1", file=f)
    english = "Hello everyone. Today we are going to the market to buy fruit and vegetables."
    assert wer(english, result.text) < 0.5
    assert "market" in result.text.lower()


@pytest.mark.parametrize(("code", "name"), [("de", "german"), ("fr", "french"), ("es", "spanish"), ("it", "italian")])
def test_language_detection(client: OpenAI, audio_dir: Path, code: str, name: str) -> None:
    source = write_wav(audio_dir / f"{code}.wav", speak(FOREIGN[code], code))
    with source.open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json")
    assert result.language == name
    assert wer(FOREIGN[code], result.text) < 0.6


def test_verbose_json_segments_follow_the_speech(client: OpenAI, speech_wav: Path, speech_text: str) -> None:
    with speech_wav.open("rb") as f:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", timestamp_granularities=["segment"]
        )
    assert result.language == "english" and result.segments
    duration = len(speech_wav.read_bytes()) / 2 / SAMPLE_RATE
    assert result.duration == pytest.approx(duration, abs=0.1)
    ends = [s.end for s in result.segments]
    assert ends == sorted(ends) and 0 < ends[-1] <= result.duration + 0.05
    assert all(s.start < s.end and s.tokens and s.avg_logprob < 0 for s in result.segments)
    assert wer(speech_text, " ".join(s.text for s in result.segments)) < MAX_WER


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles(http: httpx.Client, speech_wav: Path, speech_text: str, fmt: str) -> None:
    response = http.post(
        "/v1/audio/transcriptions",
        files={"file": ("speech.wav", speech_wav.read_bytes())},
        data={"model": "whisper-1", "response_format": fmt},
    )
    assert response.status_code == 200
    body = response.text
    arrow_lines = [line for line in body.splitlines() if "-->" in line]
    assert arrow_lines and (body.startswith("WEBVTT\n") if fmt == "vtt" else body.startswith("1\n00:00:"))
    cue_text = " ".join(
        line for line in body.splitlines() if line and "-->" not in line and not line.isdigit() and line != "WEBVTT"
    )
    assert wer(speech_text, cue_text) < MAX_WER


def test_sdk_stream(client: OpenAI, speech_wav: Path, speech_text: str) -> None:
    with speech_wav.open("rb") as f:
        stream = client.audio.transcriptions.create(model="whisper-1", file=f, stream=True)
        events = list(stream)
    assert events[-1].type == "transcript.text.done"
    deltas = [e for e in events[:-1] if e.type == "transcript.text.delta"]
    assert deltas and len(deltas) == len(events) - 1
    assert wer(speech_text, events[-1].text) < MAX_WER  # type: ignore[union-attr]


def test_silence_is_empty_not_invented(http: httpx.Client, audio_dir: Path) -> None:
    rng = np.random.default_rng(7)
    cases = {
        "zeros": np.zeros(SAMPLE_RATE * 20, np.float32),
        "hiss": (rng.standard_normal(SAMPLE_RATE * 20) * 0.003).astype(np.float32),
    }
    for name, samples in cases.items():
        path = write_wav(audio_dir / f"{name}.wav", samples)
        response = http.post(
            "/v1/audio/transcriptions",
            files={"file": (path.name, path.read_bytes())},
            data={"model": "whisper-1", "response_format": "verbose_json"},
        )
        assert response.status_code == 200, name
        assert response.json()["text"] == "", name


def test_bad_input_with_the_real_engine(client: OpenAI, http: httpx.Client, audio_dir: Path, speech_wav: Path) -> None:
    empty = write_wav(audio_dir / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(openai.BadRequestError, match="too short"):
        client.audio.transcriptions.create(model="whisper-1", file=empty.open("rb"))
    with pytest.raises(openai.NotFoundError):
        client.audio.transcriptions.create(model="no-such-model", file=speech_wav.open("rb"))
    # The server still serves correctly afterwards.
    assert http.get("/ready").status_code == 200
    assert client.models.list().data[0].id == "whisper-base"


def test_a_sampled_reading_is_the_same_each_time(client: OpenAI, speech_wav: Path) -> None:
    # At temperature 1 each token is drawn; the draws come from a generator of the request's own, seeded,
    # so the same request reads the same (with vLLM's shared generator, the draws depended on earlier ones).
    texts = set()
    for _ in range(3):
        with speech_wav.open("rb") as f:
            texts.add(
                client.audio.transcriptions.create(model="whisper-1", file=f, language="en", temperature=1.0).text
            )
    assert len(texts) == 1, texts
