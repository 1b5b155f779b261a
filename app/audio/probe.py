"""What an upload holds, known before it is decoded: rate, channels, length; and what is refused on sight.

A header is a claim: a 14 KB WAV that says 1 Hz holds "two hours" that decode to 460 MB at
16 kHz. Every claim is checked here, before a sample is read, so memory follows audio the
server agreed to, not what a client wrote in a header.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from app.http.errors import APIError, bad_request

# Below this no speech survives (telephone narrow-band is 8 kHz), and above it nothing is audio
# we need; both bounds also keep resampling ratios, and so its work per byte, within reason.
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
# 7.1 is 8; ambisonic and array recordings reach 64.
MAX_CHANNELS = 64
FFPROBE_TIMEOUT_S = 30


@dataclass(frozen=True)
class AudioInfo:
    """An upload's layout as its container states it; `frames` per channel."""

    sample_rate: int
    channels: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def too_long(seconds: float, limit: float) -> APIError:
    return bad_request(
        f"the audio lasts {seconds:.0f} s, longer than the limit of {limit:.0f} s; split it and send the parts",
        param="file",
        code="audio_too_long",
    )


def invalid(message: str) -> APIError:
    return bad_request(message, param="file", code="invalid_audio")


def check_rate(rate: float) -> None:
    """Refuse a sample rate no speech needs (or no number at all)."""
    if not math.isfinite(rate) or rate < MIN_SAMPLE_RATE:
        raise bad_request(
            f"the file's sample rate ({rate:g} Hz) is below the minimum of {MIN_SAMPLE_RATE} Hz; "
            "speech needs at least 4 kHz (8 kHz or more is best)",
            param="file",
            code="sample_rate_too_low",
        )
    if rate > MAX_SAMPLE_RATE:
        raise invalid(f"the file's sample rate ({rate:g} Hz) is above the maximum of {MAX_SAMPLE_RATE} Hz")


def check_info(info: AudioInfo, max_seconds: float) -> None:
    """Refuse a layout the server will not decode: odd rate, channel count, or too long."""
    check_rate(info.sample_rate)
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise invalid(f"the file declares {info.channels} channels; 1 to {MAX_CHANNELS} are accepted")
    if info.frames < 0:
        raise invalid("the file does not say how long it is")
    # A second of grace: containers round their durations.
    if info.seconds > max_seconds + 1:
        raise too_long(info.seconds, max_seconds)


def sndfile_info(path: Path) -> AudioInfo | None:
    """The layout libsndfile reads from the header; None where libsndfile cannot read the file."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, ValueError, TypeError):
        return None
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))


def declared(path: Path) -> tuple[float | None, float | None]:
    """(sample rate, seconds) that ffprobe reads from a container's header, each None if unstated."""
    cmd = [
        "ffprobe", "-v", "error", "-select_streams", "a:0", "-of", "json",
        "-show_entries", "stream=sample_rate:format=duration", str(path),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=FFPROBE_TIMEOUT_S, check=False)
        found = json.loads(proc.stdout or b"{}")
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return None, None
    streams = found.get("streams") if isinstance(found, dict) else None
    stream = streams[0] if isinstance(streams, list) and streams and isinstance(streams[0], dict) else {}
    fmt = found.get("format") if isinstance(found, dict) else None
    return _number(stream.get("sample_rate")), _number(fmt.get("duration") if isinstance(fmt, dict) else None)


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
