"""Two models in one real server: Whisper base (the embedded default) and a tiny Qwen3-ASR checkpoint,
each on its own vLLM engine with its own memory share, plus a third whose checkpoint is missing.

Requests to both, interleaved 16 at a time, get what each model gives for that clip alone (one
request in flight), with no 5xx; the tiny model's answer is transformers' for the same audio, so
the request reached that model's weights and not Whisper's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from models.audio_chat import MAX_NEW_TOKENS
from tests.e2e.servers import AHEAD, ONE_PROCESS_ENGINE, Server
from tests.families.reference import hf_greedy
from tests.families.tiny import build_checkpoint
from tests.speech import SENTENCES, require_tools, speak, wer, write_wav

pytestmark = pytest.mark.e2e

TINY = "tiny-qwen3-asr"
# Sentences Whisper base reads from espeak with at most a slip (a sanity check that it answered).
READ = [SENTENCES[i] for i in (7, 8, 9, 0)]
CONCURRENT = 16


def environment(folder: Path) -> dict[str, str]:
    """The three models, the tiny one's checkpoint built in the server's folder."""
    checkpoint = build_checkpoint("qwen3_asr", folder / "qwen3_asr", seed=0)
    models = [
        # Whisper base's float32 weights and activations take about 1.3 GiB of its share.
        {"model": "whisper-base", "model_aliases": ["whisper-1"], "gpu_memory_utilization": 0.12},
        {"model": str(checkpoint), "served_model_name": TINY, "max_model_len": 2048},
        {"model": str(folder / "missing"), "served_model_name": "missing"},
    ]
    return {
        "SPEECH_GATEWAY_MODELS": json.dumps(models),
        # Inherited by each model that does not set its own: float32 as transformers runs the
        # reference, and a small memory share (the tiny model's).
        "SPEECH_GATEWAY_DTYPE": "float32",
        "SPEECH_GATEWAY_GPU_MEMORY_UTILIZATION": "0.05",
        # A Whisper clip's text may change when it shares a window with another request's clip;
        # this test is about models side by side, so each request reads its own windows.
        "SPEECH_GATEWAY_WINDOW_SHARING_WAIT_MS": "0",
        **ONE_PROCESS_ENGINE,
    }


AHEAD.plan("two_models", environment)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_tools()
    yield from AHEAD.served("two_models", tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_checkpoint(two_models: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return AHEAD.take("two_models", tmp_path_factory).folder / "qwen3_asr"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [write_wav(folder / f"clip{i}.wav", speak(sentence)) for i, sentence in enumerate(READ)]


def transcribe(server: Server, model: str, clip: Path) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        files={"file": (clip.name, clip.read_bytes())},
        data={"model": model},
        timeout=600,
    )


def test_both_models_listed_and_ready_and_the_missing_one_told(two_models: Server) -> None:
    listed = [card["id"] for card in httpx.get(f"{two_models.base_url}/v1/models").json()["data"]]
    assert listed == ["whisper-base", "whisper-1", TINY]
    ready = httpx.get(f"{two_models.base_url}/ready")
    assert ready.status_code == 200
    models = ready.json()["models"]
    assert models[:2] == [{"id": "whisper-base", "status": "ready"}, {"id": TINY, "status": "ready"}]
    assert (models[2]["id"], models[2]["status"]) == ("missing", "failed")
    assert "/" not in models[2]["reason"]  # no path leaves the server
    assert "did not start" in two_models.log_path.read_text(errors="replace")


def test_interleaved_load_gets_what_each_model_gives_alone(
    two_models: Server, clips: list[Path], tiny_checkpoint: Path
) -> None:
    models = ("whisper-base", TINY)
    alone = {}
    for model in models:
        for clip in clips:
            response = transcribe(two_models, model, clip)
            assert response.status_code == 200, response.text
            alone[model, clip] = response.json()["text"]
    # Whisper read English; the tiny model read what transformers reads from the same samples.
    assert wer(" ".join(READ), " ".join(alone["whisper-base", clip] for clip in clips)) < 0.15
    samples = np.asarray(sf.read(str(clips[0]), dtype="float32")[0])
    expected = hf_greedy(tiny_checkpoint, "qwen3_asr", samples, instruction="", max_new_tokens=MAX_NEW_TOKENS)
    assert alone[TINY, clips[0]] == expected.text.strip()

    jobs = [(models[i % 2], clips[(i // 2) % len(clips)]) for i in range(CONCURRENT)]
    with ThreadPoolExecutor(CONCURRENT) as pool:
        responses = list(pool.map(lambda job: transcribe(two_models, *job), jobs))
    assert [r.status_code for r in responses] == [200] * CONCURRENT, [r.text for r in responses if r.status_code != 200]
    assert [r.json()["text"] for r in responses] == [alone[job] for job in jobs]
