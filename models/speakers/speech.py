"""Where someone speaks, for the diarizers: silero-vad's model (shipped in its PyPI package) over 32 ms frames.

The gateway's own detector lives in app/audio/vad.py, which models/ may not import; this one loads the
same packaged model the same way (by path: importing `silero_vad` pins torch to one thread) and keeps
its own, tighter rule for a region's end: a diarizer wants the gaps between turns, not padded speech.
"""

from __future__ import annotations

import importlib.metadata
import threading
import warnings
from typing import Any

import numpy as np

RATE = 16_000
FRAME = 512  # 32 ms, silero-vad's frame at 16 kHz
CONTEXT = 64  # samples of the frame before that each frame sees
FRAME_S = FRAME / RATE
CHUNK_FRAMES = 1 << 14  # 524 s of audio per model call


class SpeechRegions:
    """Speech regions of 16 kHz audio; thread-safe (the model keeps no state between calls)."""

    def __init__(self, threshold: float = 0.5, min_silence_s: float = 0.1, min_speech_s: float = 0.2) -> None:
        self.threshold, self.min_silence_s, self.min_speech_s = threshold, min_silence_s, min_speech_s
        self._model: Any = None
        self._lstm: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import torch

                path = importlib.metadata.distribution("silero-vad").locate_file("silero_vad/data/silero_vad.jit")
                with warnings.catch_warnings():  # TorchScript is deprecated; the model ships as one
                    warnings.simplefilter("ignore", DeprecationWarning)
                    model = torch.jit.load(str(path), map_location="cpu").eval()._model
                self._lstm = _lstm_of(model.decoder.rnn)
                self._model = model
            return self._model

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """P(speech) of each 32 ms frame: the encoder over a chunk's frames at once, the LSTM over the
        sequence, its state carried from chunk to chunk (so memory stays bounded on long audio)."""
        import torch

        model = self._load()
        n = -(-len(samples) // FRAME)
        out = np.empty(n, np.float32)
        state = None
        with torch.inference_mode():
            for lo in range(0, n, CHUNK_FRAMES):
                hi = min(n, lo + CHUNK_FRAMES)
                features = model.encoder(model.stft(torch.from_numpy(_frames(samples, lo, hi)))).squeeze(-1)
                states, state = self._lstm(features.unsqueeze(1), state)
                p = model.decoder.decoder(states.squeeze(1).unsqueeze(-1))
                out[lo:hi] = p.squeeze(1).mean(dim=1).numpy()
        return out

    def __call__(self, samples: np.ndarray) -> list[tuple[float, float]]:
        """(start, end) seconds of each stretch of speech."""
        if len(samples) < FRAME:
            return []
        return regions(self.probabilities(samples), self.threshold, self.min_silence_s, self.min_speech_s)


def regions(p: np.ndarray, threshold: float, min_silence_s: float, min_speech_s: float) -> list[tuple[float, float]]:
    """Frames over `threshold` start speech, under `threshold - 0.15` for `min_silence_s` end it."""
    release = max(threshold - 0.15, 0.01)
    silence = max(1, round(min_silence_s / FRAME_S))
    found: list[tuple[int, int]] = []
    start: int | None = None
    last = 0
    for i, value in enumerate(p):
        if start is None:
            if value >= threshold:
                start = last = i
        elif value >= release:
            last = i
        elif i - last >= silence:
            found.append((start, last + 1))
            start = None
    if start is not None:
        found.append((start, last + 1))
    return [(a * FRAME_S, b * FRAME_S) for a, b in found if (b - a) * FRAME_S >= min_speech_s]


def _frames(samples: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Frames `lo` to `hi` as rows, each after the CONTEXT samples before it (zeros outside the audio)."""
    start, stop = lo * FRAME - CONTEXT, hi * FRAME
    piece = np.zeros(stop - start, np.float32)
    a, b = max(start, 0), min(stop, len(samples))
    piece[a - start : b - start] = samples[a:b]
    return piece[np.arange(hi - lo)[:, None] * FRAME + np.arange(CONTEXT + FRAME)[None, :]]


def _lstm_of(cell: Any) -> Any:
    """The model's LSTM cell as a one-layer `torch.nn.LSTM` (same gate order), to run a whole sequence."""
    import torch

    weights = dict(cell.named_parameters())
    lstm = torch.nn.LSTM(weights["weight_ih"].shape[1], weights["weight_hh"].shape[1])
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").copy_(weights[name])
    return lstm.eval()
