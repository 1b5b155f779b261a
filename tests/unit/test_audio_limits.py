"""What an upload claims is checked before decoding; decoding holds the audio once; the audio budget."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from app.audio.decode import open_source, read
from app.audio.probe import MIN_SAMPLE_RATE
from app.http.errors import APIError
from app.scheduling.admission import Admission
from tests.e2e.amplification import low_rate, one_hertz


def test_a_one_hertz_header_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(one_hertz())
    with pytest.raises(APIError) as caught:
        open_source(path, max_seconds=7200)
    error = caught.value
    assert (error.status, error.param, error.code) == (400, "file", "sample_rate_too_low")
    assert f"{MIN_SAMPLE_RATE} Hz" in error.message


def test_audio_over_the_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(low_rate(130))
    with pytest.raises(APIError) as caught:
        open_source(path, max_seconds=120)
    assert (caught.value.status, caught.value.code) == (400, "audio_too_long")
    assert "limit of 120 s" in caught.value.message
    assert open_source(path, max_seconds=130).seconds == pytest.approx(130, abs=0.1)


def test_a_compressed_container_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "a.m4a"
    sf.write(str(tmp_path / "a.wav"), np.zeros(16000 * 30, np.float32), 16000)
    import subprocess

    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(tmp_path / "a.wav"), "-c:a", "aac", str(path)],
        check=True,
    )
    with pytest.raises(APIError) as caught:
        open_source(path, max_seconds=10)
    assert caught.value.code == "audio_too_long"
    source = open_source(path, max_seconds=60)
    try:
        assert source.seconds == pytest.approx(30, abs=0.1) and source.scratch is not None
    finally:
        source.close()
    assert not source.scratch.exists()


def test_read_matches_whole_file_resampling(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((48000 * 5, 2)) * 0.2).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(str(path), stereo, 48000, subtype="FLOAT")
    audio = read(open_source(path, 60), 16000)
    expected = np.clip(librosa.resample(stereo.mean(axis=1), orig_sr=48000, target_sr=16000, res_type="soxr_hq"), -1, 1)
    assert audio.sample_rate == 16000 and len(audio.samples) == len(expected)
    assert np.abs(audio.samples - expected).max() < 1e-5


def test_decoding_holds_the_audio_once(tmp_path: Path) -> None:
    """Ten minutes of 48 kHz stereo: the peak is the 16 kHz result and a block, not the source too."""
    seconds = 600
    path = tmp_path / "long.wav"
    sf.write(str(path), np.zeros((48000 * seconds, 2), np.int16), 48000, subtype="PCM_16")
    result_bytes = 16000 * seconds * 4
    tracemalloc.start()
    try:
        audio = read(open_source(path, 3600), 16000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert audio.duration == pytest.approx(seconds, abs=0.01)
    # Measured: 45.7 MB (38.4 MB of result and the blocks in flight); before, 270 MB (source, its
    # mono mix, the list of blocks, the resampled copy and the clipped copy).
    assert peak < result_bytes + 16 * 1024 * 1024, peak


async def _hold(admission: Admission, seconds: float, release: asyncio.Event, log: list[str], name: str) -> None:
    async with admission.audio.hold(seconds):
        log.append(name)
        await release.wait()


async def test_the_budget_lets_audio_in_while_it_fits() -> None:
    admission = Admission(64, 64, audio_budget_s=100)
    release, log = asyncio.Event(), []
    first = asyncio.create_task(_hold(admission, 60, release, log, "a"))
    second = asyncio.create_task(_hold(admission, 30, release, log, "b"))
    waiting = asyncio.create_task(_hold(admission, 30, release, log, "c"))
    await asyncio.sleep(0.01)
    assert log == ["a", "b"] and admission.audio.waiting_s == 30
    # A second waiter would make the queue longer than one budget: refused at once.
    with pytest.raises(APIError) as caught:
        async with admission.audio.hold(80):
            pass
    assert caught.value.status == 429 and "Retry-After" in caught.value.headers
    release.set()
    await asyncio.gather(first, second, waiting)
    assert log == ["a", "b", "c"] and admission.audio.in_flight_s == 0 and admission.audio.holders == 0


async def test_audio_longer_than_the_budget_runs_alone() -> None:
    admission = Admission(64, 64, audio_budget_s=100)
    release, log = asyncio.Event(), []
    small = asyncio.create_task(_hold(admission, 10, release, log, "small"))
    await asyncio.sleep(0.01)
    big = asyncio.create_task(_hold(admission, 500, asyncio.Event(), log, "big"))
    await asyncio.sleep(0.01)
    assert log == ["small"]  # the big one waits for the small one to finish
    release.set()
    await small
    await asyncio.sleep(0.01)
    assert log == ["small", "big"] and admission.audio.in_flight_s == 500
    big.cancel()
    with pytest.raises(asyncio.CancelledError):
        await big
    assert admission.audio.in_flight_s == 0 and admission.audio.holders == 0


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    admission = Admission(64, 64, audio_budget_s=100)
    release, log = asyncio.Event(), []
    first = asyncio.create_task(_hold(admission, 90, release, log, "a"))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(_hold(admission, 50, release, log, "b"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert admission.audio.waiting_s == 0
    release.set()
    await first
    assert log == ["a"] and admission.audio.in_flight_s == 0


def test_speech_detection_in_chunks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector's state runs on from chunk to chunk: chunking bounds memory, not the result."""
    from app.audio import vad
    from models import silero

    rng = np.random.default_rng(5)
    samples = np.concatenate([rng.standard_normal(16000 * 3) * 0.2, np.zeros(16000 * 2)]).astype(np.float32)
    detector = vad.SileroVad()
    whole = detector.probabilities(samples)
    monkeypatch.setattr(silero, "CHUNK_FRAMES", 7)
    chunked = detector.probabilities(samples)
    assert len(whole) == len(chunked) == -(-len(samples) // vad.FRAME)
    assert np.abs(whole - chunked).max() < 1e-5
