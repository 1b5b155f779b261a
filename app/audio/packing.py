"""Cutting a request's audio into pieces: plain cuts at quiet points, or speech packed into full windows.

Packing keeps only the speech regions a voice-activity detector finds and joins them, in
order, into pieces of up to the model's window: silence and line noise are never decoded,
every piece starts at speech and ends at a pause, and a window holds as much speech as it
can. Each packed piece keeps a timeline, so times read in it map back to the original audio.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from app.audio.decode import split_windows
from app.audio.vad import SpeechDetector, VadParams, regions
from models.interface import Piece, SpeechToTextConfig
from models.timeline import Timeline

# How far a model's timestamp may miss the pause at a joint (timestamps are good to ~0.2 s).
SNAP_SLACK_S = 0.2
# Each packed piece ends in this much silence. Speech that runs to within a second or so of a
# window's end is often left out of the transcript (to be read again), as if it were cut off.
# Measured on a 6 min recording: 18 engine passes without it, 13 with it, and RTFx 29 -> 35.
TAIL_SILENCE_S = 1.0
# The pause kept between two joined speech regions: as long as the one left out, up to this. Models
# end a segment where they hear a pause, so joining turns with no pause between them ran them into
# one long segment (turn-start error 0.28 -> 0.08 s median on real calls). Models also stop short
# of speech after a pause more often, so more tails are read again (see `reading.py`: they no
# longer climb the temperature ladder when merely unsure). RTFx on 12 real and read files: 19.6
# without pauses, 19.9 with them; 0.4 s kept fewer turns apart.
MAX_PAUSE_S = 1.0


def _plain(samples: np.ndarray, rate: int, stt: SpeechToTextConfig) -> list[tuple[int, int]]:
    if not stt.allow_audio_chunking:
        return [(0, len(samples))]
    return split_windows(
        samples, rate, stt.max_audio_clip_s, stt.overlap_chunk_second, stt.min_energy_split_window_size
    )


def _speech_spans(
    samples: np.ndarray, rate: int, stt: SpeechToTextConfig, vad: SpeechDetector, params: VadParams
) -> tuple[list[tuple[int, int]], set[int], set[int]]:
    """Speech regions in samples, each at most one window long (longer ones cut at quiet points),
    the ends that are a region's own (a pause follows, nothing is cut off there), and the starts
    that are padded onsets (the region's speech begins `prefix_padding_s` after them)."""
    at_16k = samples if rate == 16_000 else _to_16k(samples, rate)
    found = regions(vad.probabilities(at_16k), params, len(samples) / rate)
    spans: list[tuple[int, int]] = []
    for lo_s, hi_s in found:
        lo, hi = int(lo_s * rate), min(len(samples), int(hi_s * rate))
        spans += [(lo + a, lo + b) for a, b in _plain(samples[lo:hi], rate, stt)]
    ends = {min(len(samples), int(hi_s * rate)) for _, hi_s in found}
    return spans, ends, {int(lo_s * rate) for lo_s, _ in found if lo_s > 0}


def _to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return np.asarray(soxr.resample(samples, rate, 16_000), dtype=np.float32)


def _pause(before: tuple[int, int], after: tuple[int, int], most: int) -> int:
    """Samples of pause kept between two spans: the gap left out between them, at most `most`."""
    return min(max(after[0] - before[1], 0), most)


def _groups(spans: Sequence[tuple[int, int]], limit: int, most_pause: int) -> list[list[tuple[int, int]]]:
    """Consecutive spans joined greedily, with their pauses, into groups of at most `limit` samples."""
    groups: list[list[tuple[int, int]]] = []
    size = 0
    for span in spans:
        length = span[1] - span[0]
        pause = _pause(groups[-1][-1], span, most_pause) if groups else 0
        if not groups or size + pause + length > limit:
            groups.append([])
            size, pause = 0, 0
        groups[-1].append(span)
        size += pause + length
    return groups


def _joined(samples: np.ndarray, group: list[tuple[int, int]], pauses: list[int], tail: int) -> np.ndarray:
    """The spans with the pause between each two made of the recording's own gap: its two ends.

    Not digital silence, which sounds like the padding after the audio's end: the pause keeps the
    recording's own background, as it was heard.
    """
    parts = [samples[group[0][0] : group[0][1]]]
    for (_, before_end), (a, b), pause in zip(group[:-1], group[1:], pauses, strict=True):
        half = pause // 2
        parts += [samples[before_end : before_end + half], samples[a - (pause - half) : a], samples[a:b]]
    return np.concatenate([*parts, np.zeros(tail, dtype=np.float32)])


def cut(
    samples: np.ndarray,
    rate: int,
    stt: SpeechToTextConfig,
    packing: VadParams | None,
    vad: SpeechDetector,
) -> tuple[list[Piece], list[Timeline]]:
    """The request's pieces and their timelines: speech packed when `packing` is given, else plain cuts."""
    n = len(samples)
    if packing is None or stt.max_audio_clip_s is None:
        bounds = _plain(samples, rate, stt)
        pieces = [Piece(i, samples[a:b], rate, a / rate, b == n) for i, (a, b) in enumerate(bounds)]
        return pieces, [Timeline.contiguous(p.offset_s, p.duration) for p in pieces]
    spans, ends, onsets = _speech_spans(samples, rate, stt, vad, packing)
    most_pause = int(MAX_PAUSE_S * rate)
    groups = _groups(spans, int((stt.max_audio_clip_s - TAIL_SILENCE_S) * rate), most_pause)
    pieces, timelines = [], []
    for i, group in enumerate(groups):
        pauses = [_pause(x, y, most_pause) for x, y in itertools.pairwise(group)]
        timeline = Timeline.laid_out(
            [a / rate for a, _ in group],
            [(b - a) / rate for a, b in group],
            [p / rate for p in pauses],
            packing.prefix_padding_s + SNAP_SLACK_S,
            tuple(packing.prefix_padding_s if a in onsets else 0.0 for a, _ in group),
        )
        joined = _joined(samples, group, pauses, int(TAIL_SILENCE_S * rate))
        # A piece that ends where speech pauses cuts nothing off: it is read to its end, like the audio's last.
        final = group[-1][1] in ends
        pieces.append(Piece(i, joined, rate, group[0][0] / rate, final))
        timelines.append(timeline)
    return pieces, timelines
