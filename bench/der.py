"""Diarization error rate with a collar, the speaker count, and how much of each known talker's time is named right."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FRAME_S = 0.01
Turn = tuple[float, float, str]


@dataclass(frozen=True)
class Der:
    """Seconds of scored reference speech and of each error; `der` is their share."""

    total: float
    missed: float
    false_alarm: float
    confusion: float
    reference_speakers: int
    hypothesis_speakers: int

    @property
    def der(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / self.total if self.total else 0.0


def activity(turns: Sequence[Turn], speakers: Sequence[str], frames: int) -> np.ndarray:
    """(speakers, frames) booleans: who speaks in each 10 ms frame."""
    out = np.zeros((len(speakers), frames), dtype=bool)
    index = {s: i for i, s in enumerate(speakers)}
    for start, end, speaker in turns:
        out[index[speaker], round(start / FRAME_S) : round(end / FRAME_S)] = True
    return out


def scored(reference: Sequence[Turn], frames: int, collar_s: float) -> np.ndarray:
    """Frames outside `collar_s` of every reference turn's start and end."""
    keep = np.ones(frames, dtype=bool)
    c = round(collar_s / FRAME_S)
    for start, end, _ in reference:
        for edge in (round(start / FRAME_S), round(end / FRAME_S)):
            keep[max(0, edge - c) : edge + c] = False
    return keep


def mapping(ref: np.ndarray, hyp: np.ndarray) -> list[tuple[int, int]]:
    """(reference, hypothesis) speaker pairs of most shared time, one to one (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    if not len(ref) or not len(hyp):
        return []
    shared = ref.astype(np.int64) @ hyp.T.astype(np.int64)
    rows, cols = linear_sum_assignment(-shared)
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


def der(reference: Sequence[Turn], hypothesis: Sequence[Turn], collar_s: float = 0.25) -> Der:
    """Missed speech, false alarm and speaker confusion over the frames outside the collar, under the
    best one-to-one mapping of hypothesis to reference speakers (NIST md-eval's definition)."""
    end = max([e for _, e, _ in [*reference, *hypothesis]], default=0.0)
    frames = int(np.ceil(end / FRAME_S)) + 1
    ref_names = sorted({s for *_, s in reference})
    hyp_names = sorted({s for *_, s in hypothesis})
    keep = scored(reference, frames, collar_s)
    ref = activity(reference, ref_names, frames)[:, keep]
    hyp = activity(hypothesis, hyp_names, frames)[:, keep]
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    correct = np.zeros(keep.sum(), dtype=np.int64)
    for r, h in mapping(ref, hyp):
        correct += ref[r] & hyp[h]
    return Der(
        total=float(n_ref.sum()) * FRAME_S,
        missed=float(np.maximum(n_ref - n_hyp, 0).sum()) * FRAME_S,
        false_alarm=float(np.maximum(n_hyp - n_ref, 0).sum()) * FRAME_S,
        confusion=float((np.minimum(n_ref, n_hyp) - correct).sum()) * FRAME_S,
        reference_speakers=len(ref_names),
        hypothesis_speakers=len(hyp_names),
    )


def named_right(reference: Sequence[Turn], hypothesis: Sequence[Turn], collar_s: float = 0.25) -> dict[str, float]:
    """For each reference talker: the share of its scored time where the hypothesis names it (the
    hypothesis labels are the talkers' own names where known speakers were given)."""
    end = max([e for _, e, _ in [*reference, *hypothesis]], default=0.0)
    frames = int(np.ceil(end / FRAME_S)) + 1
    keep = scored(reference, frames, collar_s)
    names = sorted({s for *_, s in reference})
    ref = activity(reference, names, frames)[:, keep]
    hyp = activity([t for t in hypothesis if t[2] in names], names, frames)[:, keep]
    return {n: float((ref[i] & hyp[i]).sum() / max(1, ref[i].sum())) for i, n in enumerate(names)}
