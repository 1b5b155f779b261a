"""Where speech is in a recording: silero-vad's speech probabilities, turned into regions.

The model ships inside the silero-vad PyPI package and is loaded from there by path: importing
the package would pin torch to one thread for the whole process. Its encoder runs over every
32 ms frame at once and its LSTM over the whole sequence in one call (the shipped model steps
frame by frame from Python): about 0.1 % of the audio's duration, 0.3 s for 6 minutes. It runs
over `CHUNK_FRAMES` frames at a time, the LSTM's state carried from one chunk to the next, so its
working memory is bounded (whole, it took some 9x the audio's own size: 3.9 GB for two hours).
Where the model cannot load, a loudness detector stands in.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from models.signal import loudness_threshold, window_rms

log = logging.getLogger("speech_gateway.vad")

RATE = 16_000
FRAME = 512  # 32 ms: the frame silero-vad is trained on at 16 kHz
CONTEXT = 64  # samples of the previous frame each frame sees
# Frames per model call: 524 s of audio, some 250 MB of working memory.
CHUNK_FRAMES = 1 << 14
FRAME_S = FRAME / RATE
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
    """silero-vad's TorchScript model, run frame-batched; thread-safe (no state between calls)."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lstm: Any = None
        self._failed = False
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None and not self._failed:
                try:
                    import torch

                    path = importlib.metadata.distribution("silero-vad").locate_file("silero_vad/data/silero_vad.jit")
                    with warnings.catch_warnings():  # TorchScript is deprecated; this model ships as one
                        warnings.simplefilter("ignore", DeprecationWarning)
                        self._model = torch.jit.load(str(path), map_location="cpu").eval()._model
                    self._lstm = _as_lstm(self._model.decoder.rnn)
                except Exception as error:  # a missing or broken package: the stand-in serves
                    log.warning("silero-vad unavailable (%s); detecting speech by loudness", type(error).__name__)
                    self._failed = True
            return self._model

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """P(speech) of every 32 ms frame of 16 kHz `samples`."""
        model = self._load()
        if model is None:
            return energy_probabilities(samples)
        import torch

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


def _framed(samples: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Frames `lo` to `hi` of `samples`, each after the `CONTEXT` samples before it (zeros before
    the start and past the end), as rows: only this chunk's samples are copied."""
    start, stop = lo * FRAME - CONTEXT, hi * FRAME
    piece = np.zeros(stop - start, np.float32)
    a, b = max(start, 0), min(stop, len(samples))
    piece[a - start : b - start] = samples[a:b]
    index = np.arange(hi - lo)[:, None] * FRAME + np.arange(CONTEXT + FRAME)[None, :]
    return piece[index]


def _whole_frames(samples: np.ndarray) -> np.ndarray:
    """`samples` zero-padded to a whole number of frames."""
    n = -(-len(samples) // FRAME)
    padded = np.zeros(n * FRAME, dtype=np.float32)
    padded[: len(samples)] = samples
    return padded


def _as_lstm(cell: Any) -> Any:
    """The model's LSTM cell as a one-layer `torch.nn.LSTM` with the same weights (same gate order)."""
    import torch

    weights = dict(cell.named_parameters())
    lstm = torch.nn.LSTM(weights["weight_ih"].shape[1], weights["weight_hh"].shape[1])
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(lstm, f"{name}_l0").copy_(weights[name])
    return lstm.eval()


def energy_probabilities(samples: np.ndarray) -> np.ndarray:
    """1 for 32 ms frames within `ENERGY_MARGIN_DB` of the recording's loud frames, else 0."""
    rms = window_rms(_whole_frames(samples), FRAME, FRAME)
    return (rms > loudness_threshold(rms, ENERGY_MARGIN_DB)).astype(np.float32)


def regions(probabilities: np.ndarray, params: VadParams, duration_s: float) -> list[tuple[float, float]]:
    """Speech regions in seconds: padded by `prefix_padding_s`, joined across shorter silences."""
    threshold = params.threshold
    release = max(threshold - HYSTERESIS, 0.01)
    silence_frames = max(1, round(params.silence_duration_s / FRAME_S))
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
