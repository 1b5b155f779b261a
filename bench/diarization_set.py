"""Real-speech conversations with known speaker turns, for diarization: built from Debian packages, not kept.

Six real talkers: Asterisk's prompts in English, Spanish and French (three women) and Italian (a man),
8 kHz (`asterisk-core-sounds-{en,es,fr,it}-wav`), and two talkers of `pocketsphinx-testdata` (16 kHz:
a LibriVox reader, and the talker of `cards/`). Each turn is one recording, placed so that its speech
(found by energy, bench/conversation.py) starts a seeded 0.3-1.0 s after the previous turn's speech
ended; the turn's time is that speech's. Two-party and four-party conversations at 16 kHz, and
telephone calls (8 kHz, band-limited to 300-3400 Hz, given to the diarizer at 16 kHz like any upload).
Each talker also gets a 2-10 s reference clip made of recordings no conversation uses (known speakers).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import asterisk
from bench.conversation import POCKETSPHINX, TELEPHONE, WIDEBAND, band_limit, cut, layout, load, mix, noise

RATE = 16_000
GAPS_S = (0.3, 1.0)
LANGUAGES = ("en", "es", "fr", "it")
# pocketsphinx talkers: their recordings, and the one kept for the reference clip.
LIBRIVOX = sorted((POCKETSPHINX / "librivox").glob("*.wav"))
# cards/004 is left out: by CAM++ it is another voice than 001-003 and 005 (and goforward.raw,
# which bench/conversation.py counts as the cards talker's, matches numbers.raw, not cards/).
CARDS = [POCKETSPHINX / f"cards/00{i}.wav" for i in (1, 2, 3)]
REFERENCE_FILES = {"librivox": LIBRIVOX[-1:], "cards": [POCKETSPHINX / "cards/005.wav"]}
# name, kind, talkers, turns, seed
FILES = [
    ("2p-en-it", "two", ("en", "it"), 12, 1),
    ("2p-es-librivox", "two", ("es", "librivox"), 10, 2),
    ("2p-fr-cards", "two", ("fr", "cards"), 12, 3),
    ("2p-it-es", "two", ("it", "es"), 12, 4),
    ("2p-en-fr", "two", ("en", "fr"), 12, 5),
    ("4p-en-es-fr-it", "four", ("en", "es", "fr", "it"), 16, 6),
    ("4p-it-fr-es-en", "four", ("it", "fr", "es", "en"), 20, 7),
    ("4p-en-it-librivox-cards", "four", ("en", "it", "librivox", "cards"), 16, 8),
    ("4p-es-fr-librivox-cards", "four", ("es", "fr", "librivox", "cards"), 16, 9),
    ("tel-en-it", "phone", ("en", "it"), 12, 10),
    ("tel-es-librivox", "phone", ("es", "librivox"), 10, 11),
    ("tel-fr-cards", "phone", ("fr", "cards"), 12, 12),
]
# Thresholds are tuned on these files only; the table reports every file.
TUNING_FILES = ("2p-en-it", "4p-en-es-fr-it", "tel-en-it")


@dataclass(frozen=True)
class Conversation:
    name: str
    kind: str
    audio: np.ndarray  # 16 kHz mono float32
    turns: list[tuple[float, float, str]]  # (start, end, talker), sorted

    @property
    def talkers(self) -> list[str]:
        return sorted({t for _, _, t in self.turns})


class Pools:
    """Each talker's recordings: the Asterisk prompts split once into conversation and reference use."""

    def __init__(self) -> None:
        self.prompts = {lang: asterisk.load_prompts(language=lang) for lang in LANGUAGES}
        self.reserved: set[str] = set()
        self.references: dict[str, np.ndarray] = {}
        for lang in LANGUAGES:
            chosen = asterisk.pick(self.prompts[lang], random.Random(lang), self.reserved, 3, 4.0, total_s=5.0)
            self.references[lang] = join([load(p.path, RATE) for p in chosen])
        for talker, paths in REFERENCE_FILES.items():
            self.references[talker] = join([load(p, RATE) for p in paths])

    def utterances(self, talker: str, rng: random.Random, count: int) -> list[Path]:
        if talker == "librivox":
            return [rng.choice(LIBRIVOX[:-1]) for _ in range(count)]
        if talker == "cards":
            return [rng.choice(CARDS) for _ in range(count)]
        pool = [p for p in self.prompts[talker] if p.name not in self.reserved and p.words >= 2 and p.duration_s <= 5]
        return [p.path for p in rng.sample(pool, count)]


def join(clips: list[np.ndarray], gap_s: float = 0.3) -> np.ndarray:
    """Clips one after another with `gap_s` of silence between, cut to 10 s (a reference clip's longest)."""
    silence = np.zeros(round(gap_s * RATE), np.float32)
    parts = [part for clip in clips for part in (silence, clip)][1:]
    return np.asarray(np.concatenate(parts)[: 10 * RATE], np.float32)


def order(talkers: tuple[str, ...], turns: int, rng: random.Random) -> list[str]:
    """Who speaks each turn: two parties alternate; more parties, anyone but the last speaker (each
    talker first heard in the listed order)."""
    out = list(talkers)[: min(turns, len(talkers))]
    while len(out) < turns:
        out.append(rng.choice([t for t in talkers if t != out[-1]]))
    return out


def build(pools: Pools, name: str, kind: str, talkers: tuple[str, ...], count: int, seed: int) -> Conversation:
    rng = random.Random(seed)
    rate = 8000 if kind == "phone" else RATE
    speakers = order(talkers, count, rng)
    paths = {t: pools.utterances(t, rng, speakers.count(t)) for t in talkers}
    clips, lengths = [], []
    for talker in speakers:
        clip, onset, offset = cut(load(paths[talker].pop(), rate), rate)
        clips.append((clip * (10 ** (rng.uniform(-9, -3) / 20) / float(np.abs(clip).max())), onset))
        lengths.append(offset - onset)
    spans = layout(lengths, rng, (0.5, 1.5), GAPS_S)
    audio = mix(clips, [s for s, _ in spans], rate)
    band = TELEPHONE if kind == "phone" else WIDEBAND
    audio = band_limit(audio, rate, band) + noise(len(audio), rate, -60.0, seed, band)
    if rate != RATE:
        import soxr

        audio = soxr.resample(audio, rate, RATE)
    truth = [(s, e, t) for (s, e), t in zip(spans, speakers, strict=True)]
    return Conversation(name, kind, np.clip(audio, -1, 1).astype(np.float32), truth)


def build_set() -> tuple[list[Conversation], dict[str, np.ndarray]]:
    """Every conversation of FILES, and each talker's reference clip (16 kHz)."""
    pools = Pools()
    return [build(pools, *spec) for spec in FILES], pools.references
