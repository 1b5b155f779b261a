"""The realtime session state machine (buffer, turns, commits) and the ordering of item transcriptions."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from app.audio.vad import FRAME
from app.realtime.events import EventError, SessionConfig, TurnDetection
from app.realtime.items import Transcriptions
from app.realtime.session import Commit, Session
from app.realtime.turns import BLOCK_FRAMES, CONTEXT_FRAMES

RATE = 24_000


class LoudFrames:
    """A detector without a model: a frame is speech when it is loud."""

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        frames = samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME)
        return (np.sqrt((frames**2).mean(axis=1)) > 0.05).astype(np.float32)


def accept_all(config: SessionConfig) -> None:
    if config.model != "m":
        raise EventError("no such model", "model_not_found", "model")


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def append(samples: np.ndarray, event_id: str | None = None) -> str:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    event: dict[str, Any] = {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
    if event_id:
        event["event_id"] = event_id
    return json.dumps(event)


VAD = TurnDetection()


def session(turns: TurnDetection | None = VAD, max_buffer_s: float = 30) -> Session:
    return Session(SessionConfig("m", turn_detection=turns), LoudFrames(), accept_all, max_buffer_s)


def stream(s: Session, audio: np.ndarray, chunk_s: float = 0.1) -> tuple[list[dict[str, Any]], list[Commit]]:
    events: list[dict[str, Any]] = []
    commits: list[Commit] = []
    step = int(chunk_s * RATE)
    for i in range(0, len(audio), step):
        out = s.receive(append(audio[i : i + step]))
        events += out.events
        commits += out.commits
    return events, commits


def test_server_vad_finds_the_turn_and_commits_it() -> None:
    s = session()
    events, commits = stream(s, np.concatenate([silence(2), tone(1.5), silence(1.5)]))
    kinds = [e["type"] for e in events]
    assert kinds == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    started, stopped, committed = events
    assert 1600 <= started["audio_start_ms"] <= 1750  # 2 s less the 300 ms prefix padding
    assert 3950 <= stopped["audio_end_ms"] <= 4200  # 3.5 s plus the 500 ms of silence
    assert started["item_id"] == stopped["item_id"] == committed["item_id"] == commits[0].item_id
    assert committed["previous_item_id"] is None
    seconds = len(commits[0].samples) / RATE
    assert abs(seconds - (stopped["audio_end_ms"] - started["audio_start_ms"]) / 1000) < 0.05
    # A second turn follows the first.
    events, more = stream(s, np.concatenate([tone(1.0), silence(1.0)]))
    assert [e["type"] for e in events][-1] == "input_audio_buffer.committed"
    assert events[-1]["previous_item_id"] == commits[0].item_id and len(more) == 1


def test_manual_commit_and_clear() -> None:
    s = session(turns=None)
    events, commits = stream(s, np.concatenate([silence(0.5), tone(1.0), silence(0.5)]))
    assert events == [] and commits == []
    out = s.receive(json.dumps({"type": "input_audio_buffer.commit"}))
    assert [e["type"] for e in out.events] == ["input_audio_buffer.committed"]
    assert len(out.commits[0].samples) == 2 * RATE
    empty = s.receive(json.dumps({"type": "input_audio_buffer.commit", "event_id": "c1"}))
    assert empty.events[0]["error"]["code"] == "input_audio_buffer_commit_empty"
    assert empty.events[0]["error"]["event_id"] == "c1"
    stream(s, tone(1.0))
    cleared = s.receive(json.dumps({"type": "input_audio_buffer.clear"}))
    assert cleared.events[0]["type"] == "input_audio_buffer.cleared" and s.buffered == 0


def test_bad_events_leave_the_session_as_it_was() -> None:
    s = session(turns=None)
    stream(s, tone(0.5))
    for bad in ("{", json.dumps({"type": "nope"}), json.dumps({"type": "input_audio_buffer.append", "audio": "%%"})):
        out = s.receive(bad)
        assert [e["type"] for e in out.events] == ["error"] and not out.commits
    assert s.buffered == RATE // 2


def test_a_full_buffer_refuses_appends_without_turn_detection() -> None:
    s = session(turns=None, max_buffer_s=1)
    stream(s, tone(1.0))
    out = s.receive(append(tone(0.1), "a1"))
    assert out.events[0]["error"]["code"] == "input_audio_buffer_full" and s.buffered == RATE


def test_long_speech_is_committed_as_it_goes() -> None:
    s = session(max_buffer_s=2)
    events, commits = stream(s, np.concatenate([silence(0.5), tone(5.0), silence(1.0)]))
    assert len(commits) >= 3
    assert all(len(c.samples) <= 2 * RATE for c in commits)
    assert [e["type"] for e in events].count("input_audio_buffer.speech_started") == len(commits)


def test_update_checks_the_model_and_answers_in_kind() -> None:
    s = session()
    ga = s.receive(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {}}}}))
    assert ga.events[0]["type"] == "session.updated"
    beta = s.receive(json.dumps({"type": "transcription_session.update", "session": {"turn_detection": None}}))
    assert beta.events[0]["type"] == "transcription_session.updated" and s.config.turn_detection is None
    unknown = {"type": "session.update", "session": {"audio": {"input": {"transcription": {"model": "x"}}}}}
    error = s.receive(json.dumps(unknown)).events[0]["error"]
    assert error["code"] == "model_not_found" and error["param"] == "session.audio.input.transcription.model"
    assert s.config.model == "m"


async def test_completions_go_out_in_commit_order_and_close_cancels() -> None:
    sent: list[str] = []
    cancelled: list[str] = []
    gate = asyncio.Event()

    async def run(commit: Commit) -> AsyncIterator[dict[str, Any]]:
        try:
            if commit.item_id == "slow":
                await asyncio.sleep(0.05)
            if commit.item_id == "stuck":
                await gate.wait()
            yield {"type": "completed", "item_id": commit.item_id}
        except asyncio.CancelledError:
            cancelled.append(commit.item_id)
            raise

    async def send(event: dict[str, Any]) -> None:
        sent.append(event["item_id"])

    items = Transcriptions(run, send)
    config = SessionConfig("m")
    for name in ("slow", "fast", "stuck"):
        items.start(Commit(name, silence(0.1), config))
    await asyncio.sleep(0.1)
    assert sent == ["slow", "fast"] and items.busy
    await items.close()
    assert cancelled == ["stuck"]


@pytest.mark.parametrize("turns", [None, TurnDetection()])
def test_created_event_shows_the_session(turns: TurnDetection | None) -> None:
    created = session(turns).created()
    assert created["type"] == "session.created" and created["session"]["type"] == "transcription"


def test_the_detector_reads_windows_of_one_size_and_each_frame_once() -> None:
    sizes: list[int] = []

    class Recording(LoudFrames):
        def probabilities(self, samples: np.ndarray) -> np.ndarray:
            sizes.append(len(samples))
            return super().probabilities(samples)

    s = Session(SessionConfig("m"), Recording(), accept_all, 30)
    stream(s, np.concatenate([silence(3), tone(1), silence(3)]), chunk_s=0.07)
    assert set(sizes) == {(CONTEXT_FRAMES + BLOCK_FRAMES) * FRAME}
    judged_s = len(sizes) * BLOCK_FRAMES * FRAME / 16_000
    assert 7 - 0.2 < judged_s <= 7
