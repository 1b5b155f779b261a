"""`make bench`: speech-gateway against vLLM's own OpenAI server, same model, same machine, same run.

Each server is started in turn on a loopback port with the same converted checkpoint, the dtype
`auto` resolves to and the same eager mode, warmed up, then given the same workloads. vLLM's
server runs twice: with our engine tuning and as shipped. Printed: audio seconds per wall second
(RTFx), word error rate against the spoken text, and the ratio ours / each baseline.

    python -m bench.run [--reps 3] [--only ours|vllm|vllm-shipped] [--compiled]
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from app.engine import resolve_dtype
from config import engine_environment, load_settings
from models.source import resolve
from tests.speech import SENTENCES, compose, speak, wer, write_wav

ROOT = Path(__file__).resolve().parents[1]
BASELINES = {
    "vllm": "vLLM 0.32 /v1/audio/transcriptions (python -m vllm.entrypoints.openai.api_server), "
    "with our engine tuning (the model on every core)",
    "vllm-shipped": "the same server as shipped (vLLM's own CPU core reservation)",
}


@dataclass
class Workload:
    name: str
    files: list[Path]
    references: list[str]
    concurrent: bool

    @property
    def audio_s(self) -> float:
        import soundfile as sf

        return sum(sf.info(str(f)).duration for f in self.files)


def workloads(directory: Path) -> list[Workload]:
    sixty = list(itertools.islice(itertools.cycle(SENTENCES), 17))
    long = list(itertools.islice(itertools.cycle(SENTENCES), 100))
    short = SENTENCES[:21]
    one_sixty = write_wav(directory / "sixty.wav", compose(sixty, 0.5))
    clips = [write_wav(directory / f"short-{i}.wav", speak(s)) for i, s in enumerate(short)]
    recording = write_wav(directory / "long.wav", compose(long, 0.7))
    return [
        Workload("1 min clip, one request", [one_sixty], [" ".join(sixty)], False),
        Workload("21 short clips at once", clips, short, True),
        Workload("6 min recording, one request", [recording], [" ".join(long)], False),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(name: str, command: list[str], env: dict[str, str], port: int, ready_path: str, log: Path) -> Server:
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} exited while starting; see {log}")
        try:
            if httpx.get(url + ready_path, timeout=2).status_code == 200:
                return Server(name, process, url)
        except httpx.HTTPError:
            pass
        time.sleep(1)
    process.kill()
    sys.exit(f"{name} did not start within 900 s; see {log}")


def ours(model_dir: Path, eager: bool, dtype: str, log: Path) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "SPEECH_GATEWAY_MODEL": str(model_dir),
        "SPEECH_GATEWAY_SERVED_MODEL_NAME": "bench",
        "SPEECH_GATEWAY_PORT": str(port),
        "SPEECH_GATEWAY_ENFORCE_EAGER": "1" if eager else "0",
        "SPEECH_GATEWAY_DTYPE": dtype,
        "SPEECH_GATEWAY_GPU_MEMORY_UTILIZATION": "0.35",
        "SPEECH_GATEWAY_LOG_LEVEL": "warning",
    }
    return start("speech-gateway", [sys.executable, "-m", "app"], env, port, "/ready", log)


def _vllm(name: str, model_dir: Path, eager: bool, dtype: str, log: Path, env: dict[str, str]) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
        "--served-model-name", "bench", "--port", str(port), "--host", "127.0.0.1", "--dtype", dtype,
        "--gpu-memory-utilization", "0.35", "--disable-log-stats",
    ] + (["--enforce-eager"] if eager else [])  # fmt: skip
    return start(name, command, env, port, "/health", log)


def vllm_tuned(model_dir: Path, eager: bool, dtype: str, log: Path) -> Server:
    """vLLM's server with the same engine tuning as ours (the model on every core)."""
    return _vllm("vLLM tuned", model_dir, eager, dtype, log, {**os.environ, **engine_environment(load_settings())})


def vllm_shipped(model_dir: Path, eager: bool, dtype: str, log: Path) -> Server:
    """vLLM's server as it ships: its own core reservation."""
    tuned = engine_environment(load_settings())
    return _vllm("vLLM shipped", model_dir, eager, dtype, log, {k: v for k, v in os.environ.items() if k not in tuned})


def transcribe(url: str, path: Path) -> str:
    with httpx.Client(timeout=1800) as client:
        response = client.post(
            url + "/v1/audio/transcriptions",
            files={"file": (path.name, path.read_bytes(), "audio/wav")},
            data={"model": "bench", "language": "en", "response_format": "json"},
        )
    if response.status_code != 200:
        return f"<HTTP {response.status_code}>"
    return str(response.json().get("text", ""))


def run_workload(url: str, workload: Workload) -> tuple[float, list[str]]:
    started = time.perf_counter()
    if workload.concurrent:
        with ThreadPoolExecutor(len(workload.files)) as pool:
            texts = list(pool.map(lambda f: transcribe(url, f), workload.files))
    else:
        texts = [transcribe(url, f) for f in workload.files]
    return time.perf_counter() - started, texts


@dataclass
class Result:
    rtfx: float
    wer: float


def measure(server: Server, loads: list[Workload], reps: int) -> dict[str, Result]:
    transcribe(server.url, loads[1].files[0])  # warm-up
    out = {}
    for load in loads:
        times: list[float] = []
        texts: list[str] = []
        for _ in range(reps):
            elapsed, texts = run_workload(server.url, load)
            times.append(elapsed)
        error = statistics.mean(wer(ref, hyp) for ref, hyp in zip(load.references, texts, strict=True))
        out[load.name] = Result(load.audio_s / statistics.median(times), error)
        print(f"  {server.name:15s} {load.name:32s} RTFx {out[load.name].rtfx:6.1f}  WER {error:.3f}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=["ours", "vllm", "vllm-shipped"])
    parser.add_argument("--compiled", action="store_true", help="let both servers compile (slower start)")
    args = parser.parse_args()

    settings = load_settings()
    model_dir = resolve(settings.model, settings.cache_dir).directory
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        directory = Path(tmp)
        loads = workloads(directory)
        # What `auto` resolves to on this machine (bfloat16 only where the CPU computes it natively).
        dtype = resolve_dtype("auto")
        print(f"model {model_dir.name}, {'compiled' if args.compiled else 'eager'}, {dtype}, {os.cpu_count()} CPUs")
        for key, baseline in BASELINES.items():
            print(f"baseline {key}: {baseline}")
        results: dict[str, dict[str, Result]] = {}
        starters: dict[str, Callable[[Path, bool, str, Path], Server]] = {
            "ours": ours,
            "vllm": vllm_tuned,
            "vllm-shipped": vllm_shipped,
        }
        for key, starter in starters.items():
            if args.only and args.only != key:
                continue
            server = starter(model_dir, not args.compiled, dtype, directory / f"{key}.log")
            try:
                results[key] = measure(server, loads, args.reps)
            finally:
                server.stop()
        for key in BASELINES:
            if "ours" not in results or key not in results:
                continue
            print(f"\nratio ours / {key} (RTFx: higher is faster; WER: lower is better)")
            for load in loads:
                a, b = results["ours"][load.name], results[key][load.name]
                print(f"  {load.name:32s} speed x{a.rtfx / b.rtfx:5.2f}   WER {a.wer:.3f} vs {b.wer:.3f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
