"""Scores: normalised text, word errors pooled over files, latency percentiles, segment-onset errors."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tests.speech import normalise as speech_normalise

# Digits spelled out, so "1, 2, 3" and "one, two, three" agree, while digits run together
# ("12345678910") stay one wrong number. (Whisper's English normaliser joins spoken counting into
# "12345678910", which would hide exactly that error.)
normalise = speech_normalise


@dataclass(frozen=True)
class WordErrors:
    """Edits between references and hypotheses, summed over files."""

    reference_words: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def wer(self) -> float:
        edits = self.substitutions + self.deletions + self.insertions
        return edits / self.reference_words if self.reference_words else float(edits > 0)


def pooled_errors(references: Sequence[str], hypotheses: Sequence[str]) -> WordErrors:
    """Total edits / total reference words over all pairs, after `normalise`."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError("one hypothesis per reference")
    refs = [normalise(r) for r in references]
    hyps = [normalise(h) for h in hypotheses]
    words = sum(len(r.split()) for r in refs)
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    stray = sum(len(h.split()) for r, h in zip(refs, hyps, strict=True) if not r)
    if not pairs:
        return WordErrors(words, 0, 0, stray)
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    return WordErrors(words, out.substitutions, out.deletions, out.insertions + stray)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation), None for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def onset_errors(true_onsets: Sequence[float], segment_starts: Sequence[float]) -> list[float]:
    """For each true onset, the absolute distance to the nearest segment start (no segments: none)."""
    if not segment_starts:
        return []
    starts = np.asarray(sorted(segment_starts), dtype=np.float64)
    return [float(np.min(np.abs(starts - onset))) for onset in true_onsets]


@dataclass(frozen=True)
class Spread:
    median: float | None
    p95: float | None


def spread(values: Sequence[float]) -> Spread:
    """Median and 95th percentile, None for no values."""
    return Spread(percentile(values, 50), percentile(values, 95))


def rtfx(audio_s: float, walls: Sequence[float]) -> float | None:
    """Audio seconds per wall second, over the median of the repetitions."""
    return audio_s / statistics.median(walls) if walls else None
