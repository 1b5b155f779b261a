"""silero-vad's speech probabilities, frame-batched: the one loader of the packaged model.

The model ships inside the silero-vad PyPI package and is loaded from there by path: importing
the package would pin torch to one thread for the whole process. Its encoder runs over every
32 ms frame at once and its LSTM over the whole sequence in one call (the shipped model steps
frame by frame from Python): about 0.1 % of the audio's duration, 0.3 s for 6 minutes. It runs
over `CHUNK_FRAMES` frames at a time, the LSTM's state carried from one chunk to the next, so its
working memory is bounded (whole, it took some 9x the audio's own size: 3.9 GB for two hours).
The gateway's speech detector (app/audio/vad.py) and the diarizers (models/speakers/) share it.
"""

from __future__ import annotations

import importlib.metadata
import threading
import warnings
from typing import Any

import numpy as np

RATE = 16_000
FRAME = 512  # 32 ms: the frame silero-vad is trained on at 16 kHz
CONTEXT = 64  # samples of the previous frame each frame sees
# Frames per model call: 524 s of audio, some 250 MB of working memory.
CHUNK_FRAMES = 1 << 14
FRAME_S = FRAME / RATE


class SileroModel:
    """The packaged TorchScript model, loaded on first use; thread-safe (no state between calls)."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lstm: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """The model (raises where the package is missing or broken)."""
        with self._lock:
            if self._model is None:
                import torch

                path = importlib.metadata.distribution("silero-vad").locate_file("silero_vad/data/silero_vad.jit")
                with warnings.catch_warnings():  # TorchScript is deprecated; this model ships as one
                    warnings.simplefilter("ignore", DeprecationWarning)
                    model = torch.jit.load(str(path), map_location="cpu").eval()._model
                self._lstm = _as_lstm(model.decoder.rnn)
                self._model = model
            return self._model

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """P(speech) of every 32 ms frame of 16 kHz `samples`."""
        import torch

        model = self.load()
        n = -(-len(samples) // FRAME)
        out = np.empty(n, np.float32)
        state = None
        with torch.inference_mode():
            for lo in range(0, n, CHUNK_FRAMES):
                hi = min(n, lo + CHUNK_FRAMES)
                features = model.encoder(model.stft(torch.from_numpy(_framed(samples, lo, hi)))).squeeze(-1)
                # Every frame of the chunk in one call, not a Python loop; the state runs on.
                states, state = self._lstm(features.unsqueeze(1), state)
                p = model.decoder.decoder(states.squeeze(1).unsqueeze(-1))
                out[lo:hi] = p.squeeze(1).mean(dim=1).numpy()
        return out


def runs(probabilities: np.ndarray, threshold: float, release: float, silence_frames: int) -> list[tuple[int, int]]:
    """(first, end) frames of each run of speech: it starts at `threshold` and ends once the
    probability stays under `release` for `silence_frames` (silero's own hysteresis)."""
    found: list[tuple[int, int]] = []
    start: int | None = None
    last = 0
    for i, p in enumerate(probabilities):
        if start is None:
            if p >= threshold:
                start = last = i
        elif p >= release:
            last = i
        elif i - last >= silence_frames:
            found.append((start, last + 1))
            start = None
    if start is not None:
        found.append((start, last + 1))
    return found


def _framed(samples: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Frames `lo` to `hi` of `samples`, each after the `CONTEXT` samples before it (zeros before
    the start and past the end), as rows: only this chunk's samples are copied."""
    start, stop = lo * FRAME - CONTEXT, hi * FRAME
    piece = np.zeros(stop - start, np.float32)
    a, b = max(start, 0), min(stop, len(samples))
    piece[a - start : b - start] = samples[a:b]
    index = np.arange(hi - lo)[:, None] * FRAME + np.arange(CONTEXT + FRAME)[None, :]
    return piece[index]


def _as_lstm(cell: Any) -> Any:
    """The model's LSTM cell as a one-layer `torch.nn.LSTM` with the same weights (same gate order)."""
    import torch

    weights = dict(cell.named_parameters())
    lstm = torch.nn.LSTM(weights["weight_ih"].shape[1], weights["weight_hh"].shape[1])
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").copy_(weights[name])
    return lstm.eval()
