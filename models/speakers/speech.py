"""Where someone speaks, for the diarizers: silero-vad's probabilities (`models/silero.py`) as regions.

The gateway's own detector (app/audio/vad.py) pads speech and joins it across half-second pauses
for cutting; a diarizer wants the gaps between turns, so its rule for a region's end is tighter.
"""

from __future__ import annotations

import numpy as np

from models.silero import FRAME, FRAME_S, SileroModel, runs


class SpeechRegions:
    """Speech regions of 16 kHz audio; thread-safe (the model keeps no state between calls)."""

    def __init__(self, threshold: float = 0.5, min_silence_s: float = 0.1, min_speech_s: float = 0.2) -> None:
        self.threshold, self.min_silence_s, self.min_speech_s = threshold, min_silence_s, min_speech_s
        self.model = SileroModel()

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        return self.model.probabilities(samples)

    def __call__(self, samples: np.ndarray) -> list[tuple[float, float]]:
        """(start, end) seconds of each stretch of speech."""
        if len(samples) < FRAME:
            return []
        return regions(self.probabilities(samples), self.threshold, self.min_silence_s, self.min_speech_s)


def regions(p: np.ndarray, threshold: float, min_silence_s: float, min_speech_s: float) -> list[tuple[float, float]]:
    """Frames over `threshold` start speech, under `threshold - 0.15` for `min_silence_s` end it."""
    release = max(threshold - 0.15, 0.01)
    found = runs(p, threshold, release, max(1, round(min_silence_s / FRAME_S)))
    return [(a * FRAME_S, b * FRAME_S) for a, b in found if (b - a) * FRAME_S >= min_speech_s]
