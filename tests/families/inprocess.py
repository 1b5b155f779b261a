"""The real app served in this process: `create_app` under uvicorn on a loopback port, in its own thread and loop.

One such server per family gives the family tier one engine start where it had two (a parity engine and a server
subprocess). Clients reach it over a real socket; parity tests run the same engine's `generate` on the server's own
loop, where vLLM's output handler lives. Its log file gets what a server subprocess would print: our and uvicorn's
records, vLLM's logger, and the output of the engine's processes, so `assert_no_unhandled_errors` reads it as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.cli import uvicorn_options
from app.main import create_app
from app.ops.logs import JSONFormatter, TextFormatter
from app.state import Gateway, Runtime
from config import Settings
from models.interface import GenerationRequest, GenerationResult
from tests.e2e.servers import READY_TIMEOUT_S, assert_no_unhandled_errors, free_port

log = logging.getLogger("tests.inprocess")
# vLLM's logger prints through its own handler and does not propagate to the root logger.
OWN_HANDLER_LOGGERS = ("vllm",)
STOP_TIMEOUT_S = 120
# The servers started and not yet stopped: the tier holds at most one engine at a time.
RUNNING: list[InProcessServer] = []


@dataclass
class InProcessServer:
    base_url: str
    log_path: Path
    app: FastAPI
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    handler: logging.Handler
    root_level: int

    def alive(self) -> bool:
        return self.thread.is_alive()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def runtime(self) -> Runtime:
        gateway = self.app.state.gateway
        assert isinstance(gateway, Gateway) and gateway.runtime is not None, "the app's lifespan has not started"
        return gateway.runtime

    async def generate(self, request: GenerationRequest, request_id: str) -> GenerationResult:
        """The serving engine's `generate`, run on the server's loop; cancelling the caller aborts it there."""
        future = asyncio.run_coroutine_threadsafe(self.runtime.engine.generate(request, request_id), self.loop)
        return await asyncio.wrap_future(future)


def serve(loop: asyncio.AbstractEventLoop, server: uvicorn.Server) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(server.serve())
        loop.run_until_complete(loop.shutdown_asyncgens())
    except BaseException:  # into the log file, where the tier's scan finds it
        log.exception("the in-process server's thread failed")
    finally:
        loop.close()


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """This process's stdout and stderr descriptors into `path` while the engine starts: its processes inherit
    them and keep writing there (Python-level output of this process goes where pytest's capture sends it)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


def attach_log(path: Path, settings: Settings) -> tuple[logging.Handler, int]:
    """Every record of the server's level into `path`, formatted as the server formats them."""
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(JSONFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in OWN_HANDLER_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    return handler, level


def detach_log(handler: logging.Handler, root_level: int) -> None:
    root = logging.getLogger()
    root.removeHandler(handler)
    root.setLevel(root_level)
    for name in OWN_HANDLER_LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def wait_ready(running: InProcessServer) -> None:
    """Until `/ready` answers 200 on the socket; the thread ending first means the start failed."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not running.alive():
            pytest.fail(f"the server stopped while starting:\n{running.log_tail()}")
        try:
            if httpx.get(f"{running.base_url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server was not ready within {READY_TIMEOUT_S} s:\n{running.log_tail()}")


def start(settings: Settings, log_dir: Path) -> InProcessServer:
    """`create_app(settings)` served on a free loopback port; returns once `/ready` answers."""
    assert not RUNNING, f"a server still runs: {[s.base_url for s in RUNNING]}"
    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=port, **uvicorn_options(settings))
    factory = config.get_loop_factory()  # the loop `uvicorn.run` would use (uvloop where installed)
    loop = factory() if factory is not None else asyncio.new_event_loop()
    server = uvicorn.Server(config)
    log_path = log_dir / f"server-{port}.log"
    handler, root_level = attach_log(log_path, settings)
    thread = threading.Thread(target=serve, args=(loop, server), name=f"server-{port}", daemon=True)
    running = InProcessServer(f"http://127.0.0.1:{port}", log_path, app, server, loop, thread, handler, root_level)
    RUNNING.append(running)
    try:
        with output_to(log_path):
            thread.start()
            wait_ready(running)
    except BaseException:
        stop(running)
        raise
    return running


def stop(running: InProcessServer) -> None:
    """Shut down as SIGTERM does (requests in flight finish, the lifespan stops the engine), then read the log."""
    if running not in RUNNING:
        return
    RUNNING.remove(running)
    running.server.should_exit = True
    if running.thread.ident is not None:  # started
        running.thread.join(STOP_TIMEOUT_S)
    detach_log(running.handler, running.root_level)
    assert not running.thread.is_alive(), f"the server did not stop within {STOP_TIMEOUT_S} s"
    gateway = running.app.state.gateway
    assert gateway.runtime is None, "the lifespan did not stop the engine"
    assert_no_unhandled_errors(running)
