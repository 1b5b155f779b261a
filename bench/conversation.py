"""Real two-party conversations with known turn times, and how well segments follow the turns.

The set is composed here from real recorded English that Debian packages ship (no audio is kept in
the repository): Asterisk's prompts (one US female talker; 8 kHz WAV from
`asterisk-core-sounds-en-wav`, real 16 kHz wideband from `asterisk-core-sounds-en-g722`) and
`pocketsphinx-testdata` (16 kHz: a LibriVox reader of Sense and Sensibility, and the talker of
`cards/` and `goforward.raw`). Talkers alternate with seeded gaps of 0.3-1.5 s after a lead-in of
line noise. A turn's times are those of its speech (found by energy in its own recording) where
that recording was placed.
Telephone calls are 8 kHz, band-limited to 300-3400 Hz (16 kHz sources downsampled).

    python -m bench.conversation --url http://127.0.0.1:8000 [--dir DIR] [--json PATH] [--build-only]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench import asterisk
from bench.asterisk import MissingSounds
from bench.compose import frame_rms
from bench.metrics import onset_errors, pooled_errors

PACKAGES = ["asterisk-core-sounds-en-wav", "asterisk-core-sounds-en-g722", "pocketsphinx-testdata"]
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
GAP_S = (0.3, 1.5)
KEEP_S = (0.25, 0.35)  # of each recording kept before and after its speech
BELOW_PEAK_DB, OVER_FLOOR_DB = 40.0, 15.0
TELEPHONE, WIDEBAND = (300.0, 3400.0), (80.0, 7600.0)
# A quick exchange: turns that follow each other within a breath, as on a real phone call.
QUICK_GAP_S = (0.3, 0.6)
# name, rate, talker A, talker B, lead-in range (s), noise dBFS, seed, gaps between turns (s)
CALLS = [
    ("call-asterisk-librivox", 8000, "asterisk", "librivox", (3.0, 7.0), -50.0, 1, GAP_S),
    ("call-asterisk-cards", 8000, "asterisk", "cards", (3.0, 7.0), -48.0, 2, GAP_S),
    ("call-librivox-cards", 8000, "librivox", "cards", (3.0, 7.0), -52.0, 3, GAP_S),
    ("wide-asterisk-librivox", 16000, "asterisk-g722", "librivox", (1.0, 3.0), -60.0, 4, GAP_S),
    ("wide-asterisk-cards", 16000, "asterisk-g722", "cards", (1.0, 3.0), -58.0, 5, GAP_S),
    ("quick-asterisk-cards", 8000, "asterisk", "cards", (5.0, 7.0), -48.0, 6, QUICK_GAP_S),
    ("quick-wide-librivox-cards", 16000, "librivox", "cards", (1.0, 3.0), -58.0, 7, QUICK_GAP_S),
]
ASTERISK_TURNS = {"librivox": 5, "cards": 6}


@dataclass(frozen=True)
class Utterance:
    talker: str
    text: str
    path: Path


@dataclass(frozen=True)
class Turn:
    start_s: float
    end_s: float
    text: str
    talker: str


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


def pocketsphinx_texts(lines: list[str]) -> dict[str, str]:
    """`<s> text </s> (id)` lines -> {id: text}."""
    found = (re.fullmatch(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\((\S+)\)\s*", line) for line in lines)
    return {m[2]: " ".join(m[1].split()) for m in found if m}


def talker(name: str) -> list[Utterance]:
    """The utterances of one pocketsphinx-testdata talker, in file order."""
    if not POCKETSPHINX.is_dir():
        raise MissingSounds(f"needs the Debian package pocketsphinx-testdata ({POCKETSPHINX}): apt-get install -y it")
    if name == "librivox":
        texts = pocketsphinx_texts((POCKETSPHINX / "librivox/transcription").read_text().splitlines())
        return [Utterance(name, t, POCKETSPHINX / f"librivox/{i}.wav") for i, t in sorted(texts.items())]
    texts = pocketsphinx_texts((POCKETSPHINX / "cards/cards.transcription").read_text().splitlines())
    cards = [Utterance(name, t, POCKETSPHINX / f"cards/{i}.wav") for i, t in sorted(texts.items())]
    return [*cards, Utterance(name, "go forward ten meters", POCKETSPHINX / "goforward.raw")]


def asterisk_talker(rng: random.Random, taken: set[str], count: int, wideband: bool) -> list[Utterance]:
    """`count` distinct Asterisk prompts of 4+ words and at most 5 s (G.722 files where `wideband`)."""
    prompts = asterisk.pick(asterisk.load_prompts(), rng, taken, min_words=4, max_s=5.0, count=count)
    suffix = ".g722" if wideband else ".wav"
    return [Utterance("asterisk", p.text, p.path.with_suffix(suffix)) for p in prompts]


def load(path: Path, rate: int) -> np.ndarray:
    """A recording as float32 mono at `rate` (G.722 decoded by ffmpeg; `.raw` is 16 kHz s16le)."""
    if path.suffix in (".raw", ".g722"):
        decode = ["ffmpeg", "-v", "error", "-f", "g722", "-i", str(path), "-f", "s16le", "-ar", "16000", "-"]
        raw = (
            path.read_bytes()
            if path.suffix == ".raw"
            else subprocess.run(decode, check=True, capture_output=True).stdout
        )
        samples, source = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768, 16000
    else:
        samples, source = sf.read(str(path), dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)
    if source == rate:
        return np.asarray(samples, dtype=np.float32)
    import soxr

    return np.asarray(soxr.resample(samples, source, rate), dtype=np.float32)


def band_limit(samples: np.ndarray, rate: int, band: tuple[float, float]) -> np.ndarray:
    """A 4th-order Butterworth band-pass, causal like a line (no ringing ahead of an onset)."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, band, btype="bandpass", fs=rate, output="sos")
    return np.asarray(sosfilt(sos, samples), dtype=np.float32)


