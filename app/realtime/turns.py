"""Turns in a live stream: where speech starts and stops, found by the speech detector as audio arrives.

The detector runs at 16 kHz on 32 ms frames. It is asked about new frames in blocks of
`BLOCK_FRAMES`, each call reading the block plus a fixed stretch of earlier audio for context (the
detector keeps no state between calls): the cost per second of audio stays the same however long
the session runs, and every call has the same shape (TorchScript re-plans for new shapes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr

from app.audio.vad import FRAME, HYSTERESIS, SpeechDetector
from app.audio.vad import RATE as DETECTOR_RATE
from app.realtime.events import RATE, TurnDetection

FRAME_IN = FRAME * RATE // DETECTOR_RATE  # one detector frame in input samples (768 at 24 kHz)
CONTEXT_FRAMES = 32  # about 1 s of earlier audio re-read before the new frames
BLOCK_FRAMES = 4  # new frames judged per call: turns are found within 128 ms of the audio arriving


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
        turns: list[Turn] = []
        while available - self._done >= BLOCK_FRAMES:
            window = self._frames(self._done - CONTEXT_FRAMES, self._done + BLOCK_FRAMES)
            probabilities = self.detector.probabilities(window)[CONTEXT_FRAMES:]
            turns += [turn for i, p in enumerate(probabilities) if (turn := self._step(self._done + i, float(p)))]
            self._done += BLOCK_FRAMES
        keep = max(self._first, self._done - CONTEXT_FRAMES)
        self._audio = self._audio[(keep - self._first) * FRAME :]
        self._first = keep
        return turns

    def _frames(self, start: int, end: int) -> np.ndarray:
        """16 kHz audio of frames `start` to `end`; silence before the stream began."""
        lead = max(0, self._first - start) * FRAME
        body = self._audio[max(0, start - self._first) * FRAME : (end - self._first) * FRAME]
        return np.concatenate([np.zeros(lead, dtype=np.float32), body]) if lead else body

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
