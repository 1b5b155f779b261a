"""Recordings composed from speech arrays: placement with pauses, true speech onsets, seeded line noise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
FRAME_S = 0.01
# A prompt's speech starts at its first 10 ms frame within this many dB of its loudest frame.
ONSET_BELOW_PEAK_DB = 30.0


@dataclass(frozen=True)
class Recording:
    """Composed audio and where each part's speech truly starts, in seconds."""

    samples: np.ndarray
    onsets: list[float]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def frame_rms(samples: np.ndarray, rate: int = SAMPLE_RATE, frame_s: float = FRAME_S) -> np.ndarray:
    """Root mean square of each whole frame of `frame_s` seconds."""
    size = max(1, round(frame_s * rate))
    count = len(samples) // size
    if count == 0:
        return np.zeros(0, dtype=np.float64)
    frames = samples[: count * size].astype(np.float64).reshape(count, size)
    return np.sqrt(np.mean(frames**2, axis=1))


def speech_onset(samples: np.ndarray, rate: int = SAMPLE_RATE, below_peak_db: float = ONSET_BELOW_PEAK_DB) -> float:
    """Seconds to the first frame whose energy is within `below_peak_db` of the loudest frame (0 if silent)."""
    rms = frame_rms(samples, rate)
    if rms.size == 0 or rms.max() <= 0:
        return 0.0
    threshold = rms.max() * 10 ** (-below_peak_db / 20)
    first = int(np.argmax(rms >= threshold))
    return first * FRAME_S


def compose(parts: Sequence[np.ndarray], gaps_before: Sequence[float], tail_s: float = 0.5) -> Recording:
    """Each part after its gap of silence, then `tail_s` of silence; onsets refined to the speech.

    `gaps_before[i]` is the silence in seconds before `parts[i]` (the first one is lead-in).
    """
    if len(parts) != len(gaps_before):
        raise ValueError("one gap per part")
    pieces: list[np.ndarray] = []
    onsets: list[float] = []
    position = 0
    for part, gap in zip(parts, gaps_before, strict=True):
        silence = np.zeros(round(gap * SAMPLE_RATE), dtype=np.float32)
        pieces += [silence, part.astype(np.float32)]
        position += len(silence)
        onsets.append(position / SAMPLE_RATE + speech_onset(part))
        position += len(part)
    pieces.append(np.zeros(round(tail_s * SAMPLE_RATE), dtype=np.float32))
    return Recording(np.concatenate(pieces), onsets)


def line_noise(length: int, level_dbfs: float, seed: int, band_hz: tuple[float, float] = (300.0, 3400.0)) -> np.ndarray:
    """Seeded Gaussian noise limited to a telephone band, scaled to an RMS of `level_dbfs`."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length, 1 / SAMPLE_RATE)
    spectrum[(frequencies < band_hz[0]) | (frequencies > band_hz[1])] = 0
    noise = np.fft.irfft(spectrum, n=length)
    rms = float(np.sqrt(np.mean(noise**2))) or 1.0
    return (noise * (10 ** (level_dbfs / 20) / rms)).astype(np.float32)


def with_noise(recording: Recording, level_dbfs: float, seed: int) -> Recording:
    """The recording with line noise under all of it; the onsets stay those of the speech."""
    noise = line_noise(len(recording.samples), level_dbfs, seed)
    return Recording(np.clip(recording.samples + noise, -1.0, 1.0), recording.onsets)


def to_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """`samples` at `rate` Hz resampled to 16 kHz float32."""
    if rate == SAMPLE_RATE:
        return samples.astype(np.float32)
    import soxr

    return np.asarray(soxr.resample(samples.astype(np.float32), rate, SAMPLE_RATE), dtype=np.float32)


def peak_normalise(samples: np.ndarray, peak_dbfs: float = -3.0) -> np.ndarray:
    """Scaled so that its largest sample sits at `peak_dbfs`."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= 0:
        return samples
    return (samples * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)