def noise(length: int, rate: int, level_dbfs: float, seed: int, band: tuple[float, float]) -> np.ndarray:
    """Seeded band-limited Gaussian noise with an RMS of `level_dbfs`."""
    shaped = band_limit(np.random.default_rng(seed).standard_normal(length), rate, band)
    rms = float(np.sqrt(np.mean(shaped.astype(np.float64) ** 2))) or 1.0
    return (shaped * (10 ** (level_dbfs / 20) / rms)).astype(np.float32)


def speech_span(samples: np.ndarray, rate: int) -> tuple[int, int]:
    """First and last sample of the speech: 10 ms frames that, alone and smoothed over 50 ms, are louder
    than both 40 dB under the loudest and 15 dB over the recording's own floor (its 5th-percentile frame)."""
    frames = frame_rms(samples, rate)
    rms = np.convolve(frames, np.ones(5) / 5, mode="same")
    threshold = max(rms.max() * 10 ** (-BELOW_PEAK_DB / 20), np.percentile(frames, 5) * 10 ** (OVER_FLOOR_DB / 20))
    loud = np.flatnonzero((rms >= threshold) & (frames >= threshold))
    size = round(0.01 * rate)
    return int(loud[0]) * size, (int(loud[-1]) + 1) * size


def cut(samples: np.ndarray, rate: int) -> tuple[np.ndarray, float, float]:
    """The recording from KEEP_S[0] before its speech to KEEP_S[1] after it (faded at the cuts), and
    where in that clip the speech starts and ends (s)."""
    first, last = speech_span(samples, rate)
    start, end = max(0, first - round(KEEP_S[0] * rate)), min(len(samples), last + round(KEEP_S[1] * rate))
    clip = samples[start:end].astype(np.float32)
    fade = np.linspace(0.0, 1.0, round(0.02 * rate), dtype=np.float32)
    clip[: len(fade)] *= fade
    clip[len(clip) - len(fade) :] *= fade[::-1]
    return clip, (first - start) / rate, (last - start) / rate


def layout(
    lengths_s: list[float], rng: random.Random, lead_s: tuple[float, float], gaps_s: tuple[float, float] = GAP_S
) -> list[tuple[float, float]]:
    """(start, end) of each turn's speech: the first after a lead-in drawn from `lead_s`, each next one
    a gap drawn from `gaps_s` after the end of the one before."""
    spans, start = [], rng.uniform(*lead_s)
    for length in lengths_s:
        spans.append((round(start, 3), round(start + length, 3)))
        start += length + rng.uniform(*gaps_s)
    return spans


def mix(clips: list[tuple[np.ndarray, float]], starts_s: list[float], rate: int, tail_s: float = 1.0) -> np.ndarray:
    """Each (clip, its speech onset) added so that the onset falls at its start; `tail_s` after the last."""
    ends = [start - onset + len(clip) / rate for (clip, onset), start in zip(clips, starts_s, strict=True)]
    audio = np.zeros(round((max(ends) + tail_s) * rate), np.float32)
    for (clip, onset), start in zip(clips, starts_s, strict=True):
        at = round((start - onset) * rate)
        audio[at : at + len(clip)] += clip
    return audio


