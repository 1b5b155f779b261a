"""Driving an OpenAI-compatible server: timed repetitions of a workload, then its segments once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.outcome import Outcome
from bench.servers import SERVED_NAME
from bench.workloads import Workload

REQUEST_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Reply:
    text: str
    latency: float
    segment_starts: list[float] | None = None
    error: str | None = None


def _error(response: httpx.Response) -> str:
    try:
        message = str(response.json()["error"]["message"])
    except Exception:
        message = response.text
    return f"HTTP {response.status_code}: {' '.join(message.split())[:80]}"


def request(url: str, path: Path, response_format: str = "json", words: bool = False) -> Reply:
    """One transcription of `path` in English; failures come back as `Reply.error`, never raised.

    `words` asks for verbose_json with word and segment timestamps, whatever `response_format` says.
    """
    data: dict[str, str | list[str]] = {"model": SERVED_NAME, "language": "en", "response_format": response_format}
    if words:
        response_format = data["response_format"] = "verbose_json"
        data["timestamp_granularities[]"] = ["segment", "word"]
    elif response_format == "verbose_json":
        data["timestamp_granularities[]"] = "segment"
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            response = client.post(
                url + "/v1/audio/transcriptions", files={"file": (path.name, path.read_bytes(), "audio/wav")}, data=data
            )
    except httpx.HTTPError as exc:
        return Reply("", time.perf_counter() - started, error=f"{type(exc).__name__}")
    latency = time.perf_counter() - started
    if response.status_code != 200:
        return Reply("", latency, error=_error(response))
    body = response.json()
    starts = None
    if response_format == "verbose_json":
        starts = [float(s["start"]) for s in body.get("segments") or []]
    return Reply(str(body.get("text", "")), latency, starts)


def _once(url: str, workload: Workload, words: bool) -> tuple[float, list[Reply]]:
    started = time.perf_counter()
    if workload.concurrent:
        with ThreadPoolExecutor(len(workload.files)) as pool:
            replies = list(pool.map(lambda f: request(url, f, words=words), workload.files))
    else:
        replies = [request(url, f, words=words) for f in workload.files]
    return time.perf_counter() - started, replies


def _segments(url: str, workload: Workload, outcome: Outcome) -> None:
    starts: list[list[float]] = []
    for path in workload.files:
        reply = request(url, path, "verbose_json")
        if reply.error or reply.segment_starts is None:
            outcome.segments_note = reply.error or "no segments in verbose_json"
            return
        starts.append(reply.segment_starts)
    outcome.segment_starts = starts


def run_http(url: str, workload: Workload, reps: int, words: bool = False) -> Outcome:
    """`reps` timed passes (json, or verbose_json with words), then, where onsets are scored, one
    untimed verbose_json pass."""
    outcome = Outcome()
    for _ in range(reps):
        wall, replies = _once(url, workload, words)
        outcome.walls.append(wall)
        outcome.latencies += [r.latency for r in replies]
        outcome.failures += [r.error for r in replies if r.error]
        outcome.texts = [r.text for r in replies]
    if workload.onsets is not None:
        _segments(url, workload, outcome)
    return outcome


def warm_up(url: str, path: Path) -> str | None:
    """One request before timing; its error, if any."""
    return request(url, path).error
