"""How a Realtime session ends when something goes wrong: a bug (error event, then 1011) and a client
that stops reading (cut off; its session slot comes back). The app runs on a real uvicorn socket,
with the scripted engine, since only a real socket's buffers fill up."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import uvicorn
from starlette.testclient import TestClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.main import create_app
from app.ops.metrics import Metrics
from app.scheduling.pipeline import Transcriber
from app.state import Runtime
from config import Settings, load_settings
from models.whisper import WhisperModel
from tests.api.conftest import ScriptedEngine
from tests.api.test_realtime_api import URL, pcm

SEND_TIMEOUT_S = 1.0
FLOOD_MAX = 2_000  # client events sent, at most, before the server's sends must have stalled
# Each update echoes its 200 KB prompt back in `session.updated`: socket buffers (a few MB) fill fast.
ECHOED = json.dumps(
    {"type": "session.update", "session": {"audio": {"input": {"transcription": {"prompt": "word " * 40_000}}}}}
)


class BrokenVad:
    """A speech detector with a bug: what a session does with an exception nobody expected."""

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        raise RuntimeError("/secret/path/vad.py exploded")


def app_with(model: WhisperModel, vad: Any = None, **overrides: Any) -> Any:
    async def runtime(s: Settings, metrics: Metrics) -> Runtime:
        engine = ScriptedEngine(model)
        transcriber = Transcriber(model, engine, vad=vad) if vad else Transcriber(model, engine)
        return Runtime(s, model, engine, transcriber, "whisper-base")

    return create_app(load_settings({}, **overrides), runtime)


def test_an_unexpected_failure_is_an_error_event_then_1011(whisper_base: WhisperModel) -> None:
    with TestClient(app_with(whisper_base, BrokenVad())) as client, client.websocket_connect(URL) as ws:
        assert ws.receive_json()["type"] == "session.created"
        ws.send_text(json.dumps({"type": "input_audio_buffer.append", "audio": pcm(0.5)}))  # server VAD on
        event = ws.receive_json()
        assert event["type"] == "error" and event["error"]["type"] == "server_error"
        assert "secret" not in json.dumps(event) and "exploded" not in json.dumps(event)
        closed = ws.receive()
        assert closed == {"type": "websocket.close", "code": 1011, "reason": "internal_error"}
        assert "speech_gateway_realtime_sessions 0.0" in client.get("/metrics").text


@pytest.fixture
def live(whisper_base: WhisperModel) -> Iterator[str]:
    """The app on a loopback port: one realtime session at a time, slow readers cut off after 1 s."""
    app = app_with(whisper_base, realtime_max_sessions=1, realtime_send_timeout_s=SEND_TIMEOUT_S)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        threading.Event().wait(0.05)
    try:
        yield f"ws://127.0.0.1:{port}{URL}"
    finally:
        server.should_exit = True
        thread.join(30)


def small_window_socket(url: str) -> socket.socket:
    """A client socket with a small receive buffer, so the server's sends stall early."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    port = int(url.split(":")[2].split("/")[0])
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def flood(ws: ClientConnection) -> int:
    """Send events that each earn a large reply, reading none, until the server stops taking them.

    Once the session is cut off the server may read and drop a while longer (uvicorn does, after a
    close frame got out), so this stops at FLOOD_MAX as well; the returned count is for the log.
    """
    for sent in range(FLOOD_MAX):
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await ws.send(ECHOED)
        except (TimeoutError, ConnectionClosed):
            return sent
    return FLOOD_MAX


async def session_opens(url: str) -> bool:
    async with connect(url) as ws:
        return bool(json.loads(await ws.recv())["type"] == "session.created")


async def test_a_client_that_stops_reading_is_cut_off_and_its_slot_comes_back(
    live: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The client takes no message off its socket: after 16 unread messages it stops reading at all.
    # No compression: the 200 KB replies must be 200 KB on the wire.
    stalled = await connect(live, sock=small_window_socket(live), max_queue=16, compression=None)
    flooding: asyncio.Task[int] | None = None
    try:
        assert not await session_opens(live), "the one session slot should be taken"
        flooding = asyncio.create_task(flood(stalled))
        # Cut off after SEND_TIMEOUT_S of stalled sends (and CLOSE_WAIT_S for a close nobody reads):
        # the one slot serves a new session while the first client is still connected.
        began = asyncio.get_running_loop().time()
        async with asyncio.timeout(60):
            while not await session_opens(live):
                await asyncio.sleep(0.2)
        print(f"\nslot back after {asyncio.get_running_loop().time() - began:.1f} s")
        assert "read nothing" in caplog.text
        print(f"\nslow reader: cut off; {await flooding} events sent unread")
    finally:
        if flooding is not None:
            flooding.cancel()
        stalled.transport.abort()
