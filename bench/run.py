"""`make bench`: speech-gateway against vLLM's own OpenAI server and faster-whisper, same model, same run.

Each server is started in turn on a loopback port with the same converted checkpoint, the dtype
`auto` resolves to and the same engine mode, warmed up, then given the same workloads. vLLM's
server runs twice: with our engine tuning and as shipped. faster-whisper's batched pipeline
(what the speaches server runs) reads the CTranslate2 weights the checkpoint is converted from,
in float32 and in int8. Printed per workload and system: RTFx (audio seconds per median wall
second), word error rate pooled over the files, inserted words, request latency, segment-onset
error; then ours / each baseline, and the same tables in markdown.

    python -m bench.run [--reps 2] [--only ours vllm ...] [--workloads real pauses ...] [--eager]

Then the cross-talk stress run against ours (bench/crosstalk.py; `--crosstalk 0` skips it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import crosstalk, fw, report
from bench.client import run_http, warm_up
from bench.outcome import Outcome, Scores, failed, score
from bench.servers import STARTERS, ServerConfig, StartFailure
from bench.workloads import KEYS, Workload, build

SYSTEMS = ["ours", "ours-words", "ours-shared", "vllm", "vllm-shipped", "fw-float32", "fw-int8"]
# Systems whose requests ask for word timestamps (ours / ours-words is what words cost).
WORD_SYSTEMS = {"ours-words"}


def _words(values: list[str]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2, help="timed repetitions per workload (default 2)")
    parser.add_argument("--only", nargs="+", default=[], help=f"systems to run, any of: {', '.join(SYSTEMS)}")
    parser.add_argument(
        "--workloads", nargs="+", default=[], help=f"substrings of the workloads to run: {', '.join(KEYS)}"
    )
    parser.add_argument(
        "--eager", action="store_true", help="run every server eager (a secondary line: users run compiled graphs)"
    )
    parser.add_argument("--dump", type=Path, help="write every reference and transcript to this JSON file")
    parser.add_argument(
        "--crosstalk", type=int, default=2000, help="requests of the cross-talk stress run on ours (0: skip)"
    )
    args = parser.parse_args(argv)
    args.only = _words(args.only)
    args.workloads = _words(args.workloads)
    unknown = sorted(set(args.only) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def serve_and_measure(key: str, config: ServerConfig, workloads: list[Workload], reps: int) -> dict[str, Outcome]:
    """Start one server, warm it up, run every workload; a start failure fails them all."""
    try:
        server = STARTERS[key](config)
    except StartFailure as exc:
        print(f"  {key}: {exc}", flush=True)
        return {w.key: failed(f"start failed: {exc}"[:160]) for w in workloads}
    outcomes: dict[str, Outcome] = {}
    try:
        shortest = min((f for w in workloads for f in w.files), key=lambda f: f.stat().st_size)
        if error := warm_up(server.url, shortest):
            print(f"  {key}: warm-up request failed: {error}", flush=True)
        for workload in workloads:
            outcomes[workload.key] = run_http(server.url, workload, workload.reps or reps, words=key in WORD_SYSTEMS)
            print(report.line(key, workload, score(workload, outcomes[workload.key])), flush=True)
    finally:
        server.stop()
    return outcomes


def faster_whisper(
    key: str, model: str, hf_dir: Path, workloads: list[Workload], reps: int, scratch: Path
) -> dict[str, Outcome]:
    """faster-whisper in a subprocess; its CTranslate2 directory is assembled once per run."""
    try:
        ct2 = scratch / "ct2"
        if not (ct2 / "preprocessor_config.json").is_file():
            fw.ct2_directory(model, hf_dir, ct2)
    except fw.Unavailable as exc:
        return {w.key: failed(str(exc)) for w in workloads}
    outcomes = fw.run_fw(key.removeprefix("fw-"), ct2, workloads, reps, scratch)
    for workload in workloads:
        print(report.line(key, workload, score(workload, outcomes[workload.key])), flush=True)
    return outcomes


def print_header(workloads: list[Workload], systems: list[str], machine: str, reps: int) -> None:
    print(f"machine: {machine}")
    for key in systems:
        print(f"system {key}: {report.SYSTEMS[key]}")
    if any(s.startswith("fw-") for s in systems):
        print(
            f"faster-whisper: batch_size {fw.BATCH_SIZE}, beam_size {fw.BEAM_SIZE}, language en, its silero VAD on "
            "(its batched default); it has no server, so concurrent workloads run one file after another"
        )
    print(f"{reps} timed repetitions each; RTFx over the median; WER pooled over files, digits spelled out")
    for w in workloads:
        mode = "all at once" if w.concurrent else "one after another"
        print(f"workload {w.key}: {w.name}: {len(w.files)} file(s), {w.audio_s:.1f} s of audio, {mode}")


def print_tables(workloads: list[Workload], scores: dict[str, dict[str, Scores]], machine: str) -> None:
    rows = report.main_rows(workloads, scores)
    print("\n" + report.plain(report.HEADERS, rows))
    if "ours" in scores and len(scores) > 1:
        headers, ratio = report.ratio_rows(workloads, scores)
        print("\nours / each baseline (speed: ratio of RTFx, higher is faster; WER: lower is better)")
        print(report.plain(headers, ratio))
    print(f"\n### Markdown (for bench/RESULTS.md)\n\nMachine: {machine}\n")
    print(report.markdown(report.HEADERS, rows))
    if "ours" in scores and len(scores) > 1:
        print("\n" + report.markdown(*report.ratio_rows(workloads, scores)))


def dump(path: Path, workloads: list[Workload], outcomes: dict[str, dict[str, Outcome]]) -> None:
    """References, and each system's last transcripts and segment starts, for reading the errors."""
    data = {
        w.key: {
            "references": w.references,
            "onsets": w.onsets,
            "systems": {s: dataclasses.asdict(o[w.key]) for s, o in outcomes.items()},
        }
        for w in workloads
    }
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    print(f"transcripts written to {path}")


