"""Baseline: faster-whisper's `BatchedInferencePipeline` (what the speaches server runs) on the CTranslate2
weights the default model is converted from, in a subprocess of its own per compute type.

It has no server: every file, those of concurrent workloads too, is transcribed one after another.
Run as `python -m bench.fw JOB.json RESULT.json` by `run_fw`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.outcome import Outcome, failed
from bench.workloads import Workload

BATCH_SIZE = 8
BEAM_SIZE = 1  # greedy, as ours
TIMEOUT_S = 4 * 3600
ROOT = Path(__file__).resolve().parents[1]


class Unavailable(RuntimeError):
    """The CTranslate2 files of the served model cannot be assembled."""


def _feature_extractor(hf_dir: Path) -> dict[str, Any]:
    """The Hugging Face checkpoint's feature-extractor settings (feature_size = its mel bins)."""
    processor = hf_dir / "processor_config.json"
    if processor.is_file():
        extractor = json.loads(processor.read_text(encoding="utf-8")).get("feature_extractor")
        if extractor:
            return dict(extractor)
    legacy = hf_dir / "preprocessor_config.json"
    if legacy.is_file():
        return dict(json.loads(legacy.read_text(encoding="utf-8")))
    mels = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))["num_mel_bins"]
    return {"feature_size": mels, "sampling_rate": 16000, "hop_length": 160, "chunk_length": 30, "n_fft": 400}


def _write_vocabulary(tokenizer: Path, target: Path) -> None:
    """CTranslate2's vocabulary.json (tokens in id order): the package's own beside the tokenizer, else
    made from tokenizer.json."""
    shipped = tokenizer.with_name("vocabulary.json")
    if shipped.is_file():
        shutil.copyfile(shipped, target)
        return
    data = json.loads(tokenizer.read_text(encoding="utf-8"))
    ids = dict(data["model"]["vocab"]) | {t["content"]: t["id"] for t in data.get("added_tokens", [])}
    target.write_text(json.dumps(sorted(ids, key=ids.__getitem__)), encoding="utf-8")


def ct2_directory(model: str, hf_dir: Path, target: Path) -> Path:
    """model.bin (the packages' parts joined and checked), config.json, tokenizer.json and a
    preprocessor_config.json in `target`, from the installed packages of the embedded `model`."""
    from models.whisper.embedded import EMBEDDED, ModelProvisionError, locate

    spec = EMBEDDED.get(model)
    if spec is None:
        raise Unavailable(f"{model!r} is not an embedded model: no CTranslate2 files to compare on")
    try:
        parts = [locate(p, spec.requirement) for p in spec.parts]
        tokenizer, config = locate(spec.tokenizer, spec.requirement), locate(spec.config, spec.requirement)
    except ModelProvisionError as exc:
        raise Unavailable(str(exc)) from None
    target.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with (target / "model.bin").open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != spec.model_sha256:
        raise Unavailable("the joined model.bin does not match its recorded sha256")
    shutil.copyfile(tokenizer, target / "tokenizer.json")
    _write_vocabulary(tokenizer, target / "vocabulary.json")
    shutil.copyfile(config, target / "config.json")
    extractor = _feature_extractor(hf_dir)
    (target / "preprocessor_config.json").write_text(json.dumps(extractor, indent=2), encoding="utf-8")
    return target


def run_fw(compute_type: str, ct2_dir: Path, workloads: list[Workload], reps: int, scratch: Path) -> dict[str, Outcome]:
    """All workloads in one subprocess; a failure of it fails every workload, never the caller."""
    job = {
        "model": str(ct2_dir),
        "compute_type": compute_type,
        "reps": reps,
        "workloads": [{"key": w.key, "files": [str(f) for f in w.files], "reps": w.reps} for w in workloads],
    }
    job_path, result_path = scratch / f"fw-{compute_type}.job.json", scratch / f"fw-{compute_type}.result.json"
    log = scratch / f"fw-{compute_type}.log"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    command = [sys.executable, "-m", "bench.fw", str(job_path), str(result_path)]
    try:
        with log.open("wb") as out:
            done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {w.key: failed(f"faster-whisper {compute_type} ran past {TIMEOUT_S} s") for w in workloads}
    if done.returncode != 0 or not result_path.is_file():
        last = (log.read_text(errors="replace").strip().splitlines() or [""])[-1][:120]
        return {w.key: failed(f"faster-whisper exited with {done.returncode}: {last}") for w in workloads}
    results = json.loads(result_path.read_text(encoding="utf-8"))
    return {w.key: _outcome(results.get(w.key)) for w in workloads}


def _outcome(result: dict[str, Any] | None) -> Outcome:
    if result is None:
        return failed("no result")
    if result.get("failure"):
        return failed(str(result["failure"]))
    return Outcome(
        walls=result["walls"],
        latencies=result["latencies"],
        texts=result["texts"],
        segment_starts=result["starts"],
    )


# ---- the subprocess ----


def _transcribe(pipeline: Any, path: str) -> tuple[str, list[float], float]:
    started = time.perf_counter()
    segments, _ = pipeline.transcribe(path, language="en", beam_size=BEAM_SIZE, batch_size=BATCH_SIZE)
    segments = list(segments)
    latency = time.perf_counter() - started
    return "".join(s.text for s in segments).strip(), [float(s.start) for s in segments], latency


def _workload(pipeline: Any, files: list[str], reps: int) -> dict[str, Any]:
    walls: list[float] = []
    latencies: list[float] = []
    texts: list[str] = []
    starts: list[list[float]] = []
    for _ in range(reps):
        started = time.perf_counter()
        results = [_transcribe(pipeline, f) for f in files]
        walls.append(time.perf_counter() - started)
        latencies += [r[2] for r in results]
        texts, starts = [r[0] for r in results], [r[1] for r in results]
    return {"walls": walls, "latencies": latencies, "texts": texts, "starts": starts}


def worker(job_path: Path, result_path: Path) -> None:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    job = json.loads(job_path.read_text(encoding="utf-8"))
    model = WhisperModel(job["model"], device="cpu", compute_type=job["compute_type"], cpu_threads=os.cpu_count() or 1)
    pipeline = BatchedInferencePipeline(model)
    every = [f for w in job["workloads"] for f in w["files"]]
    _transcribe(pipeline, min(every, key=lambda f: Path(f).stat().st_size))  # warm-up
    results: dict[str, Any] = {}
    for load in job["workloads"]:
        try:
            results[load["key"]] = _workload(pipeline, load["files"], load.get("reps") or job["reps"])
        except Exception as exc:
            results[load["key"]] = {"failure": f"{type(exc).__name__}: {exc}"[:120]}
        print(f"faster-whisper {job['compute_type']}: {load['key']} done", flush=True)
    result_path.write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    worker(Path(sys.argv[1]), Path(sys.argv[2]))
