"""Property-based fuzzing of what reads an upload's header: the only outcomes allowed are an Audio
within the limits or our own APIError (a 4xx naming the file), never another exception.

Deterministic (derandomized, no example database) and bounded, so it runs in seconds in CI.
"""

from __future__ import annotations

import io
import struct
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from app.audio.decode import Audio, open_source, read
from app.audio.probe import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioInfo, check_info, sndfile_info
from app.http.errors import APIError
from tests.unit.fuzz import fuzz

MAX_SECONDS = 30.0
RATE = 16_000


def riff(
    fmt_tag: int, channels: int, rate: int, byte_rate: int, align: int, bits: int, claim: int, data: bytes
) -> bytes:
    """A RIFF/WAVE with every header field as given, however absurd (sizes claimed, not measured)."""
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, byte_rate, align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", claim) + data
    return b"RIFF" + struct.pack("<I", len(body) & 0xFFFFFFFF) + body


def outcome(raw: bytes, *, sndfile_only: bool = False) -> Audio | APIError | None:
    """Decode `raw` as an upload; any exception other than APIError fails the property.

    `sndfile_only`: what libsndfile refuses is not handed to ffmpeg (None), which keeps the
    header properties fast; the whole path, ffmpeg included, has properties of its own.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(raw)
        if sndfile_only and sndfile_info(path) is None:
            return None
        try:
            source = open_source(path, MAX_SECONDS)
            try:
                return read(source, RATE)
            finally:
                source.close()
        except APIError as error:
            return error


def assert_allowed(result: Audio | APIError | None) -> None:
    if isinstance(result, APIError):
        assert 400 <= result.status < 500 and result.param == "file" and result.message, result.body()
        assert "/tmp" not in result.message and "upload" not in result.message, result.message
    elif isinstance(result, Audio):
        assert result.sample_rate == RATE and result.samples.dtype == np.float32
        assert result.duration <= MAX_SECONDS + 1.01
        assert np.isfinite(result.samples).all() and np.abs(result.samples).max(initial=0) <= 1.0


U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
RATES = st.one_of(st.sampled_from([0, 1, 2, 3999, 4000, 8000, 16000, 384_000, 384_001, 2**31 - 1, 2**32 - 1]), U32)
CHANNELS = st.one_of(st.sampled_from([0, 1, 2, 6, 64, 65, 0xFFFF]), U16)
FMT_TAGS = st.one_of(st.sampled_from([1, 3, 6, 7, 0x11, 0xFFFE, 0]), U16)
BITS = st.one_of(st.sampled_from([0, 8, 16, 24, 32, 64]), U16)


@fuzz(300)
@given(
    fmt_tag=FMT_TAGS,
    channels=CHANNELS,
    rate=RATES,
    byte_rate=U32,
    align=U16,
    bits=BITS,
    claim=st.one_of(st.sampled_from([0, 0xFFFFFFFF, 0x7FFFFFFF]), U32),
    data=st.binary(max_size=4096),
)
def test_any_wav_header_is_audio_or_our_error(
    fmt_tag: int, channels: int, rate: int, byte_rate: int, align: int, bits: int, claim: int, data: bytes
) -> None:
    assert_allowed(outcome(riff(fmt_tag, channels, rate, byte_rate, align, bits, claim, data), sndfile_only=True))


@fuzz(300)
@given(
    rate=RATES,
    channels=st.integers(1, 8),
    frames=st.integers(0, 4000),
    claim=st.one_of(st.none(), U32),
)
def test_pcm_wav_of_any_rate_and_claimed_length(rate: int, channels: int, frames: int, claim: int | None) -> None:
    """Well-formed PCM16 bodies under any rate and any claimed data size: the rate floor and the
    length limit hold whatever the header says."""
    data = np.random.default_rng(frames).integers(-30000, 30000, frames * channels).astype("<i2").tobytes()
    raw = riff(
        1,
        channels,
        rate,
        (rate * channels * 2) & 0xFFFFFFFF,
        channels * 2,
        16,
        len(data) if claim is None else claim,
        data,
    )
    result = outcome(raw, sndfile_only=True)
    assert_allowed(result)
    if isinstance(result, Audio) and len(result.samples):
        assert MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE


def _valid(fmt: str, subtype: str) -> bytes:
    tone = (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([tone, tone], axis=1), 8000, format=fmt, subtype=subtype)
    return buffer.getvalue()


VALID = {
    "wav16": _valid("WAV", "PCM_16"),
    "wav_float": _valid("WAV", "FLOAT"),
    "wav_adpcm": _valid("WAV", "IMA_ADPCM"),
    "flac": _valid("FLAC", "PCM_16"),
    "ogg": _valid("OGG", "VORBIS"),
}


@fuzz(150)
@given(
    kind=st.sampled_from(sorted(VALID)),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8),
)
def test_truncated_and_mutated_files_are_audio_or_our_error(
    kind: str, cut: float, flips: list[tuple[float, int]]
) -> None:
    raw = bytearray(VALID[kind][: max(1, int(len(VALID[kind]) * cut))])
    for where, value in flips:
        raw[min(len(raw) - 1, int(where * len(raw)))] = value
    assert_allowed(outcome(bytes(raw), sndfile_only=True))


@fuzz(40)
@given(
    raw=st.one_of(
        st.binary(max_size=2048),
        st.builds(
            lambda head, tail: head + tail,
            st.sampled_from([b"RIFF", b"fLaC", b"OggS", b"ID3\x03", b"\x1aE\xdf\xa3"]),
            st.binary(max_size=2048),
        ),
        st.sampled_from(sorted(VALID)).flatmap(lambda k: st.integers(1, len(VALID[k])).map(lambda n: VALID[k][:n])),
    )
)
def test_random_bytes_through_the_whole_path_ffmpeg_included(raw: bytes) -> None:
    assert_allowed(outcome(raw))


@fuzz(500)
@given(rate=st.integers(-(2**40), 2**40), channels=st.integers(-(2**20), 2**20), frames=st.integers(-(2**63), 2**63))
def test_check_info_accepts_only_sane_layouts(rate: int, channels: int, frames: int) -> None:
    info = AudioInfo(rate, channels, frames)
    try:
        check_info(info, MAX_SECONDS)
    except APIError as error:
        assert error.status == 400 and error.param == "file"
        return
    assert MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE and 1 <= channels <= MAX_CHANNELS
    assert 0 <= info.seconds <= MAX_SECONDS + 1
