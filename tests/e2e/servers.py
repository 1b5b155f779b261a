"""The real servers of the e2e tier (`python -m app` subprocesses), each started ahead of its first test.

A start takes about a minute, most of it three processes (gateway, engine core, worker) importing
torch and vLLM one after another. The collected tests tell which servers the session needs and in
what order; the first two start as the session begins, beside the quick tiers (which run first),
and each time a module lets its server go, the next one starts. So no more servers are up at once
than when each module started its own.

A start only pays beside tests that wait more than they compute: beside the 128-request burst it
cost the burst what it saved (171 s instead of 112 s on a 2-core AMD EPYC). So the first module
with a server of its own (`test_multimodel`) starts it beside the quick tiers, and the next two
(`test_shutdown_and_keys`, `test_window_sharing`) sort after the browser and realtime tests, whose
clocks run in real time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import pytest

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


def await_exit(server: Server, grace_s: float = 60) -> int | None:
    """The exit code of a server asked to stop (killed if it takes longer than `grace_s`)."""
    try:
        server.process.wait(grace_s)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    return server.process.returncode


# For the servers a module starts for itself: vLLM's one-process executor runs the model in the engine
# core's process, without a worker process of its own to spawn (one start of torch and vLLM fewer: about
# 10 s a start here). The session's server keeps vLLM's default layout, as users run it.
ONE_PROCESS_ENGINE = {"SPEECH_GATEWAY_DISTRIBUTED_EXECUTOR_BACKEND": "uni"}


# The session's server and the next module's: the most that were ever up at once.
LIVE = 2


@dataclass(frozen=True)
class Plan:
    """A server a fixture hands to its tests: the environment it starts with, given a folder of its own."""

    fixture: str
    env: Callable[[Path], dict[str, str]]


@dataclass(frozen=True)
class Started:
    server: Server
    folder: Path  # the plan's own folder (where its environment put what it needs)


class Ahead:
    """Starts the planned servers in the order the session's tests first use them, at most LIVE at once."""

    def __init__(self) -> None:
        self.plans: dict[str, Plan] = {}
        self.queue: list[str] = []
        self.running: dict[str, Started] = {}
        self.stopping: list[Server] = []  # let go, exit not yet awaited
        self.folders: pytest.TempPathFactory | None = None

    def plan(self, fixture: str, env: Callable[[Path], dict[str, str]]) -> None:
        self.plans[fixture] = Plan(fixture, env)

    def begin(self, items: Sequence[pytest.Item], folders: pytest.TempPathFactory) -> None:
        self.folders = folders
        for item in items:
            for name in getattr(item, "fixturenames", ()):
                if name in self.plans and name not in self.queue:
                    self.queue.append(name)
        self._fill()

    def take(self, fixture: str, folders: pytest.TempPathFactory) -> Started:
        """The fixture's server, started now if it was not already (then wait for it with `wait_ready`)."""
        self.folders = self.folders or folders
        if fixture not in self.running:
            self._start(fixture)
        return self.running[fixture]

    def served(self, fixture: str, folders: pytest.TempPathFactory) -> Iterator[Server]:
        """A fixture's body: its server once ready; let go after its tests, and its log (so far) held to no
        unhandled error."""
        running = self.take(fixture, folders).server
        try:
            wait_ready(running)
            yield running
        finally:
            self.release(fixture)
        assert_no_unhandled_errors(running)

    def release(self, fixture: str) -> None:
        """Ask the fixture's server to stop and start the next one planned, without waiting for the exit
        (vLLM's engine takes 5-8 s to go); `end` waits for it and reads its log to the end."""
        started = self.running.pop(fixture, None)
        if started is not None:
            self._stop(started.server)
        self._fill()

    def end(self) -> None:
        for fixture in list(self.running):
            self._stop(self.running.pop(fixture).server)
        self.queue.clear()
        stopped, self.stopping = self.stopping, []
        for server in stopped:
            await_exit(server)
        for server in stopped:  # what their shutdowns logged
            assert_no_unhandled_errors(server)

    def _stop(self, server: Server) -> None:
        if server.alive():
            server.process.send_signal(signal.SIGTERM)
        self.stopping.append(server)

    def _fill(self) -> None:
        while self.queue and len(self.running) < LIVE:
            self._start(self.queue[0])

    def _start(self, fixture: str) -> None:
        if fixture in self.queue:
            self.queue.remove(fixture)
        assert self.folders is not None
        folder = self.folders.mktemp(fixture)
        self.running[fixture] = Started(start_server(folder, self.plans[fixture].env(folder)), folder)


AHEAD = Ahead()
