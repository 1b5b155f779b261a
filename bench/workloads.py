"""The benchmark's workloads, built afresh in a temporary directory each run (nothing is downloaded)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

from bench import asterisk, dense
from bench.compose import Recording, compose, peak_normalise, with_noise
from tests import speech

SEED = 8
CALL_NOISE_DBFS = -45.0
CALL_LEAD_IN_S = 6.7
COUNTING = "one, two, three, four, five, six, seven, eight, nine, ten"
REPEATED = [
    "Please close the window before you leave the room.",
    "Our team won the match in the last minute.",
    "The old bridge was repaired last year.",
]


@dataclass
class Workload:
    key: str
    name: str
    files: list[Path]
    references: list[str]
    concurrent: bool
    # Per file, where each spoken part truly starts (seconds); None where onsets are not scored.
    onsets: list[list[float]] | None = None
    # Timed repetitions where the workload sets its own (latency: enough requests for a p95).
    reps: int | None = None
    audio_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.audio_s = sum(sf.info(str(f)).duration for f in self.files)


def _write(path: Path, samples: np.ndarray) -> Path:
    return speech.write_wav(path, np.clip(samples, -1.0, 1.0))


def one_minute(directory: Path) -> Workload:
    sixty = list(itertools.islice(itertools.cycle(speech.SENTENCES), 17))
    path = _write(directory / "sixty.wav", speech.compose(sixty, 0.5))
    return Workload("clip-1min", "1 min clip, one request", [path], [" ".join(sixty)], False)


def short_clips(directory: Path) -> Workload:
    short = speech.SENTENCES[:21]
    clips = [_write(directory / f"short-{i}.wav", speech.speak(s)) for i, s in enumerate(short)]
    return Workload("short-21", "21 short clips at once", clips, short, True)


def six_minutes(directory: Path) -> Workload:
    long = list(itertools.islice(itertools.cycle(speech.SENTENCES), 100))
    path = _write(directory / "long.wav", speech.compose(long, 0.7))
    return Workload("long-6min", "6 min recording, one request", [path], [" ".join(long)], False)


@dataclass(frozen=True)
class RealPrompts:
    call: list[asterisk.Prompt]
    paused: list[asterisk.Prompt]
    clips: list[asterisk.Prompt]


@cache
def real_prompts() -> RealPrompts:
    """Distinct Asterisk prompts for each real-speech workload, the same ones every run."""
    prompts = asterisk.load_prompts()
    rng = random.Random(SEED)
    taken: set[str] = set()
    call = asterisk.pick(prompts, rng, taken, min_words=6, max_s=14.0, total_s=95.0)
    paused = asterisk.pick(prompts, rng, taken, min_words=6, max_s=14.0, total_s=95.0)
    clips = asterisk.pick(prompts, rng, taken, min_words=4, max_s=6.0, count=64)
    return RealPrompts(call, paused, clips)


def phone_call(prompts: list[asterisk.Prompt], rng: random.Random) -> Recording:
    """Line noise, then the prompts with 0.5-2 s of noise between them."""
    gaps = [CALL_LEAD_IN_S] + [rng.uniform(0.5, 2.0) for _ in prompts[1:]]
    return with_noise(compose([asterisk.read(p) for p in prompts], gaps, tail_s=1.0), CALL_NOISE_DBFS, SEED)


def real_speech(directory: Path) -> Workload:
    chosen = real_prompts()
    rng = random.Random(SEED)
    call = phone_call(chosen.call, rng)
    gaps = [0.3] + [rng.uniform(0.3, 1.5) for _ in chosen.paused[1:]]
    paused = compose([asterisk.read(p) for p in chosen.paused], gaps)
    files = [_write(directory / "real-call.wav", call.samples), _write(directory / "real-paused.wav", paused.samples)]
    references = [" ".join(p.text for p in chosen.call), " ".join(p.text for p in chosen.paused)]
    name = "real English: phone call + paused prompts"
    return Workload("real", name, files, references, False, [call.onsets, paused.onsets])


def real_clips(directory: Path) -> Workload:
    prompts = real_prompts().clips
    files = [_write(directory / f"prompt-{i:02d}.wav", asterisk.read(p)) for i, p in enumerate(prompts)]
    return Workload("clips-64", "64 real clips at once", files, [p.text for p in prompts], True)


def long_pauses(directory: Path) -> Workload:
    """espeak-ng sentences after pauses of 0.3-3 s, four of them 5-10 s long."""
    rng = random.Random(SEED + 1)
    sentences = speech.SENTENCES[6:30]
    gaps = [rng.uniform(0.3, 3.0) for _ in sentences]
    for index in (4, 9, 15, 20):
        gaps[index] = rng.uniform(5.0, 10.0)
    recording = compose([peak_normalise(speech.speak(s)) for s in sentences], gaps)
    path = _write(directory / "pauses.wav", recording.samples)
    name = f"{recording.duration_s / 60:.0f} min with long pauses"
    return Workload("pauses", name, [path], [" ".join(sentences)], False, [recording.onsets])


def repetition(directory: Path) -> Workload:
    """Three sentences read twelve times with 0.7 s pauses, the counting to ten three times among them."""
    spoken: list[str] = []
    for round_ in range(12):
        spoken += REPEATED
        if round_ in (2, 6, 9):
            spoken.append(COUNTING)
    voices = {text: peak_normalise(speech.speak(text)) for text in set(spoken)}
    recording = compose([voices[text] for text in spoken], [0.7] * len(spoken))
    path = _write(directory / "repeat.wav", recording.samples)
    name = "repetition: 3 sentences x12 + counting"
    return Workload("repeat", name, [path], [" ".join(spoken)], False)


def _taken() -> set[str]:
    """The prompts the other real-speech workloads use, so that no workload repeats another's."""
    chosen = real_prompts()
    return {p.name for p in [*chosen.call, *chosen.paused, *chosen.clips]}


