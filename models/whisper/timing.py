"""Token times from cross-attention: the alignment heads' weights, normalised, smoothed and warped.

This is the arithmetic of OpenAI's reference `find_alignment`, on numpy arrays: the attention
of each alignment head over the window's audio frames, normalised per frame, median-filtered
along time, averaged over heads, then dynamic time warping finds the monotonic path of least
cost from the first token and frame to the last. Each token's time is the first frame the path
reaches on its row.
"""

from __future__ import annotations

import numpy as np

# Encoder frames per second (two mel frames of 10 ms each).
FRAMES_PER_SECOND = 50
MEDIAN_FILTER_WIDTH = 7


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=axis, keepdims=True))


def median_filter(x: np.ndarray, width: int = MEDIAN_FILTER_WIDTH) -> np.ndarray:
    """Median over a sliding window along the last axis, reflecting at the edges (odd `width`)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.asarray(np.sort(windows, axis=-1)[..., pad])


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-cost monotonic path through `cost` (rows x columns), as (row indices, column indices).

    Ties break as in OpenAI's reference: a diagonal step only when strictly cheapest, then a step
    down, else a step right. Cells on one anti-diagonal depend only on the two before it, so each
    anti-diagonal is one vectorised step (N + M steps instead of N x M).
    """
    n, m = cost.shape
    x = cost.astype(np.float32)
    acc = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    acc[0, 0] = 0.0
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    for d in range(2, n + m + 1):
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        c0 = acc[i - 1, j - 1]
        c1 = acc[i - 1, j]
        c2 = acc[i, j - 1]
        diagonal = (c0 < c1) & (c0 < c2)
        down = ~diagonal & (c1 < c0) & (c1 < c2)
        step = np.where(diagonal, 0, np.where(down, 1, 2)).astype(np.int8)
        best = np.where(diagonal, c0, np.where(down, c1, c2))
        acc[i, j] = x[i - 1, j - 1] + best
        trace[i, j] = step
    return _backtrace(trace)


def _backtrace(trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    trace = trace.copy()
    trace[0, :] = 2
    trace[:, 0] = 1
    i, j = trace.shape[0] - 1, trace.shape[1] - 1
    path: list[tuple[int, int]] = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        step = trace[i, j]
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    rows, cols = np.array(path[::-1]).T
    return rows, cols


def token_times(attention: np.ndarray, num_frames: int, rows: slice) -> np.ndarray:
    """Seconds at which each of `rows` begins, from the alignment heads' cross-attention.

    `attention` is (heads, decoder positions, encoder frames): attention probabilities over the
    whole 30 s window, for the whole decoder input (its prompt too: the normalisation over
    positions counts every one). Only the frames that hold audio (`num_frames` mel frames)
    count; as the reference does with its raw scores, the weights are renormalised over them.
    """
    frames = max(1, min(num_frames // 2, attention.shape[-1]))
    with np.errstate(divide="ignore"):
        scores = np.log(attention[..., :frames].astype(np.float64))
    weights = softmax(scores, axis=-1)
    std = weights.std(axis=-2, keepdims=True)
    mean = weights.mean(axis=-2, keepdims=True)
    weights = (weights - mean) / np.where(std > 0, std, 1.0)
    matrix = median_filter(weights).mean(axis=0)[rows]
    path_rows, cols = dtw(-matrix)
    jumps = np.pad(np.diff(path_rows), (1, 0), constant_values=1).astype(bool)
    return np.asarray(cols[jumps] / FRAMES_PER_SECOND, dtype=np.float64)
