"""Uploads small on the wire and long once decoded, and a runner that measures what they cost.

The e2e test uses the payloads; run as a script against a running server it prints the resident
memory of the server's process tree while N such uploads are sent at once (the issue's
"before" and "after" figures): `python -m tests.e2e.amplification --url URL --pid PID -n 4`.
"""

from __future__ import annotations

import argparse
import io
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
import soundfile as sf

# The server's default per-request limit (`MAX_AUDIO_SECONDS`).
LIMIT_S = 7200
FLOOR_HZ = 4000


def riff_wav(samples: np.ndarray, rate: int) -> bytes:
    """A PCM16 mono WAV whose header says `rate`, whatever that is (soundfile refuses odd ones)."""
    data = samples.astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, (rate * 2) & 0xFFFFFFFF, 2, 16)
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(chunks)) + chunks


def one_hertz(seconds: int = LIMIT_S) -> bytes:
    """The issue's 14 KB upload: `seconds` samples of noise at 1 Hz, "two hours" by default."""
    rng = np.random.default_rng(1)
    return riff_wav(rng.integers(-3000, 3000, seconds).astype(np.int16), 1)


def low_rate(seconds: float, rate: int = FLOOR_HZ) -> bytes:
    """Quiet noise at the rate floor in IMA ADPCM (half a byte a sample): hours under the upload cap."""
    rng = np.random.default_rng(2)
    samples = (rng.standard_normal(int(seconds * rate)) * 0.001).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, subtype="IMA_ADPCM", format="WAV")
    return buffer.getvalue()


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (the engine runs in children)."""
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


class PeakRss(threading.Thread):
    """Peak resident memory of a process tree, sampled every 50 ms (amplification and load tests)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop_event = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def post(url: str, body: bytes, filename: str = "a.wav", language: str | None = None) -> httpx.Response:
    data = {"model": "whisper-1", **({"language": language} if language else {})}
    with httpx.Client(base_url=url, timeout=900) as client:
        return client.post("/v1/audio/transcriptions", files={"file": (filename, body)}, data=data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("-n", type=int, default=4, help="uploads sent at once")
    parser.add_argument("--seconds", type=int, default=LIMIT_S, help="what each 1 Hz upload claims")
    parser.add_argument("--file", help="send this file instead of the 1 Hz upload")
    args = parser.parse_args()
    body = Path(args.file).read_bytes() if args.file else one_hertz(args.seconds)
    idle = tree_rss(args.pid)
    sampler = PeakRss(args.pid)
    sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.n) as pool:
        statuses = [r.status_code for r in pool.map(lambda _: post(args.url, body), range(args.n))]
    elapsed = time.perf_counter() - started
    peak = sampler.stop()
    gib = 1024**3
    print(
        f"{args.n} x {len(body) / 1024:.0f} KB ({args.file or f'1 Hz, {args.seconds} s'}): statuses {statuses}, "
        f"{elapsed:.1f} s; idle {idle / gib:.2f} GiB, peak {peak / gib:.2f} GiB, +{(peak - idle) / gib:.2f} GiB"
    )


if __name__ == "__main__":
    main()
