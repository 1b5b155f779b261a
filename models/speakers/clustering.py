"""From window embeddings to speaker turns: windows, clustering, frame labels, names. Pure numpy/scipy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.speakers.interface import SpeakerTurn

FRAME_S = 0.01  # the grid turns are built on
Span = tuple[float, float]


def windows(regions: Sequence[Span], length_s: float, step_s: float, min_s: float = 0.2) -> list[Span]:
    """Windows of `length_s` every `step_s` over each speech region; a region shorter than a window is
    one window, and the last window of a region ends with it (so every region is covered)."""
    out: list[Span] = []
    for start, end in regions:
        if end - start < min_s:
            continue
        if end - start <= length_s:
            out.append((start, end))
            continue
        at = start
        while at + length_s < end:
            out.append((at, at + length_s))
            at += step_s
        out.append((end - length_s, end))
    return out


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def agglomerate(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Average-linkage clusters under cosine distance `threshold`: labels 0..k-1."""
    if len(embeddings) == 1:
        return np.zeros(1, dtype=np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(normalized(embeddings), method="average", metric="cosine")
    return np.asarray(fcluster(tree, t=threshold, criterion="distance"), dtype=np.int64) - 1


def merge_small(embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray, min_weight: float) -> np.ndarray:
    """Clusters whose total weight (seconds of speech) is under `min_weight` join the most similar
    large cluster: a few stray windows are not a speaker. Labels renumbered 0..k-1."""
    labels = labels.copy()
    ids = np.unique(labels)
    totals = {c: float(weights[labels == c].sum()) for c in ids}
    large = [c for c in ids if totals[c] >= min_weight]
    if not large:  # all small: the largest one stands
        large = [max(ids, key=lambda c: totals[c])]
    centres = {c: centroid(embeddings[labels == c]) for c in large}
    for c in ids:
        if c not in centres:
            mine = centroid(embeddings[labels == c])
            labels[labels == c] = max(large, key=lambda k: float(centres[k] @ mine))
    _, renumbered = np.unique(labels, return_inverse=True)
    return np.asarray(renumbered, dtype=np.int64)


def centroid(embeddings: np.ndarray) -> np.ndarray:
    """The unit-length mean direction of unit-length `embeddings`."""
    return normalized(normalized(embeddings).mean(axis=0, keepdims=True))[0]


def frame_labels(spans: Sequence[Span], labels: np.ndarray, regions: Sequence[Span], duration_s: float) -> np.ndarray:
    """A label per 10 ms frame (-1 outside speech): within a region, the label of the window whose
    centre is nearest among the windows of that region."""
    n = int(np.ceil(duration_s / FRAME_S))
    out = np.full(n, -1, dtype=np.int64)
    centres = np.array([(a + b) / 2 for a, b in spans]) if spans else np.zeros(0)
    for start, end in regions:
        lo, hi = round(start / FRAME_S), min(n, round(end / FRAME_S))
        inside = np.flatnonzero([(a >= start - 1e-6) and (b <= end + 1e-6) for a, b in spans])
        if hi <= lo or inside.size == 0:
            continue
        times = (np.arange(lo, hi) + 0.5) * FRAME_S
        nearest = inside[np.argmin(np.abs(times[:, None] - centres[inside][None, :]), axis=1)]
        out[lo:hi] = labels[nearest]
    return out


def smooth(frames: np.ndarray, min_run: int) -> np.ndarray:
    """Runs of one label shorter than `min_run` frames inside speech take the label before them
    (or after, at a region's start): a speaker does not change for 0.2 s and back."""
    out = frames.copy()
    runs = _runs(out)
    for i, (lo, hi, label) in enumerate(runs):
        if label < 0 or hi - lo >= min_run:
            continue
        before = out[lo - 1] if lo > 0 else -1
        after = out[hi] if hi < len(out) else -1
        if before >= 0:
            out[lo:hi] = before
        elif after >= 0 and i + 1 < len(runs) and runs[i + 1][1] - runs[i + 1][0] >= min_run:
            out[lo:hi] = after
    return out


def _runs(frames: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, label) of each run of equal labels."""
    if frames.size == 0:
        return []
    edges = np.flatnonzero(np.diff(frames)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [frames.size]])
    return [(int(a), int(b), int(frames[a])) for a, b in zip(starts, ends, strict=True)]


def turns(frames: np.ndarray, names: dict[int, str]) -> list[SpeakerTurn]:
    """Turns from frame labels: each run of one cluster (silence inside a region never splits it),
    named by `names` where given, the rest lettered A, B, ... by first appearance."""
    letters: dict[int, str] = {}
    out: list[SpeakerTurn] = []
    for lo, hi, label in _runs(frames):
        if label < 0:
            continue
        if label not in names and label not in letters:
            letters[label] = letter(len(letters))
        speaker = names.get(label) or letters[label]
        start, end = round(lo * FRAME_S, 3), round(hi * FRAME_S, 3)
        if out and out[-1].speaker == speaker and start - out[-1].end < 1e-6:
            out[-1] = SpeakerTurn(out[-1].start, end, speaker)
        else:
            out.append(SpeakerTurn(start, end, speaker))
    return out


def letter(index: int) -> str:
    """A, B, ..., Z, AA, AB, ...: the label of the index-th unnamed speaker."""
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("A") + rest) + text
    return text


def name_clusters(
    centres: np.ndarray, references: np.ndarray, names: Sequence[str], threshold: float
) -> dict[int, str]:
    """{cluster: name}: each known speaker's reference given to at most one cluster and each cluster at
    most one name, the pairing of highest total cosine similarity, pairs under `threshold` dropped."""
    if len(centres) == 0 or len(references) == 0:
        return {}
    from scipy.optimize import linear_sum_assignment

    similarity = normalized(centres) @ normalized(references).T
    rows, cols = linear_sum_assignment(-similarity)
    return {int(r): names[c] for r, c in zip(rows, cols, strict=True) if similarity[r, c] >= threshold}
