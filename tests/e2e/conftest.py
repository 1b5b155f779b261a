"""End-to-end tier: the real server (`python -m app`) with the real engine and the default model,
started once per session on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np
import pytest
from openai import OpenAI

from tests.speech import SAMPLE_RATE, SENTENCES, compose, require_tools, speak, write_wav

READY_TIMEOUT_S = 900
# What in a server's log tells of an exception nobody handled: a traceback (logged by our own
# handlers only for bugs) or uvicorn's report of an app that raised. No test excuses one.
UNHANDLED = re.compile(r"Traceback \(most recent call last\)|Exception in ASGI application")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None


class Logged(Protocol):
    """A server whose output goes to a log file: a subprocess here, or one in the test process (tests/families)."""

    @property
    def log_path(self) -> Path: ...


def unhandled_errors(server: Logged) -> list[str]:
    """The log lines that tell of an unhandled exception, each cut to 400 characters."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    return [line[:400] for line in lines if UNHANDLED.search(line)]


def assert_no_unhandled_errors(server: Logged) -> None:
    """An uncaught exception in any handler fails the tier, whichever test caused it."""
    found = unhandled_errors(server)
    assert not found, f"{server.log_path} tells of {len(found)} unhandled exception(s):\n" + "\n".join(found[:5])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not server.alive():
            pytest.fail(f"the server exited while starting:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"the server was not ready within {READY_TIMEOUT_S} s:\n{server.log_tail()}")


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "SPEECH_GATEWAY_HOST": "127.0.0.1",
        "SPEECH_GATEWAY_PORT": str(port),
        # Eager mode starts in half the time; decoding is the same engine and model.
        "SPEECH_GATEWAY_ENFORCE_EAGER": "1",
        **(extra_env or {}),
    }
    log_path = tmp / f"server-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT
    )
    return Server(f"http://127.0.0.1:{port}", process, log_path)


# The audio budget and upload deadline that tests/e2e/test_audio_budget.py holds the server to:
# one just-under-the-limit upload and some speech fit in 9,000 s; a trickling upload is cut at 30 s.
# One server for all (a second start cost CI about a minute); no other test comes near either.
BUDGET_S = 9000
UPLOAD_TIMEOUT_S = 30
SESSION_ENV = {"SPEECH_GATEWAY_AUDIO_BUDGET_S": str(BUDGET_S), "SPEECH_GATEWAY_UPLOAD_TIMEOUT_S": str(UPLOAD_TIMEOUT_S)}


def stop_server(server: Server, grace_s: float = 60) -> int | None:
    if server.alive():
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_tools()
    running = start_server(tmp_path_factory.mktemp("server"), SESSION_ENV)
    try:
        wait_ready(running)
        yield running
    finally:
        stop_server(running)
    assert_no_unhandled_errors(running)


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


__all__ = ["SAMPLE_RATE", "Server"]
