"""The HTTP systems under test: speech-gateway and vLLM's own OpenAI server, started on loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from config import engine_environment, load_settings

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 900
SERVED_NAME = "bench"


class StartFailure(RuntimeError):
    """A server exited or never became ready."""


@dataclass(frozen=True)
class ServerConfig:
    model_dir: Path
    eager: bool
    dtype: str
    log: Path


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(log: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def start(name: str, command: list[str], env: dict[str, str], port: int, ready_path: str, log: Path) -> Server:
    """Start `command` and wait until `ready_path` answers 200; StartFailure otherwise."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartFailure(f"{name} exited with {process.returncode} while starting: {_tail(log)}")
        try:
            if httpx.get(url + ready_path, timeout=2).status_code == 200:
                return Server(name, process, url)
        except httpx.HTTPError:
            pass
        time.sleep(1)
    Server(name, process, url).stop()
    raise StartFailure(f"{name} did not start within {START_TIMEOUT_S} s; see {log}")


def ours(config: ServerConfig, extra: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "SPEECH_GATEWAY_MODEL": str(config.model_dir),
        "SPEECH_GATEWAY_SERVED_MODEL_NAME": SERVED_NAME,
        "SPEECH_GATEWAY_PORT": str(port),
        "SPEECH_GATEWAY_ENFORCE_EAGER": "1" if config.eager else "0",
        "SPEECH_GATEWAY_DTYPE": config.dtype,
        "SPEECH_GATEWAY_GPU_MEMORY_UTILIZATION": "0.35",
        "SPEECH_GATEWAY_LOG_LEVEL": "warning",
        **(extra or {}),
    }
    return start("speech-gateway", [sys.executable, "-m", "app"], env, port, "/ready", config.log)


def ours_shared(config: ServerConfig) -> Server:
    """Ours with shared windows turned on (off by default), as an operator may choose."""
    return ours(config, {"SPEECH_GATEWAY_WINDOW_SHARING_WAIT_MS": "500"})


def _vllm(name: str, config: ServerConfig, env: dict[str, str]) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(config.model_dir),
        "--served-model-name", SERVED_NAME, "--port", str(port), "--host", "127.0.0.1", "--dtype", config.dtype,
        "--gpu-memory-utilization", "0.35", "--disable-log-stats",
    ] + (["--enforce-eager"] if config.eager else [])  # fmt: skip
    return start(name, command, env, port, "/health", config.log)


def vllm_tuned(config: ServerConfig) -> Server:
    """vLLM's server with the same engine tuning as ours (the model on every core)."""
    return _vllm("vLLM tuned", config, {**os.environ, **engine_environment(load_settings())})


def vllm_shipped(config: ServerConfig) -> Server:
    """vLLM's server as it ships: its own core reservation."""
    tuned = engine_environment(load_settings())
    return _vllm("vLLM shipped", config, {k: v for k, v in os.environ.items() if k not in tuned})


STARTERS: dict[str, Callable[[ServerConfig], Server]] = {
    "ours": ours,
    "ours-words": ours,
    "ours-shared": ours_shared,
    "vllm": vllm_tuned,
    "vllm-shipped": vllm_shipped,
}
