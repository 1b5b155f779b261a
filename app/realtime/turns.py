"""Turns in a live stream: where speech starts and stops, found by the speech detector as audio arrives.

The detector runs at 16 kHz on 32 ms frames. Each call reads only the new whole frames plus a
bounded stretch of earlier audio for context (the detector keeps no state between calls), so the
cost per second of audio stays the same however long the session runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr

from app.realtime.events import RATE, TurnDetection
from app.vad import FRAME, HYSTERESIS, SpeechDetector
from app.vad import RATE as DETECTOR_RATE

FRAME_IN = FRAME * RATE // DETECTOR_RATE  # one detector frame in input samples (768 at 24 kHz)
CONTEXT_FRAMES = 32  # about 1 s of earlier audio re-read before the new frames


@dataclass(frozen=True)
class Turn:
    """Speech started (at `sample`, prefix padding included) or stopped (audio up to `sample`)."""

    kind: Literal["start", "stop"]
    sample: int  # in input samples since the detector's origin


class TurnDetector:
    """Feeds 24 kHz audio to the speech detector and applies OpenAI's `server_vad` rule to its frames."""

    def __init__(self, detector: SpeechDetector, params: TurnDetection, origin: int = 0) -> None:
        self.detector = detector
        self.params = params
        self.origin = origin
        self.speaking = False
        self._resampler = soxr.ResampleStream(RATE, DETECTOR_RATE, 1, dtype="float32")
        self._audio = np.zeros(0, dtype=np.float32)  # 16 kHz samples from frame `_first` on
        self._first = 0  # detector frame index of `_audio[0]`
        self._done = 0  # frames already judged
        self._last = 0  # last frame heard as speech

    def feed(self, samples: np.ndarray) -> list[Turn]:
        """The turns the new audio completes."""
        self._audio = np.concatenate([self._audio, self._resampler.resample_chunk(samples)])
        available = self._first + len(self._audio) // FRAME
        if available <= self._done:
            return []
        start = max(self._first, self._done - CONTEXT_FRAMES)
        window = self._audio[(start - self._first) * FRAME : (available - self._first) * FRAME]
        probabilities = self.detector.probabilities(window)[self._done - start :]
        turns = [turn for i, p in enumerate(probabilities) if (turn := self._step(self._done + i, float(p)))]
        self._done = available
        keep = max(self._first, self._done - CONTEXT_FRAMES)
        self._audio = self._audio[(keep - self._first) * FRAME :]
        self._first = keep
        return turns

    def interrupt(self) -> None:
        """Forget the speech in progress (the buffer was cleared)."""
        self.speaking = False

    def _step(self, frame: int, p: float) -> Turn | None:
        params = self.params
        if not self.speaking:
            if p < params.threshold:
                return None
            self.speaking = True
            self._last = frame
            pad = params.prefix_padding_ms * RATE // 1000
            return Turn("start", max(0, frame * FRAME_IN - pad) + self.origin)
        if p >= max(params.threshold - HYSTERESIS, 0.01):
            self._last = frame
            return None
        silence_frames = max(1, round(params.silence_duration_ms / (1000 * FRAME / DETECTOR_RATE)))
        if frame - self._last < silence_frames:
            return None
        self.speaking = False
        return Turn("stop", (frame + 1) * FRAME_IN + self.origin)
