"""Audio in: decode any accepted container to float32 mono, resample, and cut at quiet points.

Decoding runs in two steps with admission between them: `open_source` reads and checks what the
container claims (nothing decoded yet), `read` decodes it block by block straight into one
array at the model's rate, so the decoded audio is held once.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr

from app.audio.probe import AudioInfo, check_info, check_rate, declared, invalid, sndfile_info, too_long
from app.http.errors import bad_request
from models import stages
from models.signal import window_rms

MIN_AUDIO_SECONDS = 0.1
# Samples (all channels together) read per block: 2 MB of float32, whatever the layout.
BLOCK_SAMPLES = 1 << 19
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


@dataclass(frozen=True)
class Source:
    """A file libsndfile can read, its checked layout, and the limit it is read under.

    `close()` removes what ffmpeg wrote for a container libsndfile does not know.
    """

    path: Path
    info: AudioInfo
    max_seconds: float
    scratch: Path | None = None

    @property
    def seconds(self) -> float:
        return self.info.seconds

    def close(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def open_source(path: Path, max_seconds: float) -> Source:
    """Check what an upload claims (rate, channels, length) without decoding it; refuse what is
    not audio, too long or below the rate floor."""
    info = sndfile_info(path)
    if info is None:
        # libsndfile does not know the container: ffmpeg converts it to a WAV file first.
        return _via_ffmpeg(path, max_seconds)
    check_info(info, max_seconds)
    return Source(path, info, max_seconds)


def _via_ffmpeg(path: Path, max_seconds: float) -> Source:
    """Containers libsndfile cannot read (m4a, mp4, webm, ...): refused on their header's claims
    where ffprobe finds them, else converted with a cap on the length and checked after."""
    if shutil.which("ffmpeg") is None:
        raise bad_request(
            "this audio format needs ffmpeg, which the server lacks; send wav, flac, ogg or mp3",
            param="file",
            code="unsupported_format",
        )
    rate, seconds = declared(path)
    if rate is not None:
        check_rate(rate)
    if seconds is not None and seconds > max_seconds + 1:
        raise too_long(seconds, max_seconds)
    scratch = Path(tempfile.mkdtemp(prefix="decode-"))
    try:
        out = scratch / "audio.wav"
        _ffmpeg(path, out, max_seconds)
        info = sndfile_info(out)
        if info is None:
            raise invalid("could not decode the audio file; send flac, m4a, mp3, mp4, mpeg, mpga, ogg, wav or webm")
        check_info(info, max_seconds)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return Source(out, info, max_seconds, scratch)


def _ffmpeg(path: Path, out: Path, max_seconds: float) -> None:
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-vn", "-t", str(max_seconds + 2), "-f", "wav", "-acodec", "pcm_f32le", str(out),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise invalid("decoding the audio took too long") from None
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = _without_paths(reason[-1] if reason else "no audio stream found", path)
        raise invalid(
            f"could not decode the audio file ({detail[:200]}); send flac, m4a, mp3, mp4, mpeg, mpga, ogg, wav or webm"
        )


def _without_paths(message: str, path: Path) -> str:
    """ffmpeg names the file it read; the client must not learn where the server spooled it."""
    return _PATH.sub("<file>", message.replace(str(path), "<file>"))


def _mono(block: np.ndarray) -> np.ndarray:
    return block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block.astype(np.float32, copy=False)


class _Sink:
    """One preallocated array the decoded, resampled, clipped blocks are written into."""

    def __init__(self, expected: int) -> None:
        # Untouched pages of np.empty cost no memory: a header that overstates costs nothing.
        self.samples = np.empty(max(expected, 1), np.float32)
        self.filled = 0

    def put(self, chunk: np.ndarray) -> None:
        end = self.filled + len(chunk)
        if end > len(self.samples):
            # Only when a container understated its length (the limit was checked as read).
            grown = np.empty(max(end, 2 * len(self.samples)), np.float32)
            grown[: self.filled] = self.samples[: self.filled]
            self.samples = grown
        np.clip(chunk, -1.0, 1.0, out=self.samples[self.filled : end])
        self.filled = end


def read(source: Source, sample_rate: int | None = None) -> Audio:
    """Decode `source` to mono float32 at `sample_rate` (its own rate if None), clipped to [-1, 1].

    Blocks are mixed to mono, checked for NaN/Inf and resampled (soxr, as librosa's `soxr_hq`)
    on the way into one array; a file that breaks off mid-stream is a 400.
    """
    info = source.info
    rate = sample_rate or info.sample_rate
    resampler = None
    if rate != info.sample_rate:
        resampler = soxr.ResampleStream(info.sample_rate, rate, 1, dtype="float32", quality="HQ")
    sink = _Sink(math.ceil(info.frames * rate / info.sample_rate) + 64)
    frames = 0
    resample_s = 0.0  # the resampler's share of the decoding, told apart in the request's stages
    try:
        with sf.SoundFile(str(source.path)) as f:
            for block in f.blocks(blocksize=max(1, BLOCK_SAMPLES // info.channels), dtype="float32", always_2d=True):
                frames += len(block)
                if frames / info.sample_rate > source.max_seconds + 1:
                    raise too_long(frames / info.sample_rate, source.max_seconds)
                mono = _mono(block)
                if not np.isfinite(mono).all():
                    raise invalid("the audio contains NaN or infinite samples")
                if resampler is not None:
                    began = time.perf_counter()
                    mono = resampler.resample_chunk(mono)
                    resample_s += time.perf_counter() - began
                sink.put(mono)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise invalid("the audio file is damaged: it could not be decoded to its end") from exc
    if resampler is not None:
        began = time.perf_counter()
        sink.put(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        resample_s += time.perf_counter() - began
    stages.record_bits("resample", resample_s)
    return Audio(sink.samples[: sink.filled], rate)


def decode(path: Path, max_seconds: float) -> Audio:
    """Decode a file to mono float32 at its own rate, refusing what is not audio, too long or not finite."""
    source = open_source(path, max_seconds)
    try:
        return read(source)
    finally:
        source.close()


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
