"""Bursts and hang-ups against the real server: nothing lost, nothing left running."""

from __future__ import annotations

import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.amplification import PeakRss, tree_rss
from tests.e2e.servers import Server
from tests.speech import SENTENCES, wer, write_wav

pytestmark = pytest.mark.e2e

REQUESTS = 128
CONCURRENCY = 64


def engine_requests(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    match = re.search(r"^speech_gateway_engine_requests (\S+)$", text, re.M)
    assert match, "the engine queue gauge is missing"
    return float(match.group(1))


def test_burst_of_128_requests_64_at_a_time(
    server: Server,
    http: httpx.Client,
    sentence_audio: dict[str, np.ndarray],
    audio_dir: Path,
    read_alone: dict[str, str],
) -> None:
    paths = {s: write_wav(audio_dir / f"load-{i}.wav", a) for i, (s, a) in enumerate(sentence_audio.items())}
    jobs = [SENTENCES[i % len(SENTENCES)] for i in range(REQUESTS)]

    def one(sentence: str) -> tuple[int, float, str]:
        started = time.perf_counter()
        with httpx.Client(base_url=server.base_url, timeout=600) as c:
            r = c.post(
                "/v1/audio/transcriptions",
                files={"file": ("a.wav", paths[sentence].read_bytes())},
                data={"model": "whisper-1", "language": "en"},
            )
        text = r.json().get("text", "") if r.status_code == 200 else ""
        return r.status_code, time.perf_counter() - started, text

    # What each clip gives alone: under load every answer must be that clip's, not a neighbour's.
    alone = read_alone
    baseline_rss = tree_rss(server.process.pid)
    sampler = PeakRss(server.process.pid)
    sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(one, jobs))
    elapsed = time.perf_counter() - started
    peak = sampler.stop()

    statuses = [status for status, _, _ in results]
    assert len(results) == REQUESTS
    assert all(status in (200, 429) for status in statuses), statuses
    answered = [(s, t) for (status, _, t), s in zip(results, jobs, strict=True) if status == 200]
    # Every answer is its own clip's: nearer its sentence than any other (no cross-talk) ...
    misrouted = [(s, t) for s, t in answered if min(SENTENCES, key=lambda other: wer(other, t)) != s]
    assert not misrouted, misrouted[:5]
    # ... and load costs no accuracy beyond batch-size rounding on a few fragile clips.
    under_load = sum(wer(s, t) for s, t in answered) / len(answered)
    quiet = sum(wer(s, alone[s]) for s, _ in answered) / len(answered)
    assert under_load <= quiet + 0.03, (under_load, quiet)
    latencies = sorted(latency for status, latency, _ in results if status == 200)
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"\nload: {REQUESTS} requests, {CONCURRENCY} at a time, {elapsed:.1f} s: "
        f"{statuses.count(200)} x 200, {statuses.count(429)} x 429; p50 {p50:.2f} s, p95 {p95:.2f} s; "
        f"RSS {baseline_rss / 2**30:.2f} GiB before, peak {peak / 2**30:.2f} GiB"
    )
    assert statuses.count(200) >= REQUESTS // 2
    # Bounded: the burst may add working memory, not multiples of the server's size.
    assert peak < baseline_rss + 3 * 2**30
    assert engine_requests(http) == 0


def _wait_until_idle(http: httpx.Client, timeout_s: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if engine_requests(http) == 0:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise AssertionError(f"engine requests still running {timeout_s} s after the client left")


def test_a_client_that_hangs_up_leaves_no_engine_work(
    server: Server, http: httpx.Client, sentence_audio: dict[str, np.ndarray], audio_dir: Path
) -> None:
    long = write_wav(audio_dir / "cancel.wav", np.concatenate([sentence_audio[s] for s in SENTENCES * 3]))
    body = long.read_bytes()

    def impatient() -> None:
        timeout = httpx.Timeout(600, read=3.0)
        with httpx.Client(base_url=server.base_url, timeout=timeout) as c, pytest.raises(httpx.ReadTimeout):
            c.post("/v1/audio/transcriptions", files={"file": ("a.wav", body)}, data={"model": "whisper-1"})

    worker = threading.Thread(target=impatient)
    worker.start()
    deadline = time.perf_counter() + 30
    while engine_requests(http) == 0 and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert engine_requests(http) > 0, "the request never reached the engine"
    worker.join()
    waited = _wait_until_idle(http, timeout_s=1.0)
    print(f"\nengine idle {waited:.2f} s after the client hung up")


def test_a_stream_closed_early_leaves_no_engine_work(
    server: Server, http: httpx.Client, sentence_audio: dict[str, np.ndarray], audio_dir: Path
) -> None:
    long = write_wav(audio_dir / "cancel-stream.wav", np.concatenate([sentence_audio[s] for s in SENTENCES * 3]))
    with (
        httpx.Client(base_url=server.base_url, timeout=600) as c,
        c.stream(
            "POST",
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", long.read_bytes())},
            data={"model": "whisper-1", "stream": "true", "language": "en"},
        ) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_lines())
        assert first.startswith("data: ")
    _wait_until_idle(http, timeout_s=1.0)
