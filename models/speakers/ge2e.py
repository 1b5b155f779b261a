"""GE2E speaker embeddings, the encoder the `Resemblyzer` wheel ships (Apache-2.0), on our pipeline.

Only the weights come from the package (its __init__ needs webrtcvad, which the gateway does not):
the network is three LSTM layers and a linear layer over 40-bin mel power spectra of audio at -30 dBFS,
its last hidden state through a ReLU, unit length; it is built here to that shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.speakers.packaged import packaged_file
from models.speakers.pipeline import Tuning, WindowDiarizer

REQUIREMENT = "Resemblyzer==0.1.4"
WEIGHTS = ("resemblyzer/pretrained.pt", "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e")
RATE = 16_000
MELS, HIDDEN, LAYERS = 40, 256, 3
TARGET_DBFS = -30.0


def build_network() -> Any:
    """The encoder's modules, named as its checkpoint names them."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(MELS, HIDDEN, LAYERS, batch_first=True)
            self.linear = torch.nn.Linear(HIDDEN, HIDDEN)

        def forward(self, mels: torch.Tensor) -> torch.Tensor:
            _, (hidden, _) = self.lstm(mels)
            out = torch.relu(self.linear(hidden[-1]))
            return out / torch.norm(out, dim=1, keepdim=True).clamp_min(1e-12)

    return Encoder()


def mel_frames(samples: np.ndarray) -> np.ndarray:
    """40-bin mel power spectrogram (25 ms windows, 10 ms hop) of `samples` brought to -30 dBFS."""
    import librosa

    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) or 1e-9
    scaled = samples * (10 ** (TARGET_DBFS / 20) / rms)
    mel = librosa.feature.melspectrogram(y=scaled.astype(np.float32), sr=RATE, n_fft=400, hop_length=160, n_mels=MELS)
    return np.asarray(mel.T, dtype=np.float32)


class Ge2eEmbedder:
    """GE2E over each span's mel frames."""

    def __init__(self) -> None:
        import torch

        state = torch.load(str(packaged_file("Resemblyzer", *WEIGHTS, REQUIREMENT)), map_location="cpu")
        model = build_network()
        # The checkpoint also holds the GE2E loss's scale and bias, which inference does not use.
        model.load_state_dict({k: v for k, v in state["model_state"].items() if k.split(".")[0] in ("lstm", "linear")})
        self.model: Any = model.eval()

    def embed(self, audio: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
        import torch

        out = np.zeros((len(spans), HIDDEN), np.float32)
        by_length: dict[int, list[tuple[int, np.ndarray]]] = {}
        for i, (start, end) in enumerate(spans):
            mel = mel_frames(audio[int(start * RATE) : max(int(end * RATE), int(start * RATE) + 400)])
            by_length.setdefault(len(mel), []).append((i, mel))
        with torch.inference_mode():
            for group in by_length.values():
                rows = [i for i, _ in group]
                out[rows] = self.model(torch.from_numpy(np.stack([m for _, m in group]))).numpy()
        return out


class Ge2eDiarizer(WindowDiarizer):
    """The `ge2e` diarizer."""

    def __init__(self, tuning: Tuning | None = None) -> None:
        super().__init__(tuning or Tuning(threshold=0.3, naming=0.6))

    def load(self) -> Ge2eEmbedder:
        return Ge2eEmbedder()
