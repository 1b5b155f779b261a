"""Audio in: decode any accepted container to float32 mono, resample, and cut at quiet points."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from app.http.errors import bad_request
from models.signal import window_rms

MIN_AUDIO_SECONDS = 0.1
# Seconds read per block while decoding, so a long file is never held at its source layout.
BLOCK_SECONDS = 30
FFMPEG_TIMEOUT_S = 120
_PATH = re.compile(r"(?:/[\w.\-]+){2,}")


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def too_long(seconds: float, limit: float) -> Exception:
    return bad_request(
        f"the audio lasts {seconds:.0f} s, longer than the limit of {limit:.0f} s; split it and send the parts",
        param="file",
        code="audio_too_long",
    )


def _mono(block: np.ndarray) -> np.ndarray:
    return block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block.astype(np.float32, copy=False)


def _decode_soundfile(path: Path, max_seconds: float) -> Audio:
    with sf.SoundFile(str(path)) as f:
        rate = int(f.samplerate)
        if rate <= 0:
            raise bad_request("the audio declares a sample rate of 0", param="file", code="invalid_audio")
        if f.frames > 0 and f.frames / rate > max_seconds + 1:
            raise too_long(f.frames / rate, max_seconds)
        blocks = []
        total = 0
        for block in f.blocks(blocksize=rate * BLOCK_SECONDS, dtype="float32", always_2d=True):
            blocks.append(_mono(block))
            total += len(block)
            if total / rate > max_seconds + 1:
                raise too_long(total / rate, max_seconds)
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return Audio(samples, rate)


def _decode_ffmpeg(path: Path, max_seconds: float) -> Audio:
    """Containers libsndfile cannot read (m4a, mp4, webm, ...) go through ffmpeg to a WAV file."""
    if shutil.which("ffmpeg") is None:
        raise bad_request(
            "this audio format needs ffmpeg, which the server lacks; send wav, flac, ogg or mp3",
            param="file",
            code="unsupported_format",
        )
    with tempfile.TemporaryDirectory(prefix="decode-") as tmp:
        out = Path(tmp) / "audio.wav"
        cmd = [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
            "-vn", "-t", str(max_seconds + 2), "-f", "wav", "-acodec", "pcm_f32le", str(out),
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise bad_request("decoding the audio took too long", param="file", code="invalid_audio") from None
        if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = _without_paths(reason[-1] if reason else "no audio stream found", path)
            raise bad_request(
                f"could not decode the audio file ({detail[:200]}); "
                "send flac, m4a, mp3, mp4, mpeg, mpga, ogg, wav or webm",
                param="file",
                code="invalid_audio",
            )
        return _decode_soundfile(out, max_seconds)


def _without_paths(message: str, path: Path) -> str:
    """ffmpeg names the file it read; the client must not learn where the server spooled it."""
    return _PATH.sub("<file>", message.replace(str(path), "<file>"))


def decode(path: Path, max_seconds: float) -> Audio:
    """Decode a file to mono float32, refusing what is not audio, too long, or not finite."""
    try:
        audio = _decode_soundfile(path, max_seconds)
    except (RuntimeError, ValueError, TypeError):
        # libsndfile does not know the container (or chokes on it): let ffmpeg try.
        audio = _decode_ffmpeg(path, max_seconds)
    if audio.duration > max_seconds:
        raise too_long(audio.duration, max_seconds)
    if not np.isfinite(audio.samples).all():
        raise bad_request("the audio contains NaN or infinite samples", param="file", code="invalid_audio")
    return audio


def resample(audio: Audio, sample_rate: int) -> Audio:
    """The same audio at `sample_rate` (librosa with soxr), clipped to [-1, 1]."""
    samples = audio.samples
    if audio.sample_rate != sample_rate and len(samples):
        samples = librosa.resample(samples, orig_sr=audio.sample_rate, target_sr=sample_rate, res_type="soxr_hq")
    return Audio(np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False), sample_rate)


def check_length(audio: Audio) -> None:
    if audio.duration < MIN_AUDIO_SECONDS:
        raise bad_request(
            f"the audio is too short ({audio.duration:.3f} s); the minimum is {MIN_AUDIO_SECONDS} s",
            param="file",
            code="audio_too_short",
        )


def quietest_point(samples: np.ndarray, size: int) -> int:
    """Index of the centre of the quietest `size`-sample window in `samples`."""
    if len(samples) <= size:
        return len(samples) // 2
    hop = max(1, size // 4)
    rms = window_rms(samples, size, hop)
    # Prefer the latest among equally quiet windows: longer windows, fewer pieces.
    best = len(rms) - 1 - int(np.argmin(rms[::-1]))
    return best * hop + size // 2


def split_windows(
    samples: np.ndarray, sample_rate: int, max_s: float | None, search_s: float, energy_window: int | None
) -> list[tuple[int, int]]:
    """Cut audio into pieces of at most `max_s` seconds at quiet points.

    Each cut lies at the quietest point of the last `search_s` seconds before the limit; once
    what is left fits in two pieces with room to search, it is halved at the quietest point
    near its middle instead, so no piece is a sliver. `energy_window` None: plain cuts.
    """
    n = len(samples)
    if max_s is None or n <= max_s * sample_rate:
        return [(0, n)]
    limit = int(max_s * sample_rate)
    search = min(int(search_s * sample_rate), limit // 2)
    pieces = []
    start = 0
    while n - start > limit:
        remaining = n - start
        if remaining <= 2 * limit - search:
            lo = start + remaining // 2 - search // 2
        else:
            lo = start + limit - search
        cut = lo + search
        if energy_window:
            cut = lo + quietest_point(samples[lo : lo + search], energy_window)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, n))
    return pieces
