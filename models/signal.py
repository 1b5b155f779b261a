"""Loudness on plain sample arrays: RMS windows, silence, and a cheap speech-energy detector."""

from __future__ import annotations

import numpy as np


def window_rms(samples: np.ndarray, size: int, hop: int) -> np.ndarray:
    """RMS of windows of `size` samples every `hop` samples (cumulative sums: O(n))."""
    squares = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    starts = np.arange(0, len(samples) - size + 1, hop)
    return np.sqrt((squares[starts + size] - squares[starts]) / size)


def is_silent(samples: np.ndarray, threshold_dbfs: float = -60.0) -> bool:
    """True when no 25 ms stretch rises above `threshold_dbfs` (digital or near-digital silence)."""
    if len(samples) == 0:
        return True
    size = 400 if len(samples) >= 400 else len(samples)
    loudest = float(window_rms(samples, size, size).max(initial=0.0))
    return loudest < 10 ** (threshold_dbfs / 20)


def quiet_noise(seconds: float, rate: int) -> np.ndarray:
    """Faint white noise (-40 dBFS), the same every time: audio for warming up, never taken for silence."""
    return np.random.default_rng(0).normal(scale=0.01, size=int(seconds * rate)).astype(np.float32)


FRAME = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms


def frame_rms(samples: np.ndarray) -> np.ndarray:
    if len(samples) < FRAME:
        return np.sqrt(np.array([np.mean(samples.astype(np.float64) ** 2)])) if len(samples) else np.zeros(1)
    return window_rms(samples, FRAME, HOP)


def loudness_threshold(rms: np.ndarray, margin_db: float) -> float:
    """The level `margin_db` under the loud frames (95th percentile of `rms`), never under -60 dBFS."""
    level = float(np.percentile(rms, 95)) if len(rms) else 0.0
    return max(level * 10 ** (-margin_db / 20), 10 ** (-60 / 20))


def has_speech(
    part: np.ndarray, context: np.ndarray, margin_db: float = 25.0, min_s: float = 0.15, rate: int = 16_000
) -> bool:
    """Whether `part` holds sound at speech level: at least `min_s` of 25 ms frames within
    `margin_db` of `context`'s loud frames (its 95th percentile), and above -60 dBFS.

    A cheap energy detector: it tells a pause's background noise from more words, relative to
    how loud the speaker is, so quiet recordings and noisy rooms both work.
    """
    if is_silent(part):
        return False
    threshold = loudness_threshold(frame_rms(context), margin_db)
    loud = int((frame_rms(part) > threshold).sum())
    return loud * HOP / rate >= min_s
