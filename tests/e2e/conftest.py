"""End-to-end tier: the real server (`python -m app`) with the real engine and the default model,
started once per session on a free loopback port (ahead of its first test: tests/e2e/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import OpenAI

from tests.e2e.servers import AHEAD, Server
from tests.speech import SAMPLE_RATE, SENTENCES, compose, require_tools, speak, write_wav

# The audio budget and upload deadline that tests/e2e/test_audio_budget.py holds the server to:
# one just-under-the-limit upload and some speech fit in 9,000 s; a trickling upload is cut at 15 s
# (well above what any other test's upload takes on loopback, under load: under 3 s).
# One server for all (a second start cost CI about a minute); no other test comes near either.
BUDGET_S = 9000
UPLOAD_TIMEOUT_S = 15
SESSION_ENV = {"SPEECH_GATEWAY_AUDIO_BUDGET_S": str(BUDGET_S), "SPEECH_GATEWAY_UPLOAD_TIMEOUT_S": str(UPLOAD_TIMEOUT_S)}


AHEAD.plan("server", lambda folder: SESSION_ENV)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_tools()
    yield from AHEAD.served("server", tmp_path_factory)


@pytest.fixture(scope="session")
def client(server: Server) -> OpenAI:
    return OpenAI(api_key="not-needed", base_url=f"{server.base_url}/v1", timeout=600, max_retries=0)


@pytest.fixture(scope="session")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=600) as c:
        yield c


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def speech_text() -> str:
    return " ".join(SENTENCES[:4])


@pytest.fixture(scope="session")
def speech_wav(audio_dir: Path, speech_text: str) -> Path:
    return write_wav(audio_dir / "speech.wav", compose(SENTENCES[:4], pause_s=0.6))


@pytest.fixture(scope="session")
def sentence_audio() -> dict[str, np.ndarray]:
    return {sentence: speak(sentence) for sentence in SENTENCES}


@pytest.fixture(scope="session")
def read_alone(server: Server, sentence_audio: dict[str, np.ndarray], audio_dir: Path) -> dict[str, str]:
    """Each sentence's clip as the session's server reads it with nothing else in flight (`language=en`):
    what the tests of many requests at once hold each answer to. Read once, one request at a time."""
    texts = {}
    with httpx.Client(base_url=server.base_url, timeout=600) as c:
        for i, (sentence, audio) in enumerate(sentence_audio.items()):
            path = write_wav(audio_dir / f"alone-{i}.wav", audio)
            response = c.post(
                "/v1/audio/transcriptions",
                files={"file": (path.name, path.read_bytes())},
                data={"model": "whisper-1", "language": "en"},
            )
            assert response.status_code == 200, response.text
            texts[sentence] = str(response.json()["text"])
    return texts


__all__ = ["SAMPLE_RATE", "Server"]
