"""A real two-talker conversation (about 20 s) from pocketsphinx-testdata, with each turn's time and talker.

The talkers: a LibriVox reader and the talker of `goforward.raw`, `something.raw` and `numbers.raw`
(one voice by CAM++, another than `cards/`), alternating with 0.3-1.0 s gaps; a turn's time is its
speech's (bench/conversation.py finds it).
"""

from __future__ import annotations

import random

import numpy as np

from bench.conversation import POCKETSPHINX, cut, layout, load, mix

RATE = 16_000
LIBRIVOX = sorted((POCKETSPHINX / "librivox").glob("*.wav"))


def two_talkers() -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """16 kHz samples, and (start, end, talker) of each turn."""
    order = [("reader", LIBRIVOX[1]), ("other", POCKETSPHINX / "goforward.raw"), ("reader", LIBRIVOX[4]),
             ("other", POCKETSPHINX / "something.raw"), ("reader", LIBRIVOX[2])]  # fmt: skip
    clips, lengths = [], []
    for _, path in order:
        clip, onset, offset = cut(load(path, RATE), RATE)
        clips.append((clip * (0.5 / float(np.abs(clip).max())), onset))
        lengths.append(offset - onset)
    spans = layout(lengths, random.Random(3), (0.5, 1.0), (0.3, 1.0))
    audio = mix(clips, [s for s, _ in spans], RATE)
    return audio, [(s, e, who) for (s, e), (who, _) in zip(spans, order, strict=True)]
