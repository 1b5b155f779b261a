"""A second real server (English-only Whisper tiny.en, API keys set): auth with curl, the
English-only model's limits, and a graceful shutdown that finishes what is in flight."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import AHEAD, ONE_PROCESS_ENGINE, Server
from tests.speech import SENTENCES, compose, require_tools, wer, write_wav

pytestmark = pytest.mark.e2e

KEY = "sk-test-4f1c"


ENV = {
    "SPEECH_GATEWAY_MODEL": "whisper-tiny.en",
    "SPEECH_GATEWAY_API_KEY": f"other-key,{KEY}",
    "SPEECH_GATEWAY_SHUTDOWN_GRACE_S": "60",
    **ONE_PROCESS_ENGINE,
}
AHEAD.plan("tiny", lambda folder: ENV)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_tools()
    yield from AHEAD.served("tiny", tmp_path_factory)


@pytest.fixture(scope="module")
def sentences_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    chosen = SENTENCES[:12]
    path = write_wav(tmp_path_factory.mktemp("audio") / "twelve.wav", compose(chosen, pause_s=0.5))
    return path, " ".join(chosen)


def curl(*args: str) -> tuple[int, dict[str, object]]:
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, check=True, timeout=300)
    body, _, code = out.stdout.decode().rpartition("\n")
    return int(code), json.loads(body)


def test_keys_with_curl(tiny: Server, sentences_wav: tuple[Path, str]) -> None:
    path, text = sentences_wav
    url = f"{tiny.base_url}/v1/audio/transcriptions"
    status, body = curl(url, "-F", f"file=@{path}", "-F", "model=whisper-1")
    assert status == 401 and "API key" in str(body["error"])
    status, body = curl(url, "-H", "Authorization: Bearer wrong", "-F", f"file=@{path}", "-F", "model=whisper-1")
    assert status == 401
    status, body = curl(url, "-H", f"Authorization: Bearer {KEY}", "-F", f"file=@{path}", "-F", "model=whisper-1")
    assert status == 200 and wer(text, str(body["text"])) < 0.3
    assert httpx.get(f"{tiny.base_url}/health").status_code == 200


def test_start_up_log_holds_no_weight_cast_notes(tiny: Server) -> None:
    # The checkpoint is stored in float16; on a CPU with bfloat16 arithmetic `auto` runs it in
    # bfloat16, and vLLM would note each of the weights it casts (167 lines for Whisper base).
    log = tiny.log_path.read_text(errors="replace")
    assert "starting vLLM engine" in log
    assert "Attempted to load weight" not in log


def test_the_one_process_executor_holds_on_cpu(tiny: Server) -> None:
    # vLLM's CPU platform turns `uni` into `mp` unless the gateway switches its multiprocessing off for the
    # engine; then the model runs in the engine core's process and no worker process prints.
    log = tiny.log_path.read_text(errors="replace")
    assert "(EngineCore pid=" in log
    assert "(Worker pid=" not in log and "VllmWorker" not in log


def test_english_only_model_refuses_translation_and_other_languages(
    tiny: Server, sentences_wav: tuple[Path, str]
) -> None:
    path, _ = sentences_wav
    headers = {"Authorization": f"Bearer {KEY}"}
    files = {"file": ("a.wav", path.read_bytes())}
    translated = httpx.post(
        f"{tiny.base_url}/v1/audio/translations", headers=headers, files=files, data={"model": "whisper-1"}
    )
    assert translated.status_code == 400 and "English-only" in translated.json()["error"]["message"]
    german = httpx.post(
        f"{tiny.base_url}/v1/audio/transcriptions",
        headers=headers,
        files=files,
        data={"model": "whisper-1", "language": "de"},
    )
    assert german.status_code == 400 and german.json()["error"]["param"] == "language"


def test_sigterm_finishes_requests_in_flight_then_stops(tiny: Server, sentences_wav: tuple[Path, str]) -> None:
    path, text = sentences_wav
    outcome: dict[str, object] = {}

    def in_flight() -> None:
        r = httpx.post(
            f"{tiny.base_url}/v1/audio/transcriptions",
            headers={"Authorization": f"Bearer {KEY}"},
            files={"file": ("a.wav", path.read_bytes())},
            data={"model": "whisper-1"},
            timeout=300,
        )
        outcome["status"], outcome["text"] = r.status_code, r.json().get("text", "")

    worker = threading.Thread(target=in_flight)
    worker.start()
    metrics = f"{tiny.base_url}/metrics"
    deadline = time.monotonic() + 30
    while "speech_gateway_requests_in_flight 1.0" not in httpx.get(metrics).text and time.monotonic() < deadline:
        time.sleep(0.05)
    tiny.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tiny.base_url}/health", timeout=2)
    worker.join(120)
    assert outcome.get("status") == 200 and wer(text, str(outcome["text"])) < 0.3
    # uvicorn re-raises the signal once shut down, so the exit status says SIGTERM, as it should.
    assert tiny.process.wait(90) in (0, -signal.SIGTERM)
    events = [
        json.loads(line) for line in tiny.log_path.read_text(errors="replace").splitlines() if line.startswith("{")
    ]
    messages = [e["message"] for e in events]
    answered = [i for i, m in enumerate(messages) if m.startswith("POST /v1/audio/transcriptions 200")]
    assert messages.index("stopping the engine") > answered[-1], "the engine stopped before the request finished"
    # The engine was warmed up before the server took its first client.
    warmed = [i for i, m in enumerate(messages) if m.startswith("warmed up in")]
    assert warmed and warmed[0] < answered[0]
    access = next(e for e in events if e["logger"] == "speech_gateway.access")
    assert {"request_id", "status", "duration_ms", "method", "path"} <= set(access)