def alternate(a: list[Utterance], b: list[Utterance]) -> list[Utterance]:
    """A, B, A, B ... (the longer list starts, and gives at most one more turn than the other)."""
    first, second = (a, b) if len(a) >= len(b) else (b, a)
    return [u for pair in zip(first[: len(second) + 1], [*second, None], strict=False) for u in pair if u]


def build(rate: int, a: str, b: str, lead_s: tuple[float, float], noise_dbfs: float, seed: int,
          taken: set[str], gaps_s: tuple[float, float] = GAP_S) -> tuple[np.ndarray, list[Turn]]:  # fmt: skip
    """One conversation between talkers `a` and `b` at `rate`, and its turns."""
    rng = random.Random(seed)
    sides = {}
    for side, other in ((a, b), (b, a)):
        if side.startswith("asterisk"):
            sides[side] = asterisk_talker(rng, taken, ASTERISK_TURNS[other], wideband=side.endswith("g722"))
        else:
            sides[side] = talker(side)
            rng.shuffle(sides[side])
    utterances = alternate(sides[a], sides[b])
    peaks = {id(u): 10 ** ((-3 if u in sides[a] else -7) / 20) for u in utterances}  # two line levels
    clips, lengths = [], []
    for u in utterances:
        clip, onset, offset = cut(load(u.path, rate), rate)
        clips.append((clip * (peaks[id(u)] / float(np.abs(clip).max())), onset))
        lengths.append(offset - onset)
    spans = layout(lengths, rng, lead_s, gaps_s)
    audio = mix(clips, [s for s, _ in spans], rate)
    band = TELEPHONE if rate == 8000 else WIDEBAND
    audio = band_limit(audio, rate, band) + noise(len(audio), rate, noise_dbfs, seed, band)
    turns = [Turn(s, e, u.text, u.talker) for u, (s, e) in zip(utterances, spans, strict=True)]
    return np.clip(audio, -1.0, 1.0), turns


def build_set(directory: Path) -> list[Path]:
    """Every conversation as NAME.wav (16-bit PCM) beside NAME.json (rate, duration, turns)."""
    directory.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    paths = []
    for name, rate, a, b, lead_s, noise_dbfs, seed, gaps_s in CALLS:
        audio, turns = build(rate, a, b, lead_s, noise_dbfs, seed, taken, gaps_s)
        sf.write(str(directory / f"{name}.wav"), audio, rate, subtype="PCM_16")
        truth = {"rate": rate, "duration_s": len(audio) / rate, "turns": [asdict(t) for t in turns]}
        (directory / f"{name}.json").write_text(json.dumps(truth, indent=1))
        paths.append(directory / f"{name}.wav")
    return paths


def first_segment_error(turn_starts: list[float], segments: list[Segment]) -> float | None:
    """|first segment start - first turn start| (None without segments)."""
    return abs(min(s.start for s in segments) - turn_starts[0]) if segments and turn_starts else None


def longest_segment(segments: list[Segment]) -> Segment | None:
    return max(segments, key=lambda s: s.end - s.start, default=None)


def sentences(text: str) -> int:
    """Sentences in a segment's text: runs of words ended by . ? ! (not of Mr. Mrs. Ms. Dr. St.) or the end."""
    ends = r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)[.?!]+(?:\s+|$)"
    return len([part for part in re.split(ends, text.strip()) if part.strip()])


def turns_spanned(segment: Segment, turns: list[Turn], min_overlap_s: float = 0.2) -> int:
    """How many turns overlap the segment by at least `min_overlap_s`."""
    return sum(min(segment.end, t.end_s) - max(segment.start, t.start_s) >= min_overlap_s for t in turns)


