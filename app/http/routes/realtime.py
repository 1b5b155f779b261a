"""`GET /v1/realtime?intent=transcription` as a WebSocket: OpenAI's Realtime transcription sessions.

A refused connection is accepted, told why in one `error` event, and closed (1008: policy, 1013:
try again later), so browsers, which never see a handshake's status, can show the reason too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.audio.decode import Audio, resample
from app.http.auth import key_matches
from app.realtime.events import RATE, EventError, SessionConfig, error_event
from app.realtime.items import Transcriptions, transcribe
from app.realtime.session import Commit, Session
from app.state import Gateway, Served
from config import Settings
from models.interface import DecodeOptions, ModelInputError

log = logging.getLogger("speech_gateway.realtime")

KEY_PROTOCOL = "openai-insecure-api-key."
POLICY, SERVER_ERROR, TRY_AGAIN_LATER = 1008, 1011, 1013
# How long a closing frame may wait for room in a socket the client no longer reads; past it the
# handler returns and the server closes the transport without it.
CLOSE_WAIT_S = 2.0


def _subprotocol(websocket: WebSocket) -> str | None:
    """`realtime` where offered (browsers fail a handshake that answers none of theirs), else none."""
    offered = websocket.scope.get("subprotocols") or []
    if "realtime" in offered:
        return "realtime"
    return next((p for p in offered if not p.startswith(KEY_PROTOCOL)), None)


def _given_key(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for protocol in websocket.scope.get("subprotocols") or []:
        if protocol.startswith(KEY_PROTOCOL):
            return str(protocol[len(KEY_PROTOCOL) :])
    return None


def _refusal(websocket: WebSocket, settings: Settings, served: Served | None) -> tuple[EventError, int] | None:
    keys = [k for k in settings.api_key if k]
    if keys:
        given = _given_key(websocket)
        if given is None:
            message = (
                "You didn't provide an API key. Send it as `Authorization: Bearer YOUR_KEY` or as the "
                "WebSocket subprotocol `openai-insecure-api-key.YOUR_KEY`."
            )
            return EventError(message, "missing_api_key"), POLICY
        if not key_matches(given, keys):
            return EventError("Incorrect API key provided.", "invalid_api_key"), POLICY
    if served is None:
        return EventError("the model is still loading; retry shortly", "model_loading", type="server_error"), (
            TRY_AGAIN_LATER
        )
    intent = websocket.query_params.get("intent", "transcription")
    if intent != "transcription":
        message = "This server serves transcription sessions only: connect with `?intent=transcription`."
        return EventError(message, "invalid_value", "intent"), POLICY
    model = websocket.query_params.get("model")
    if model is not None and served.find(model) is None:
        return _model_not_found(model, "model"), POLICY
    return None


def _model_not_found(name: str, param: str) -> EventError:
    message = f"The model `{name[:100]}` does not exist or you do not have access to it."
    return EventError(message, "model_not_found", param)


def _checker(served: Served) -> Any:
    def check(config: SessionConfig) -> None:
        runtime = served.find(config.model)
        if runtime is None:
            raise _model_not_found(config.model, "model")
        try:
            runtime.transcriber.check(DecodeOptions(task="transcribe", language=config.language, prompt=config.prompt))
        except ModelInputError as error:
            raise EventError(str(error), error.code or "invalid_value", error.param) from None

    return check


async def _refuse(websocket: WebSocket, error: EventError, close_code: int) -> None:
    await websocket.send_text(json.dumps(error_event(error)))
    await _close(websocket, close_code, error.code)


async def _last_word(websocket: WebSocket, step: Callable[[], Awaitable[None]]) -> None:
    """`step()` on a socket still open, given up after `CLOSE_WAIT_S` or once the client is gone."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(TimeoutError, WebSocketDisconnect, RuntimeError):
        async with asyncio.timeout(CLOSE_WAIT_S):
            await step()


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with `code`, unless the client is gone or reads nothing (then the transport just closes)."""
    await _last_word(websocket, lambda: websocket.close(code, reason[:100]))


async def _fail(websocket: WebSocket) -> None:
    """An unexpected failure of the session, told without internals: `error` (server_error), then 1011."""
    failure = EventError(
        "the server failed to process this session; it is closed", "internal_error", type="server_error"
    )
    await _last_word(websocket, lambda: websocket.send_text(json.dumps(error_event(failure))))
    await _close(websocket, SERVER_ERROR, failure.code)


class _Outbox:
    """Sends server events one at a time; a client that takes none of them for `timeout_s` is `stalled`.

    A send waits only while the socket's buffers are full, that is while the client reads nothing.
    Once stalled, events are dropped: the session loop sees the flag and ends the session.
    """

    def __init__(self, websocket: WebSocket, timeout_s: float) -> None:
        self._websocket = websocket
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self.stalled = asyncio.Event()

    async def send(self, event: dict[str, Any]) -> None:
        async with self._lock:
            if self.stalled.is_set() or self._websocket.application_state != WebSocketState.CONNECTED:
                return
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._websocket.send_text(json.dumps(event, ensure_ascii=False))
            except TimeoutError:
                self.stalled.set()


class _Sessions:
    """Counts open sessions against `max_sessions`."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self.open = 0


