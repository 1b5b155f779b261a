"""Let Granite Speech's feature extractor run where torchaudio is not installed, on torch alone.

transformers' `GraniteSpeechFeatureExtractor` builds its log-mel features with one object from
torchaudio, `torchaudio.transforms.MelSpectrogram`, and refuses to run without torchaudio. The CPU
engine runs without it: PyPI has no torchaudio for the pinned torch (2.13), and its newest build
(2.11) is linked against CUDA torch and fails to load beside the CPU one, so the Makefile removes it.
Where torchaudio is absent, this plugin gives that one module a torch-only `MelSpectrogram` with
torchaudio's defaults (periodic Hann window, centred reflect-padded STFT, power 2, HTK mel scale,
unnormalised triangular filters) and lets its backend check pass; the extractor's own code does
the rest (log, clipping, frame stacking). Where torchaudio is installed (the GPU build) it does nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from types import ModuleType, SimpleNamespace
from typing import Any

import torch

EXTRACTOR_MODULE = "transformers.models.granite_speech.feature_extraction_granite_speech"


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def mel_filters(n_freqs: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """HTK-scale triangular filters over the STFT bins, unnormalised: shape (n_freqs, n_mels)."""
    bins = torch.linspace(0, sample_rate // 2, n_freqs)
    mels = torch.linspace(_hz_to_mel(0.0), _hz_to_mel(float(sample_rate // 2)), n_mels + 2)
    edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    widths = edges[1:] - edges[:-1]
    # Distance of each bin below each edge; a filter rises from edge i to i+1 and falls to i+2.
    below = edges.unsqueeze(0) - bins.unsqueeze(1)
    rising = -below[:, :-2] / widths[:-1]
    falling = below[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


class MelSpectrogram(torch.nn.Module):
    """Power mel spectrogram with the signature and defaults of `torchaudio.transforms.MelSpectrogram`."""

    def __init__(
        self, sample_rate: int = 16_000, n_fft: int = 400, win_length: int | None = None, hop_length: int | None = None,
        n_mels: int = 128,
    ) -> None:  # fmt: skip
        super().__init__()
        self.n_fft = n_fft
        self.win_length = win_length or n_fft
        self.hop_length = hop_length or self.win_length // 2
        self.window: torch.Tensor
        self.filters: torch.Tensor
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        self.register_buffer("filters", mel_filters(n_fft // 2 + 1, n_mels, sample_rate), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(..., samples) -> (..., n_mels, frames)."""
        shape = waveform.shape
        stft = torch.stft(
            waveform.reshape(-1, shape[-1]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = stft.abs().pow(2.0)
        mel = torch.matmul(power.transpose(-1, -2), self.filters).transpose(-1, -2)
        return mel.reshape(*shape[:-1], *mel.shape[-2:])


def _without_torchaudio(requires_backends: Any) -> Any:
    def check(obj: object, backends: Any) -> None:
        names = [backends] if isinstance(backends, str) else list(backends)
        requires_backends(obj, [name for name in names if name != "torchaudio"])

    return check


def patch(module: ModuleType) -> None:
    """Give the extractor's module the torch-only transform and a backend check that allows it."""
    if getattr(module, "torchaudio", None) is not None:
        return  # real torchaudio, or already patched
    module.torchaudio = SimpleNamespace(transforms=SimpleNamespace(MelSpectrogram=MelSpectrogram))  # type: ignore[attr-defined]
    module.requires_backends = _without_torchaudio(module.requires_backends)  # type: ignore[attr-defined]


def register() -> None:
    """vLLM general plugin (called once per vLLM process; safe to call again)."""
    if importlib.util.find_spec("torchaudio") is not None:
        return
    patch(importlib.import_module(EXTRACTOR_MODULE))
