"""Where speech is in a recording: silero-vad's speech probabilities (`models/silero.py`), turned into regions.

Regions are padded and joined across short silences, as OpenAI's `server_vad` does. Where the
model cannot load, a loudness detector stands in.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from models.signal import loudness_threshold, window_rms
from models.silero import FRAME, FRAME_S, RATE, SileroModel, runs

log = logging.getLogger("speech_gateway.vad")

__all__ = ["FRAME", "RATE", "LoudnessVad", "SileroVad", "SpeechDetector", "VadParams", "regions"]
# Speech ends once the probability stays under threshold - HYSTERESIS (silero's own rule).
HYSTERESIS = 0.15
MIN_SPEECH_S = 0.25
# The loudness stand-in: frames this close to the loud frames count as speech.
ENERGY_MARGIN_DB = 30.0


@dataclass(frozen=True)
class VadParams:
    """OpenAI's `server_vad` knobs; the defaults are its own."""

    threshold: float = 0.5
    prefix_padding_s: float = 0.3
    silence_duration_s: float = 0.5


class SpeechDetector(Protocol):
    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """P(speech) of every 32 ms frame of 16 kHz `samples`."""
        ...


class LoudnessVad:
    """Speech is whatever is loud: the stand-in where silero-vad cannot load."""

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        return energy_probabilities(samples)


class SileroVad:
    """silero-vad, or the loudness stand-in where its package cannot load; thread-safe."""

    def __init__(self) -> None:
        self._model = SileroModel()
        self._failed = False
        self._lock = threading.Lock()

    def _usable(self) -> bool:
        with self._lock:
            if not self._failed:
                try:
                    self._model.load()
                except Exception as error:  # a missing or broken package: the stand-in serves
                    log.warning("silero-vad unavailable (%s); detecting speech by loudness", type(error).__name__)
                    self._failed = True
            return not self._failed

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """P(speech) of every 32 ms frame of 16 kHz `samples`."""
        if not self._usable():
            return energy_probabilities(samples)
        return self._model.probabilities(samples)


def _whole_frames(samples: np.ndarray) -> np.ndarray:
    """`samples` zero-padded to a whole number of frames."""
    n = -(-len(samples) // FRAME)
    padded = np.zeros(n * FRAME, dtype=np.float32)
    padded[: len(samples)] = samples
    return padded


def energy_probabilities(samples: np.ndarray) -> np.ndarray:
    """1 for 32 ms frames within `ENERGY_MARGIN_DB` of the recording's loud frames, else 0."""
    rms = window_rms(_whole_frames(samples), FRAME, FRAME)
    return (rms > loudness_threshold(rms, ENERGY_MARGIN_DB)).astype(np.float32)


def regions(probabilities: np.ndarray, params: VadParams, duration_s: float) -> list[tuple[float, float]]:
    """Speech regions in seconds: padded by `prefix_padding_s`, joined across shorter silences."""
    threshold = params.threshold
    release = max(threshold - HYSTERESIS, 0.01)
    silence_frames = max(1, round(params.silence_duration_s / FRAME_S))
    found = runs(probabilities, threshold, release, silence_frames)
    pad = params.prefix_padding_s
    out: list[tuple[float, float]] = []
    for a, b in found:
        if (b - a) * FRAME_S < MIN_SPEECH_S:
            continue
        lo, hi = max(0.0, a * FRAME_S - pad), min(duration_s, b * FRAME_S + pad)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out