def crosstalk_run(config: ServerConfig, requests: int) -> None:
    """The cross-talk stress run (bench/crosstalk.py) against a fresh server of ours, shared windows
    turned on (by default clips are read alone and there is nothing to cross)."""
    print(f"\ncross-talk stress run, {requests} requests:", flush=True)
    try:
        crosstalk.load_clips()
        server = STARTERS["ours-shared"](config)
    except (crosstalk.MissingSounds, StartFailure) as exc:
        print(f"  skipped: {exc}", flush=True)
        return
    try:
        crosstalk.run(server.url, requests)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    began = time.perf_counter()
    from app.scheduling.engine import resolve_dtype
    from config import load_settings
    from models.source import resolve

    settings = load_settings()
    model_dir = resolve(settings.model, settings.cache_dir).directory
    systems = [s for s in SYSTEMS if not args.only or s in args.only]
    # What `auto` resolves to on this machine (bfloat16 only where the CPU computes it natively).
    dtype = resolve_dtype("auto")
    machine = report.machine(dtype, "eager (--eager)" if args.eager else "compiled graphs (the default)")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        scratch = Path(tmp)
        workloads, skipped = build(scratch, args.workloads or None)
        for reason in skipped:
            print(f"skipped workload {reason}")
        print_header(workloads, systems, machine, args.reps)
        outcomes: dict[str, dict[str, Outcome]] = {}
        for key in systems:
            print(f"\n{key}:", flush=True)
            if key.startswith("fw-"):
                outcomes[key] = faster_whisper(key, settings.model, model_dir, workloads, args.reps, scratch)
            else:
                config = ServerConfig(model_dir, args.eager, dtype, scratch / f"{key}.log")
                outcomes[key] = serve_and_measure(key, config, workloads, args.reps)
        scores = {s: {w.key: score(w, outcomes[s][w.key]) for w in workloads} for s in systems}
        print_tables(workloads, scores, machine)
        if args.dump:
            dump(args.dump, workloads, outcomes)
        if "ours" in systems and args.crosstalk > 0:
            config = ServerConfig(model_dir, args.eager, dtype, scratch / "crosstalk.log")
            crosstalk_run(config, args.crosstalk)
    print(f"\nbench wall time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
