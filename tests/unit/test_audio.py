import itertools
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.audio.decode import check_length, decode, quietest_point, resample, split_windows
from app.http.errors import APIError
from models.signal import has_speech, is_silent


def tone(seconds: float, rate: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize(
    ("suffix", "subtype"),
    [(".wav", "PCM_16"), (".wav", "PCM_24"), (".wav", "FLOAT"), (".flac", "PCM_16"), (".ogg", "VORBIS")],
)
def test_soundfile_formats_decode_to_mono_float(tmp_path: Path, suffix: str, subtype: str) -> None:
    path = tmp_path / f"a{suffix}"
    sf.write(str(path), np.stack([tone(1.0, 22050), tone(1.0, 22050)], axis=1), 22050, subtype=subtype)
    audio = decode(path, max_seconds=60)
    assert audio.sample_rate == 22050 and audio.samples.ndim == 1 and audio.samples.dtype == np.float32
    assert audio.duration == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("suffix", [".mp3", ".m4a", ".webm"])
def test_ffmpeg_containers_decode(tmp_path: Path, suffix: str) -> None:
    wav = tmp_path / "a.wav"
    sf.write(str(wav), tone(2.0, 16000), 16000)
    target = tmp_path / f"a{suffix}"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), str(target)], check=True)
    audio = decode(target, max_seconds=60)
    assert audio.duration == pytest.approx(2.0, abs=0.1)
    assert dominant_frequency(audio.samples, audio.sample_rate) == pytest.approx(440, abs=5)


def test_resampling_keeps_pitch_and_duration() -> None:
    from app.audio.decode import Audio

    out = resample(Audio(tone(1.0, 8000, 300.0), 8000), 16000)
    assert len(out.samples) == 16000
    assert dominant_frequency(out.samples, 16000) == pytest.approx(300, abs=2)


@pytest.mark.parametrize("payload", [b"", b"this is not audio at all" * 40, bytes(range(256)) * 64])
def test_non_audio_is_a_400(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(payload)
    with pytest.raises(APIError) as error:
        decode(path, max_seconds=60)
    assert error.value.status == 400 and error.value.param == "file"


def test_nan_samples_are_refused(tmp_path: Path) -> None:
    samples = tone(0.5, 16000)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(str(path), samples, 16000, subtype="FLOAT")
    with pytest.raises(APIError, match="NaN"):
        decode(path, max_seconds=60)


def test_too_long_and_too_short(tmp_path: Path) -> None:
    from app.audio.decode import Audio

    path = tmp_path / "long.wav"
    sf.write(str(path), np.zeros(16000 * 5, np.float32), 16000)
    with pytest.raises(APIError, match="longer than the limit"):
        decode(path, max_seconds=2)
    with pytest.raises(APIError, match="too short"):
        check_length(Audio(np.zeros(800, np.float32), 16000))
    check_length(Audio(np.zeros(1600, np.float32), 16000))


def test_cuts_land_in_the_quiet_gap() -> None:
    rate = 16000
    speech, gap = tone(26.0, rate), np.zeros(int(0.5 * rate), np.float32)
    samples = np.concatenate([speech, gap, tone(40.0, rate)])
    windows = split_windows(samples, rate, max_s=30.0, search_s=5.0, energy_window=1600)
    assert len(windows) == 3 and windows[0][0] == 0 and windows[-1][1] == len(samples)
    assert windows[0][1] == windows[1][0]
    assert 26.0 * rate <= windows[0][1] <= 26.5 * rate


def test_short_audio_is_one_window_and_plain_cuts_respect_the_limit() -> None:
    assert split_windows(np.zeros(100), 16000, 30.0, 5.0, 1600) == [(0, 100)]
    windows = split_windows(np.ones(16000 * 95, np.float32), 16000, 30.0, 5.0, None)
    assert all(end - start <= 30 * 16000 for start, end in windows) and len(windows) == 4


@pytest.mark.parametrize("seconds", [30.5, 55.0, 60.0, 61.0, 89.0, 600.0])
def test_no_sliver_at_the_end(seconds: float) -> None:
    rate = 16000
    samples = np.random.default_rng(1).standard_normal(int(seconds * rate)).astype(np.float32)
    windows = split_windows(samples, rate, 30.0, 5.0, 1600)
    lengths = [(end - start) / rate for start, end in windows]
    assert max(lengths) <= 30.0 and min(lengths) >= 12.5
    assert windows[0][0] == 0 and windows[-1][1] == len(samples)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))


def test_quietest_point_and_silence() -> None:
    samples = tone(2.0, 16000)
    samples[20000:22000] = 0.0
    assert 20000 <= quietest_point(samples, 1600) <= 22000
    assert is_silent(np.zeros(16000, np.float32)) and is_silent(np.full(16000, 1e-5, np.float32))
    assert not is_silent(tone(0.2, 16000, amplitude=0.01))


def test_has_speech_tells_more_words_from_a_noisy_pause() -> None:
    rng = np.random.default_rng(5)
    speech = tone(3.0, 16000, amplitude=0.3)
    room = (rng.standard_normal(16000) * 0.003).astype(np.float32)  # about 40 dB under the speech
    assert not has_speech(room, speech)
    assert has_speech(np.concatenate([room, tone(0.5, 16000, amplitude=0.2)]), speech)
    assert not has_speech(np.zeros(8000, np.float32), speech)
    # A quiet talker: speech-level sound is judged against the talker, not against full scale.
    assert has_speech(tone(0.5, 16000, amplitude=0.01), tone(3.0, 16000, amplitude=0.012))
