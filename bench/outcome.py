"""What one system did on one workload, and the scores drawn from it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.metrics import Spread, WordErrors, onset_errors, pooled_errors, rtfx, spread
from bench.workloads import Workload


@dataclass
class Outcome:
    """Raw observations of one system on one workload."""

    walls: list[float] = field(default_factory=list)  # one per repetition
    latencies: list[float] = field(default_factory=list)  # one per request, all repetitions
    texts: list[str] = field(default_factory=list)  # one per file, from the last repetition
    failures: list[str] = field(default_factory=list)  # one per failed request
    segment_starts: list[list[float]] | None = None  # per file, where segments were asked for and given
    segments_note: str | None = None  # why segment starts are missing
    failure: str | None = None  # the system could not run the workload at all


def failed(message: str) -> Outcome:
    return Outcome(failure=message)


@dataclass(frozen=True)
class Scores:
    rtfx: float | None
    errors: WordErrors | None
    latency: Spread
    onset: Spread | None  # None where the workload scores no onsets; n/a inside where none were given
    note: str  # failures, or why a score is missing; empty when all went well


def describe_failures(failures: list[str]) -> str:
    """ "HTTP 500 x3; timeout x1": the distinct failures and how often each happened."""
    return "; ".join(f"{message} x{count}" for message, count in Counter(failures).most_common(3))


def score(workload: Workload, outcome: Outcome) -> Scores:
    if outcome.failure:
        return Scores(None, None, Spread(None, None), None, outcome.failure)
    errors = pooled_errors(workload.references, outcome.texts) if outcome.texts else None
    onset = None
    notes = [describe_failures(outcome.failures)] if outcome.failures else []
    if workload.onsets is not None:
        if outcome.segment_starts is not None:
            distances = [
                d
                for onsets, starts in zip(workload.onsets, outcome.segment_starts, strict=True)
                for d in onset_errors(onsets, starts)
            ]
            onset = spread(distances)
        else:
            onset = Spread(None, None)
            notes.append(f"segments: {outcome.segments_note or 'not given'}")
    return Scores(rtfx(workload.audio_s, outcome.walls), errors, spread(outcome.latencies), onset, "; ".join(notes))
