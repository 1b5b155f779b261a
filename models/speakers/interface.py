"""The contract between the gateway and a diarizer: audio in, speaker turns out, plain data both ways.

A diarizer is blocking CPU/GPU work; the gateway runs it in a worker thread, beside the engine.
It knows nothing of HTTP or of the model that writes the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

# The longest and shortest reference clip OpenAI accepts for a known speaker, and how many.
REFERENCE_MIN_S = 2.0
REFERENCE_MAX_S = 10.0
MAX_KNOWN_SPEAKERS = 4


@dataclass(frozen=True)
class SpeakerTurn:
    """One stretch of one speaker's voice, in seconds of the request's audio."""

    start: float
    end: float
    # "A", "B", ... in order of first appearance, or a known speaker's name.
    speaker: str


@dataclass(frozen=True)
class KnownSpeaker:
    """A name and a 2-10 s clip of that talker (mono float32 at the diarizer's rate)."""

    name: str
    audio: np.ndarray


class Diarizer(Protocol):
    """Finds the speaker turns of one recording."""

    # The rate the diarizer's audio (and known speakers' clips) must have.
    sample_rate: ClassVar[int]

    def diarize(self, audio: np.ndarray, known: Sequence[KnownSpeaker] = ()) -> list[SpeakerTurn]:
        """Turns sorted by start, not overlapping; unnamed speakers labelled A, B, ... by first appearance.

        A cluster that matches a known speaker's clip is labelled with that name; the others
        keep letters, assigned in order of first appearance among the unnamed.
        """
        ...
