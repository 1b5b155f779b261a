"""Workloads that speech packing does not flatter: dense real speech, and one request's latency.

Dense speech: real recorded talkers read on with only the breath between sentences (0.15-0.35 s),
so there is next to no silence to skip. Built from what Debian packages ship: Asterisk's prompts
(one US talker, 8 kHz, and the same talker's real 16 kHz G.722 wideband recordings) and
`pocketsphinx-testdata` (a LibriVox reader of Sense and Sensibility; the talker of `cards/`).

Latency: single requests of about 5 s, 12 s and 30 s, each sent alone `LATENCY_REPS` times, so that
p50 and p95 are those of one user waiting for one answer (the 30 s clip is a phone call: line noise
for its first 6.7 s, then prompts with 0.5-2 s between them).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from bench import asterisk, conversation
from bench.conversation import Utterance
from tests import speech

SEED = 16
RATE = 16_000
BREATH_S = (0.15, 0.35)
LATENCY_REPS = 10
# Dense Asterisk files: (name, rate of the source, target seconds).
ASTERISK_FILES = [("prompts-15s", 8000, 15.0), ("prompts-40s", 8000, 40.0), ("prompts-70s", 8000, 70.0),
                  ("wideband-30s", 16000, 30.0)]  # fmt: skip


def read_on(utterances: list[Utterance], rng: random.Random) -> np.ndarray:
    """The utterances' speech one after another, `BREATH_S` apart, at 16 kHz."""
    parts: list[np.ndarray] = []
    for utterance in utterances:
        clip, onset, end = conversation.cut(conversation.load(utterance.path, RATE), RATE)
        speech_only = clip[round(onset * RATE) : round(end * RATE)]
        parts += [speech_only, np.zeros(round(rng.uniform(*BREATH_S) * RATE), np.float32)]
    return np.concatenate(parts[:-1]) if parts else np.zeros(0, np.float32)


def asterisk_run(rng: random.Random, taken: set[str], seconds: float, wideband: bool) -> list[Utterance]:
    """Distinct Asterisk prompts (4+ words, at most 8 s) adding up to about `seconds` of audio."""
    prompts = asterisk.pick(asterisk.load_prompts(), rng, taken, min_words=4, max_s=8.0, total_s=seconds)
    suffix = ".g722" if wideband else ".wav"
    return [Utterance("asterisk", p.text, p.path.with_suffix(suffix)) for p in prompts]


def dense_files(taken: set[str]) -> list[tuple[str, np.ndarray, str]]:
    """(name, 16 kHz samples, reference) of each dense recording, the same ones every run."""
    rng = random.Random(SEED)
    runs = [("audiobook", conversation.talker("librivox")), ("cards", conversation.talker("cards"))]
    runs += [(name, asterisk_run(rng, taken, seconds, rate == 16000)) for name, rate, seconds in ASTERISK_FILES]
    return [(name, read_on(u, rng), " ".join(x.text for x in u)) for name, u in runs]


def latency_files(taken: set[str]) -> list[tuple[str, np.ndarray, str]]:
    """A ~5 s prompt, ~12 s of the audiobook, and a 30 s phone call with a 6.7 s lead-in."""
    rng = random.Random(SEED + 1)
    five = asterisk_run(rng, taken, 4.5, wideband=False)
    book = conversation.talker("librivox")
    twelve = [book[0], book[2]]  # 7.1 s + 5.3 s of the reader, one breath apart
    call_prompts = asterisk.pick(asterisk.load_prompts(), rng, taken, min_words=4, max_s=5.0, total_s=16.0)
    starts = _call_starts(call_prompts, rng)
    while starts and starts[-1] + call_prompts[len(starts) - 1].duration_s > 29.5:
        starts.pop()  # the call holds what fits in its 30 s
    call_prompts = call_prompts[: len(starts)]
    call = conversation.mix([(asterisk.read(p), 0.0) for p in call_prompts], starts, RATE, tail_s=0.0)
    call = np.pad(call, (0, 30 * RATE - len(call))) + conversation.noise(
        30 * RATE, RATE, -45.0, SEED, conversation.TELEPHONE
    )
    return [
        ("5s", read_on(five, rng), " ".join(u.text for u in five)),
        ("12s", read_on(twelve, rng), " ".join(u.text for u in twelve)),
        ("30s-call", call, " ".join(p.text for p in call_prompts)),
    ]


def _call_starts(prompts: list[asterisk.Prompt], rng: random.Random) -> list[float]:
    starts, at = [], 6.7
    for prompt in prompts:
        starts.append(at)
        at += prompt.duration_s + rng.uniform(0.5, 2.0)
    return starts


def write(directory: Path, name: str, samples: np.ndarray) -> Path:
    peak = float(np.max(np.abs(samples))) or 1.0
    return speech.write_wav(directory / f"{name}.wav", samples * min(1.0, 0.89 / peak))