def score(turns: list[Turn], segments: list[Segment], text: str, audio_s: float, wall_s: float) -> dict[str, Any]:
    starts = [t.start_s for t in turns]
    errors = onset_errors(starts, [s.start for s in segments])
    longest = longest_segment(segments)
    return {
        "turns": len(turns), "segments": len(segments), "start_errors": errors,
        "median_start_error_s": statistics.median(errors) if errors else None,
        "max_start_error_s": max(errors, default=None),
        "first_segment_error_s": first_segment_error(starts, segments),
        "longest_segment_s": round(longest.end - longest.start, 2) if longest else None,
        "longest_sentences": sentences(longest.text) if longest else None,
        "longest_turns": turns_spanned(longest, turns) if longest else None,
        "multi_turn_segments": sum(turns_spanned(s, turns) > 1 for s in segments),
        "wer": pooled_errors([" ".join(t.text for t in turns)], [text]).wer,
        "audio_s": audio_s, "wall_s": wall_s, "rtfx": audio_s / wall_s if wall_s else None,
    }  # fmt: skip


def transcribe(url: str, path: Path, extra: dict[str, str] | None = None) -> tuple[list[Segment], str, float]:
    import httpx

    data = {"model": "whisper-1", "response_format": "verbose_json", "timestamp_granularities[]": "segment"}
    data |= extra or {}
    started = time.perf_counter()
    with httpx.Client(timeout=1800) as client:
        files = {"file": (path.name, path.read_bytes())}
        response = client.post(f"{url}/v1/audio/transcriptions", files=files, data=data)
    wall = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    segments = [Segment(float(s["start"]), float(s["end"]), str(s["text"])) for s in body.get("segments") or []]
    return segments, str(body.get("text", "")), wall


COLUMNS = [  # heading, key, format
    ("turns", "turns", "d"), ("segs", "segments", "d"), ("med|Δ|", "median_start_error_s", ".2f"),
    ("max|Δ|", "max_start_error_s", ".2f"), ("first|Δ|", "first_segment_error_s", ".2f"),
    ("longest", "longest_segment_s", ".2f"), ("sent", "longest_sentences", "d"), ("turns", "longest_turns", "d"),
    ("multi", "multi_turn_segments", "d"), ("WER", "wer", ".3f"), ("wall", "wall_s", ".1f"), ("RTFx", "rtfx", ".1f"),
]  # fmt: skip


def table(rows: dict[str, dict[str, Any]]) -> str:
    cell = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    lines = [f"{'conversation':24}" + "".join(f"{h:>9}" for h, _, _ in COLUMNS)]
    lines += [f"{n:24}" + "".join(f"{cell(r[k], f):>9}" for _, k, f in COLUMNS) for n, r in rows.items()]
    return "\n".join(lines)


def measure(url: str, paths: list[Path], extra: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Each conversation's figures, then `overall`: the turns of all of them, as if one after another."""
    rows: dict[str, dict[str, Any]] = {}
    turns: list[Turn] = []
    segments: list[Segment] = []
    refs, hyps, offset = [], [], 0.0
    for path in paths:
        truth = json.loads(path.with_suffix(".json").read_text())
        these = [Turn(**t) for t in truth["turns"]]
        found, text, wall = transcribe(url.rstrip("/"), path, extra)
        rows[path.stem] = score(these, found, text, truth["duration_s"], wall)
        turns += [Turn(t.start_s + offset, t.end_s + offset, t.text, t.talker) for t in these]
        segments += [Segment(s.start + offset, s.end + offset, s.text) for s in found]
        refs.append(" ".join(t.text for t in these))
        hyps.append(text)
        offset += truth["duration_s"]
    wall = sum(r["wall_s"] for r in rows.values())
    overall = score(turns, segments, "", offset, wall)
    overall["first_segment_error_s"] = max((r["first_segment_error_s"] or 0.0 for r in rows.values()), default=None)
    overall["wer"] = pooled_errors(refs, hyps).wer
    rows["overall"] = overall
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/speech-gateway-conversations"))
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--build-only", action="store_true", help="write the set to --dir and stop")
    parser.add_argument("--field", action="append", default=[], help="an extra form field KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        paths = build_set(args.dir)
    except MissingSounds as exc:
        print(f"{exc}\nall of: apt-get install -y {' '.join(PACKAGES)}", file=sys.stderr)
        return 2
    if args.build_only:
        print("\n".join(str(p) for p in paths))
        return 0
    rows = measure(args.url, paths, dict(f.split("=", 1) for f in args.field))
    print(table(rows))
    print("|Δ|: |turn start - nearest segment start| (s); first: of the first segment (overall: the worst);")
    print("longest: the longest segment = the longest srt/vtt cue (s), its sentences, the turns it overlaps;")
    print("multi: segments overlapping 2+ turns; wall: request seconds; RTFx: audio s / wall s.")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
