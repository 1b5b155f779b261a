"""The torch-only mel spectrogram Granite Speech's extractor runs on without torchaudio, held against references.

librosa (installed beside vLLM) is an independent implementation of the same transform: HTK mel scale, no filter
normalisation, centred reflect-padded STFT with a periodic Hann window, power 2. Where torchaudio imports (the
GPU build), the extractor's features are also compared with the ones it computes with torchaudio itself.
"""

from __future__ import annotations

import importlib
import importlib.util

import librosa
import numpy as np
import pytest
import torch

from engine_plugins.granite_features import EXTRACTOR_MODULE, MelSpectrogram, mel_filters, patch
from tests.speech import SENTENCES, require_tools, speak

# GraniteSpeechFeatureExtractor's settings (the published checkpoints' preprocessor_config.json).
SETTINGS = {"sample_rate": 16_000, "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 80}


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    require_tools()
    speech = speak(SENTENCES[2]).astype(np.float32)
    noise = (np.random.default_rng(0).standard_normal(12_345) * 0.1).astype(np.float32)
    return {"speech": speech, "odd length": speech[:16_001], "noise": noise, "short": speech[:400]}


def test_filters_equal_librosa_htk_unnormalised() -> None:
    ours = mel_filters(257, 80, 16_000).numpy()
    theirs = librosa.filters.mel(sr=16_000, n_fft=512, n_mels=80, fmin=0.0, fmax=8_000.0, htk=True, norm=None).T
    # torchaudio (and so ours) computes the edges in float32, librosa in float64.
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def test_mel_spectrogram_equals_librosa(clips: dict[str, np.ndarray]) -> None:
    transform = MelSpectrogram(**SETTINGS)
    for name, audio in clips.items():
        ours = transform(torch.from_numpy(audio)[None])[0].numpy()
        theirs = librosa.feature.melspectrogram(
            y=audio, sr=16_000, n_fft=512, win_length=400, hop_length=160, n_mels=80, htk=True, norm=None,
            center=True, pad_mode="reflect", power=2.0,
        )  # fmt: skip
        assert ours.shape == theirs.shape, name
        # Relative to the loudest bin: float32 STFTs of two libraries agree to about 1e-6 of it.
        assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max(), name


def test_extractor_runs_on_the_torch_only_transform(clips: dict[str, np.ndarray]) -> None:
    """Without torchaudio the patched extractor gives Granite's shapes and token counts (10 per second)."""
    from transformers import GraniteSpeechFeatureExtractor

    if importlib.util.find_spec("torchaudio") is None:
        patch(importlib.import_module(EXTRACTOR_MODULE))
    out = GraniteSpeechFeatureExtractor()(clips["speech"])
    frames = (len(clips["speech"]) // 160 + 1) // 2
    assert tuple(out["input_features"].shape) == (1, frames, 160)
    assert out["audio_embed_sizes"] == [-(-frames // 15) * 3]


def test_features_equal_torchaudio_where_it_imports(clips: dict[str, np.ndarray]) -> None:
    torchaudio = pytest.importorskip("torchaudio")  # the CPU build has none that loads: see the module docstring
    module = importlib.import_module(EXTRACTOR_MODULE)
    for name, audio in clips.items():
        theirs = torchaudio.transforms.MelSpectrogram(**SETTINGS)(torch.from_numpy(audio)[None])
        ours = MelSpectrogram(**SETTINGS)(torch.from_numpy(audio)[None])
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6 * float(theirs.abs().max()), msg=name)
    assert module.torchaudio is torchaudio  # the plugin left the real one in place
