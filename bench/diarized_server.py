"""What `diarized_json` costs and how well it attributes words, through our real server.

On the real-speech conversation set (`bench/diarization_set.py`), our server at defaults answers
each file as `verbose_json` (segments, the text's own cost) and as `diarized_json`, in turn and
interleaved; RTFx with and without the speaker model, the server's DER, the share of words given
the right talker (each word's time from `verbose_json` word timestamps, its talker from the
reference turns, its speaker from the diarized segment at that time, speakers mapped to talkers
one to one), and how far the diarized text's words are from the plain transcript's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

from bench.der import der
from bench.diarization import cpu_model
from bench.diarization_set import Conversation, build_set
from bench.metrics import pooled_errors
from bench.servers import SERVED_NAME, ServerConfig, ours

TIMEOUT_S = 600.0


def post(url: str, path: Path, form: dict[str, Any]) -> tuple[dict[str, Any], float]:
    began = time.perf_counter()
    with path.open("rb") as f:
        reply = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": f}, data=form, timeout=TIMEOUT_S)
    reply.raise_for_status()
    return reply.json(), time.perf_counter() - began


def distance(start: float, end: float, t: float) -> float:
    """How far `t` lies outside [start, end] (0 inside)."""
    return 0.0 if start <= t <= end else min(abs(start - t), abs(end - t))


def speaker_at(segments: list[dict[str, Any]], t: float) -> str:
    """The speaker of the diarized segment holding time `t` (the nearest one otherwise)."""
    return str(min(segments, key=lambda s: distance(s["start"], s["end"], t))["speaker"])


def talker_at(turns: list[tuple[float, float, str]], t: float) -> str:
    return min(turns, key=lambda u: distance(u[0], u[1], t))[2]


def words_right(words: list[dict[str, Any]], segments: list[dict[str, Any]], conv: Conversation) -> tuple[int, int]:
    """(words given the right talker, words) under the best one-to-one speaker-to-talker mapping."""
    from scipy.optimize import linear_sum_assignment

    pairs = [
        (talker_at(conv.turns, (w["start"] + w["end"]) / 2), speaker_at(segments, (w["start"] + w["end"]) / 2))
        for w in words
    ]
    talkers = sorted({p[0] for p in pairs})
    speakers = sorted({p[1] for p in pairs})
    counts = np.zeros((len(talkers), len(speakers)), dtype=np.int64)
    for talker, speaker in pairs:
        counts[talkers.index(talker), speakers.index(speaker)] += 1
    rows, cols = linear_sum_assignment(-counts)
    return int(counts[rows, cols].sum()), len(pairs)


def measure(url: str, path: Path, conv: Conversation, reps: int) -> dict[str, Any]:
    plain = {"model": SERVED_NAME, "response_format": "verbose_json"}
    diarized = {"model": SERVED_NAME, "response_format": "diarized_json", "chunking_strategy": "auto"}
    timed: dict[str, list[float]] = {"plain": [], "diarized": []}
    answers: dict[str, dict[str, Any]] = {}
    for rep in range(reps):
        for kind in ("plain", "diarized") if rep % 2 == 0 else ("diarized", "plain"):
            answers[kind], seconds = post(url, path, plain if kind == "plain" else diarized)
            timed[kind].append(seconds)
    words, _ = post(url, path, {**plain, "timestamp_granularities[]": ["word", "segment"]})
    segments = [s for s in answers["diarized"]["segments"] if s["text"].strip()]
    hyp = [(s["start"], s["end"], s["speaker"]) for s in segments]
    right, total = words_right(words.get("words", []), segments, conv) if segments else (0, 0)
    score = der(conv.turns, hyp)
    return {
        "name": conv.name,
        "seconds": len(conv.audio) / 16_000,
        "plain_s": statistics.median(timed["plain"]),
        "diarized_s": statistics.median(timed["diarized"]),
        "der": score.der,
        "speakers": (score.hypothesis_speakers, score.reference_speakers),
        "words_right": right / total if total else 0.0,
        "text_diff": pooled_errors([answers["plain"]["text"]], [answers["diarized"]["text"]]).wer,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    from app.scheduling.engine import resolve_dtype
    from config import load_settings
    from models.source import resolve

    settings = load_settings()
    model_dir = resolve(settings.model, settings.cache_dir).directory
    print(f"CPU: {cpu_model()}; our server at defaults (compiled graphs, dtype {resolve_dtype('auto')})")
    convs, _ = build_set()
    with tempfile.TemporaryDirectory(prefix="bench-diarized-") as tmp:
        paths = []
        for conv in convs:
            paths.append(Path(tmp) / f"{conv.name}.wav")
            sf.write(paths[-1], conv.audio, 16_000)
        server = ours(ServerConfig(model_dir, False, resolve_dtype("auto"), Path(tmp) / "server.log"))
        try:
            post(server.url, paths[0], {"model": SERVED_NAME, "response_format": "diarized_json"})  # warm-up
            rows = [measure(server.url, p, c, args.reps) for p, c in zip(paths, convs, strict=True)]
        finally:
            server.stop()
    report(rows)


def report(rows: list[dict[str, Any]]) -> None:
    print("| file | s | verbose_json s | diarized_json s | DER | speakers found/true | words right | text vs plain |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        found, true = r["speakers"]
        print(
            f"| {r['name']} | {r['seconds']:.1f} | {r['plain_s']:.2f} | {r['diarized_s']:.2f} | {r['der']:.1%} "
            f"| {found}/{true} | {r['words_right']:.1%} | {r['text_diff']:.1%} |"
        )
    audio = sum(r["seconds"] for r in rows)
    plain, diarized = sum(r["plain_s"] for r in rows), sum(r["diarized_s"] for r in rows)
    print(f"RTFx without diarization {audio / plain:.1f}, with {audio / diarized:.1f} (x{plain / diarized:.2f})")
    print(f"speakers right on {sum(r['speakers'][0] == r['speakers'][1] for r in rows)}/{len(rows)} files; "
          f"words right {np.mean([r['words_right'] for r in rows]):.1%} (mean over files)")  # fmt: skip


if __name__ == "__main__":
    main()
