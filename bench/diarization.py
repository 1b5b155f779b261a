"""The diarizers compared on real speech: DER (0.25 s collar), speakers counted, known-speaker naming, speed.

    python -m bench.diarization [--candidates campplus ge2e] [--sweep] [--json PATH]

The set is bench/diarization_set.py's (needs the Debian packages asterisk-core-sounds-{en,es,fr,it}-wav
and pocketsphinx-testdata). RTFx is audio seconds over the seconds `diarize` took (weights loaded).
`--sweep` prints DER over clustering thresholds on the tuning files only (TUNING_FILES). Torch runs on
`--threads` threads (1, as in the gateway by default).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.der import der, named_right
from bench.diarization_set import FILES, TUNING_FILES, Conversation, build_set
from models.speakers.interface import KnownSpeaker
from models.speakers.pipeline import WindowDiarizer
from models.speakers.registry import DIARIZERS

TARGETS = {"two": 0.10, "four": 0.15, "phone": 0.10}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def as_tuples(turns: list[Any]) -> list[tuple[float, float, str]]:
    return [(t.start, t.end, t.speaker) for t in turns]


def run_file(diarizer: WindowDiarizer, conv: Conversation, references: dict[str, np.ndarray]) -> dict[str, Any]:
    """One file: anonymous turns scored by DER, then with every talker's reference clip, naming scored."""
    began = time.perf_counter()
    analysis = diarizer.analyse(conv.audio)
    turns = diarizer.label(analysis)  # the two steps of diarize(), timed together
    wall = time.perf_counter() - began
    score = der(conv.turns, as_tuples(turns))
    known = [KnownSpeaker(t, references[t]) for t in conv.talkers]
    # What diarize(audio, known) returns, without embedding the conversation twice.
    named = named_right(conv.turns, as_tuples(diarizer.label(analysis, known)))
    duration = len(conv.audio) / diarizer.sample_rate
    return {
        "file": conv.name, "kind": conv.kind, "duration_s": round(duration, 1), "der": round(score.der, 4),
        "missed": round(score.missed, 2), "false_alarm": round(score.false_alarm, 2),
        "confusion": round(score.confusion, 2), "speakers": [score.reference_speakers, score.hypothesis_speakers],
        "named_right": {k: round(v, 3) for k, v in named.items()}, "wall_s": round(wall, 3),
        "rtfx": round(duration / wall, 1),
    }  # fmt: skip


def load_time(diarizer: WindowDiarizer) -> float:
    began = time.perf_counter()
    diarizer.embedder()
    diarizer.diarize(np.zeros(16_000, np.float32))
    return time.perf_counter() - began


def sweep(name: str, convs: list[Conversation]) -> None:
    """DER over clustering thresholds on the tuning files (the embeddings computed once per file)."""
    diarizer = DIARIZERS[name]()
    assert isinstance(diarizer, WindowDiarizer)
    tuning = [c for c in convs if c.name in TUNING_FILES]
    analyses = [diarizer.analyse(c.audio) for c in tuning]
    base = diarizer.tuning
    for threshold in np.arange(0.1, 0.95, 0.05):
        diarizer.tuning = dataclasses.replace(base, threshold=float(threshold))
        scores = [der(c.turns, as_tuples(diarizer.label(a))) for c, a in zip(tuning, analyses, strict=True)]
        cells = " ".join(f"{s.der:6.1%} {s.hypothesis_speakers}/{s.reference_speakers}" for s in scores)
        print(f"{name} threshold {threshold:.2f}: {cells}", flush=True)


def table(name: str, load_s: float, rows: list[dict[str, Any]]) -> None:
    print(f"\n{name}: weights loaded in {load_s:.1f} s")
    print(f"{'file':26} {'s':>6} {'DER':>7} {'miss':>6} {'FA':>5} {'conf':>5} {'spk':>5} {'named':>6} {'RTFx':>6}")
    for r in rows:
        named = min(r["named_right"].values())
        tuned = "*" if r["file"] in TUNING_FILES else " "
        spk = f"{r['speakers'][1]}/{r['speakers'][0]}"
        print(
            f"{r['file'] + tuned:26} {r['duration_s']:6.1f} {r['der']:7.1%} {r['missed']:6.2f} {r['false_alarm']:5.2f} "
            f"{r['confusion']:5.2f} {spk:>5} {named:6.1%} {r['rtfx']:6.1f}"
        )
    audio = sum(r["duration_s"] for r in rows)
    wall = sum(r["wall_s"] for r in rows)
    for kind, target in TARGETS.items():
        mine = [r["der"] for r in rows if r["kind"] == kind]
        print(f"  {kind:5}: mean DER {np.mean(mine):.1%} (target <= {target:.0%}), worst {max(mine):.1%}")
    counted = sum(r["speakers"][0] == r["speakers"][1] for r in rows)
    named_all = [v for r in rows for v in r["named_right"].values()]
    print(f"  speakers right on {counted}/{len(rows)} files; known speakers: worst talker-file {min(named_all):.1%}, ")
    print(f"  mean {np.mean(named_all):.1%} of a talker's time named right; RTFx {audio / wall:.0f} overall")
    print("  (* = a tuning file; min share named right over the file's talkers in 'named')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", nargs="+", default=list(DIARIZERS), choices=list(DIARIZERS))
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--json", type=Path)
    # The gateway runs torch on one thread once its engine is up (GATEWAY_THREADS=1, its default).
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} torch threads; {len(FILES)} files")
    convs, references = build_set()
    results: dict[str, Any] = {}
    for name in args.candidates:
        if args.sweep:
            sweep(name, convs)
            continue
        diarizer = DIARIZERS[name]()
        assert isinstance(diarizer, WindowDiarizer)
        load_s = load_time(diarizer)
        rows = [run_file(diarizer, c, references) for c in convs]
        table(name, load_s, rows)
        results[name] = {"load_s": round(load_s, 2), "files": rows}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
