"""Real recorded speech: Asterisk's core sound prompts (Debian `asterisk-core-sounds-XX-wav`) and their texts.

English by default; `load_prompts(language="es")` (or fr, it) reads another language's prompts."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.compose import to_rate

SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
PACKAGE = "asterisk-core-sounds-en-wav"
# A text holding any of these is not what is spoken.
UNSPOKEN = "[]()<>*#"


def sounds_dir(language: str) -> Path:
    return SOUNDS.with_name(language)


def transcripts_file(language: str) -> Path:
    return Path(f"/usr/share/doc/asterisk-core-sounds-{language}/core-sounds-{language}.txt.gz")


class MissingSounds(RuntimeError):
    """The Debian package with the prompts is not installed."""


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str
    path: Path
    duration_s: float

    @property
    def words(self) -> int:
        return len(self.text.split())


def parse_transcripts(lines: Iterable[str]) -> dict[str, str]:
    """`name: text` lines -> {name: text}, without comments, empty texts and texts that describe
    sounds (`[beep]`, `(simple tone sound plays)`) or write keys as symbols (`*`, `#`)."""
    texts: dict[str, str] = {}
    for line in lines:
        if line.startswith(";") or ":" not in line:
            continue
        name, text = line.split(":", 1)
        text = " ".join(text.split())
        if text and not any(mark in text for mark in UNSPOKEN):
            texts[name.strip()] = text
    return texts


def load_prompts(sounds: Path | None = None, transcripts: Path | None = None, language: str = "en") -> list[Prompt]:
    """Every prompt that has both a WAV file and a usable transcript, sorted by name."""
    sounds = sounds or sounds_dir(language)
    transcripts = transcripts or transcripts_file(language)
    package = PACKAGE.replace("-en-", f"-{language}-")
    if not sounds.is_dir() or not transcripts.is_file():
        raise MissingSounds(
            f"real-speech workloads need the Debian package {package} ({sounds}, {transcripts}); "
            f"install it with: apt-get install -y {package} (make bench does)"
        )
    with gzip.open(transcripts, "rt", encoding="utf-8", errors="replace") as f:
        texts = parse_transcripts(f)
    prompts = []
    for name, text in sorted(texts.items()):
        path = sounds / f"{name}.wav"
        if path.is_file():
            prompts.append(Prompt(name, text, path, sf.info(str(path)).duration))
    return prompts


def read(prompt: Prompt) -> np.ndarray:
    """The prompt's audio as float32 at 16 kHz."""
    samples, rate = sf.read(str(prompt.path), dtype="float32", always_2d=False)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return to_rate(samples, rate)


def pick(
    prompts: list[Prompt],
    rng: random.Random,
    taken: set[str],
    min_words: int,
    max_s: float,
    total_s: float = float("inf"),
    count: int | None = None,
) -> list[Prompt]:
    """Prompts of at least `min_words` words and at most `max_s` seconds, distinct in text and not in
    `taken`, drawn in a seeded order until `total_s` seconds or `count` of them; their names join `taken`."""
    pool = [p for p in prompts if p.words >= min_words and p.duration_s <= max_s and p.name not in taken]
    rng.shuffle(pool)
    texts = {p.text.lower() for p in prompts if p.name in taken}
    chosen: list[Prompt] = []
    seconds = 0.0
    for prompt in pool:
        if seconds >= total_s or (count is not None and len(chosen) >= count):
            break
        if prompt.text.lower() in texts:
            continue
        chosen.append(prompt)
        texts.add(prompt.text.lower())
        taken.add(prompt.name)
        seconds += prompt.duration_s
    if count is not None and len(chosen) < count:
        raise MissingSounds(f"only {len(chosen)} prompts of {min_words}+ words and <= {max_s} s; {count} wanted")
    return chosen