def build_router(settings: Settings) -> APIRouter:
    """The route, with its own count of open sessions."""
    router = APIRouter()
    sessions = _Sessions(settings.realtime_max_sessions)

    @router.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        gateway: Gateway = websocket.app.state.gateway
        await websocket.accept(subprotocol=_subprotocol(websocket))
        refusal = _refusal(websocket, settings, gateway.served)
        if refusal is None and sessions.open >= sessions.max_sessions:
            message = f"the server is serving its limit of {sessions.max_sessions} realtime sessions; retry later"
            refusal = EventError(message, "session_limit_reached", type="rate_limit_error"), TRY_AGAIN_LATER
        if refusal is not None:
            await _refuse(websocket, *refusal)
            return
        assert gateway.served is not None
        sessions.open += 1
        gateway.metrics.realtime_sessions.set(sessions.open)
        log.info("realtime session opened (%d open)", sessions.open)
        try:
            await _serve(websocket, gateway, gateway.served)
        except WebSocketDisconnect:
            pass
        except Exception:
            # A bug, not the client's doing: logged with its traceback, told to the client without.
            log.exception("realtime session failed")
            await _fail(websocket)
        finally:
            sessions.open -= 1
            gateway.metrics.realtime_sessions.set(sessions.open)
            log.info("realtime session closed (%d open)", sessions.open)

    return router


async def _serve(websocket: WebSocket, gateway: Gateway, served: Served) -> None:
    """The session's loop: client events in, server events out, until either side closes.

    Each committed item is transcribed by the model the session's configuration named at its commit.
    """
    settings = gateway.settings
    runtime = served.default
    model = websocket.query_params.get("model") or runtime.served_name
    session = Session(
        SessionConfig(model=model), runtime.transcriber.vad, _checker(served), settings.realtime_max_buffer_s
    )
    outbox = _Outbox(websocket, settings.realtime_send_timeout_s)

    def run(commit: Commit) -> AsyncIterator[dict[str, Any]]:
        request_id = f"rt-{session.id}-{commit.item_id}"
        transcriber = served.pick(commit.config.model).transcriber  # checked when the session named it
        return transcribe(
            transcriber, commit, request_id, gateway.admission, settings.request_timeout_s, gateway.metrics
        )

    items = Transcriptions(run, outbox.send)
    # The resampler loads its filters on first use (about 1.5 s): not in the way of the first turn.
    rate = runtime.model.get_speech_to_text_config("transcribe").sample_rate
    warm = asyncio.create_task(asyncio.to_thread(resample, Audio(np.zeros(RATE // 10, dtype=np.float32), RATE), rate))
    try:
        await outbox.send(session.created())
        await _loop(websocket, session, items, outbox, settings)
    finally:
        await items.close()
        await warm


async def _next(websocket: WebSocket, outbox: _Outbox, idle_s: float) -> Message | None:
    """The client's next message; None when it sent nothing for `idle_s` or stopped reading (stalled)."""
    receive = asyncio.ensure_future(websocket.receive())
    stalled = asyncio.ensure_future(outbox.stalled.wait())
    try:
        done, _ = await asyncio.wait({receive, stalled}, timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stalled.cancel()
        receive.cancel()  # no-op when done; a pending receive loses nothing (the queue keeps the message)
    return receive.result() if receive in done and not outbox.stalled.is_set() else None


async def _loop(
    websocket: WebSocket, session: Session, items: Transcriptions, outbox: _Outbox, settings: Settings
) -> None:
    limit = int(settings.realtime_max_message_mb * 1024 * 1024)
    while True:
        message = await _next(websocket, outbox, settings.realtime_idle_timeout_s)
        if outbox.stalled.is_set():
            log.warning("realtime client read nothing for %.0f s; session cut off", settings.realtime_send_timeout_s)
            await _close(websocket, POLICY, "slow_client")
            return
        if message is None:
            if items.busy:
                continue
            idle = f"no client event for {settings.realtime_idle_timeout_s:.0f} s; the session is closed"
            await outbox.send(error_event(EventError(idle, "idle_timeout")))
            await _close(websocket, 1000, "idle_timeout")
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text") if message.get("text") is not None else message.get("bytes")
        if data is None:
            continue
        if len(data) > limit:
            too_big = (
                f"the event is larger than the limit of {settings.realtime_max_message_mb:g} MB; send smaller chunks"
            )
            await outbox.send(error_event(EventError(too_big, "message_too_large")))
            continue
        outcome = await asyncio.to_thread(session.receive, data)
        for event in outcome.events:
            await outbox.send(event)
        for commit in outcome.commits:
            items.start(commit)
