"""Who said what: a transcript's words given to the speaker turns a diarizer found. Pure functions.

Timed words go to the speaker whose turns they overlap most; consecutive words of one speaker
make a segment, broken where the model's segment ends or the speaker pauses. Families without
word times read each speaker's stretch alone (`speaker_spans` cuts the recording so
that every moment belongs to exactly one stretch: no word falls between two).
"""

from __future__ import annotations

import string
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from models.interface import Segment, Word
from models.speakers.interface import SpeakerTurn

# A pause this long inside one speaker's words starts a new segment.
PAUSE_S = 1.0
# The label of the only speaker of a recording the diarizer found no turn in.
FIRST_LABEL = "A"


@dataclass(frozen=True)
class SpeakerSegment:
    """A stretch of transcript said by one speaker, in seconds of the request's audio."""

    start: float
    end: float
    text: str
    speaker: str


def spoken_text(said: Iterable[SpeakerSegment]) -> str:
    """The transcript's text: its speaker segments' texts in order."""
    return " ".join(s.text for s in said)


class Turns:
    """Speaker turns sorted by start, with lookups by time (turns do not overlap)."""

    def __init__(self, turns: Iterable[SpeakerTurn]) -> None:
        self.turns = sorted(turns, key=lambda t: (t.start, t.end))
        self.starts = [t.start for t in self.turns]
        self.ends = [t.end for t in self.turns]

    def speaker_at(self, start: float, end: float) -> str:
        """The speaker whose turns overlap [start, end] most; else the nearest turn's speaker."""
        if not self.turns:
            return FIRST_LABEL
        first = bisect_right(self.ends, start)  # turns before `first` end before the word starts
        last = bisect_left(self.starts, end)  # turns from `last` on start after it ends
        shares: dict[str, float] = {}
        for turn in self.turns[first:last]:
            shares[turn.speaker] = shares.get(turn.speaker, 0.0) + min(end, turn.end) - max(start, turn.start)
        if shares:
            return max(shares, key=lambda speaker: shares[speaker])
        near = [self.turns[i] for i in (first - 1, first) if 0 <= i < len(self.turns)]
        return min(near, key=lambda t: max(t.start - end, start - t.end)).speaker


def _said(words: Sequence[Word], speaker: str) -> SpeakerSegment | None:
    text = "".join(w.word for w in words).strip()
    return SpeakerSegment(words[0].start, words[-1].end, text, speaker) if text else None


def attribute(segments: Sequence[Segment], turns: Turns) -> list[SpeakerSegment]:
    """Each word to its speaker; runs of one speaker's words within one model segment, split at pauses.

    A segment without timed words (the model timed none) goes whole to the speaker of its time.
    """
    out: list[SpeakerSegment] = []
    for segment in segments:
        if not segment.words:
            if segment.text.strip():
                speaker = turns.speaker_at(segment.start, segment.end)
                out.append(SpeakerSegment(segment.start, segment.end, segment.text.strip(), speaker))
            continue
        run: list[Word] = []
        current = ""
        for word in segment.words:
            speaker = turns.speaker_at(word.start, word.end)
            if run and (speaker != current or word.start - run[-1].end > PAUSE_S):
                if (said := _said(run, current)) is not None:
                    out.append(said)
                run = []
            run.append(word)
            current = speaker
        if run and (said := _said(run, current)) is not None:
            out.append(said)
    return out


def merged_turns(turns: Sequence[SpeakerTurn]) -> list[SpeakerTurn]:
    """Consecutive turns of one speaker as one."""
    out: list[SpeakerTurn] = []
    for turn in sorted(turns, key=lambda t: (t.start, t.end)):
        if out and out[-1].speaker == turn.speaker:
            out[-1] = SpeakerTurn(out[-1].start, max(out[-1].end, turn.end), turn.speaker)
        else:
            out.append(turn)
    return out


def speaker_spans(
    turns: Sequence[SpeakerTurn], duration: float, cuts: Sequence[float] | None = None
) -> list[SpeakerTurn]:
    """The whole recording as consecutive stretches, one per run of one speaker's turns.

    Between two speakers the cut is `cuts[i]` where given (the caller's quietest point near the
    change), else the middle of the gap; the first stretch starts at 0, the last ends at `duration`.
    """
    runs = merged_turns(turns)
    if not runs:
        return [SpeakerTurn(0.0, duration, FIRST_LABEL)]
    bounds = [0.0]
    for i in range(1, len(runs)):
        middle = (runs[i - 1].end + runs[i].start) / 2
        bounds.append(min(max(cuts[i - 1] if cuts else middle, bounds[-1]), duration))
    bounds.append(max(duration, bounds[-1]))
    return [SpeakerTurn(bounds[i], bounds[i + 1], run.speaker) for i, run in enumerate(runs)]


def change_windows(turns: Sequence[SpeakerTurn], margin_s: float = 0.3) -> list[tuple[float, float]]:
    """Where to look for the quiet cut between each two runs of `merged_turns`: the gap, widened by `margin_s`."""
    runs = merged_turns(turns)
    out = []
    for before, after in pairwise(runs):
        low, high = sorted((before.end, after.start))
        out.append((max(before.start, low - margin_s), min(after.end, high + margin_s)))
    return out


class Labels:
    """Speaker labels in order of first appearance in the output: A, B, ... (known names kept).

    The diarizer labels by first appearance in the audio; a speaker whose turns hold no word
    would otherwise leave a letter out.
    """

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.known = set(known)
        self.given: dict[str, str] = {}
        self._letters = (letter for letter in _letters() if letter not in self.known)

    def __call__(self, speaker: str) -> str:
        if speaker in self.known:
            return speaker
        if speaker not in self.given:
            self.given[speaker] = next(self._letters)
        return self.given[speaker]


def _letters() -> Iterable[str]:
    """A ... Z, then AA, AB, ..."""
    yield from string.ascii_uppercase
    for first in string.ascii_uppercase:
        for second in string.ascii_uppercase:
            yield first + second