def dense_speech(directory: Path) -> Workload:
    """Real talkers reading on, a breath between sentences: six files, one after another."""
    made = dense.dense_files(_taken())
    files = [dense.write(directory, f"dense-{name}", samples) for name, samples, _ in made]
    return Workload("dense", "dense real speech, one file at a time", files, [r for _, _, r in made], False)


def latency(which: str) -> Callable[[Path], Workload]:
    """One clip of `latency_files`, sent alone LATENCY_REPS times."""

    def build_one(directory: Path) -> Workload:
        name, samples, reference = next(f for f in dense.latency_files(_taken()) if f[0] == which)
        path = dense.write(directory, f"latency-{name}", samples)
        title = f"latency: one {name} request at a time"
        return Workload(f"latency-{name}", title, [path], [reference], False, reps=dense.LATENCY_REPS)

    return build_one


BUILDERS: list[Callable[[Path], Workload]] = [
    one_minute,
    short_clips,
    six_minutes,
    real_speech,
    long_pauses,
    repetition,
    real_clips,
    dense_speech,
    latency("5s"),
    latency("12s"),
    latency("30s-call"),
]
KEYS = ["clip-1min", "short-21", "long-6min", "real", "pauses", "repeat", "clips-64", "dense"]
KEYS += ["latency-5s", "latency-12s", "latency-30s-call"]


def build(directory: Path, wanted: list[str] | None) -> tuple[list[Workload], list[str]]:
    """The workloads whose key contains one of `wanted` (all when None), in a fixed order, and why
    any of them could not be built."""
    built: list[Workload] = []
    skipped: list[str] = []
    for key, builder in zip(KEYS, BUILDERS, strict=True):
        if wanted and not any(w in key for w in wanted):
            continue
        try:
            built.append(builder(directory))
        except asterisk.MissingSounds as exc:
            skipped.append(f"{key}: {exc}")
    return built, skipped
