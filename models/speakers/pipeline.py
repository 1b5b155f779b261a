"""The diarization pipeline shared by every speaker-embedding model: speech regions, windows, embeddings,
clusters, turns, names. A candidate supplies only `embed`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from models.speakers import clustering
from models.speakers.interface import KnownSpeaker, SpeakerTurn
from models.speakers.speech import SpeechRegions


class Embedder(Protocol):
    """A speaker-embedding model over 16 kHz audio."""

    def embed(self, audio: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
        """One embedding row per (start, end) span of `audio`, in seconds."""
        ...


@dataclass(frozen=True)
class Tuning:
    """The knobs of the pipeline; each candidate has its own (bench/diarization.py measured them)."""

    # Cosine distance under which average-linkage joins clusters.
    threshold: float
    # Cosine similarity a cluster needs to a known speaker's clip to take that name.
    naming: float
    window_s: float = 1.5
    step_s: float = 0.75
    # A cluster with less speech than this joins its nearest neighbour: stray windows are not a speaker.
    min_speaker_s: float = 1.0
    # A change of speaker that lasts less than this is smoothed away.
    min_turn_s: float = 0.25


@dataclass(frozen=True)
class Analysis:
    """What the model found in one recording, before clustering."""

    duration_s: float
    regions: list[tuple[float, float]]
    spans: list[tuple[float, float]]  # the windows, in seconds
    vectors: np.ndarray  # one unit-length embedding per window


class WindowDiarizer:
    """`Diarizer` on an `Embedder`: the model loads on first use, once, under a lock."""

    sample_rate: ClassVar[int] = 16_000

    def __init__(self, tuning: Tuning) -> None:
        self.tuning = tuning
        self._speech = SpeechRegions()
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    def load(self) -> Embedder:
        """The embedding model (subclasses build it)."""
        raise NotImplementedError

    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self.load()
            return self._embedder

    def diarize(self, audio: np.ndarray, known: Sequence[KnownSpeaker] = ()) -> list[SpeakerTurn]:
        """Turns sorted by start, not overlapping; known speakers named, the rest A, B, ..."""
        return self.label(self.analyse(audio), known)

    def analyse(self, audio: np.ndarray) -> Analysis:
        """The model's part: speech regions, their windows and one embedding per window."""
        audio = np.asarray(audio, dtype=np.float32)
        regions = self._speech(audio)
        spans = clustering.windows(regions, self.tuning.window_s, self.tuning.step_s)
        vectors = clustering.normalized(self.embedder().embed(audio, spans)) if spans else np.zeros((0, 1))
        kept = [r for r in regions if any(a >= r[0] - 1e-6 and b <= r[1] + 1e-6 for a, b in spans)]
        return Analysis(len(audio) / self.sample_rate, kept, spans, vectors)

    def label(self, analysis: Analysis, known: Sequence[KnownSpeaker] = ()) -> list[SpeakerTurn]:
        """The clustering's part (cheap: the bench reruns it over thresholds)."""
        t, spans, vectors = self.tuning, analysis.spans, analysis.vectors
        if not spans:
            return []
        labels = clustering.agglomerate(vectors, t.threshold)
        labels = clustering.merge_small(vectors, labels, self._weights(spans, labels), t.min_speaker_s)
        frames = clustering.frame_labels(spans, labels, analysis.regions, analysis.duration_s)
        frames = clustering.smooth(frames, round(t.min_turn_s / clustering.FRAME_S))
        return clustering.turns(frames, self._names(vectors, labels, known))

    def _weights(self, spans: Sequence[tuple[float, float]], labels: np.ndarray) -> np.ndarray:
        """Seconds of speech each window stands for: overlapping windows share their time."""
        length = np.array([b - a for a, b in spans])
        return length * np.minimum(1.0, self.tuning.step_s / np.maximum(length, 1e-6))

    def reference(self, clip: np.ndarray) -> np.ndarray:
        """A known speaker's clip as one unit vector: the mean of its windows' embeddings."""
        clip = np.asarray(clip, dtype=np.float32)
        regions = self._speech(clip) or [(0.0, len(clip) / self.sample_rate)]
        spans = clustering.windows(regions, self.tuning.window_s, self.tuning.step_s)
        spans = spans or [(0.0, len(clip) / self.sample_rate)]
        return clustering.centroid(self.embedder().embed(clip, spans))

    def _names(self, vectors: np.ndarray, labels: np.ndarray, known: Sequence[KnownSpeaker]) -> dict[int, str]:
        if not known:
            return {}
        centres = np.stack([clustering.centroid(vectors[labels == c]) for c in range(int(labels.max()) + 1)])
        references = np.stack([self.reference(k.audio) for k in known])
        return clustering.name_clusters(centres, references, [k.name for k in known], self.tuning.naming)
