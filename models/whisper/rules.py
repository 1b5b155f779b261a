"""Whisper's decoding rules as a per-request logits rule: suppression and timestamp grammar.

They follow OpenAI's reference decoder: timestamps come in pairs and never go back, the
first token is a timestamp within `max_initial_timestamp`, text cannot start with a blank,
and a timestamp is forced when all timestamps together outweigh the best text token.

A window shared by clips of several requests (`shared.py`) adds `spans`, each clip's first
and last timestamp index: no timestamp falls between two clips, and a segment opened in one
clip closes within it, so every segment belongs to one clip by its own timestamps. (Packed
speech of one request does not use it: a segment that may not close where the model hears
its end runs on through every turn after it; measured, 22 s segments.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

NEG_INF = float("-inf")
SECONDS_PER_TIMESTAMP = 0.02
# A stretch's segments may close this far past its end, into the pause (timestamps are good to ~0.2 s).
END_SLACK_S = 0.3


def timestamp_spans(stretches: Sequence[tuple[float, float]]) -> list[list[int]]:
    """Per stretch (start, end in seconds into the window), the first and last timestamp index its segments may use."""
    step = SECONDS_PER_TIMESTAMP
    return [[round(lo / step), round((hi + END_SLACK_S) / step)] for lo, hi in stretches]


@dataclass(frozen=True)
class WhisperRuleArgs:
    timestamp_begin: int
    eot: int
    no_timestamps: int
    suppress: tuple[int, ...]
    suppress_begin: tuple[int, ...]
    max_initial_timestamp_index: int | None = 50
    # Shared windows: per clip, the first and last timestamp index its segments may use.
    spans: tuple[tuple[int, int], ...] = ()
    # Text only (after <|notimestamps|>): suppression alone, no timestamp grammar.
    without_timestamps: bool = False

    @classmethod
    def from_mapping(cls, args: Mapping[str, Any]) -> WhisperRuleArgs:
        return cls(
            timestamp_begin=int(args["timestamp_begin"]),
            eot=int(args["eot"]),
            no_timestamps=int(args["no_timestamps"]),
            suppress=tuple(int(t) for t in args.get("suppress", ())),
            suppress_begin=tuple(int(t) for t in args.get("suppress_begin", ())),
            max_initial_timestamp_index=args.get("max_initial_timestamp_index"),
            spans=tuple((int(lo), int(hi)) for lo, hi in args.get("spans", ())),
            without_timestamps=bool(args.get("without_timestamps", False)),
        )

    def span_end(self, index: int) -> int | None:
        """The last timestamp index of the clip holding timestamp `index` (None: not in a clip)."""
        return next((hi for lo, hi in self.spans if lo <= index <= hi), None)


def _between_spans(spans: tuple[tuple[int, int], ...]) -> list[int]:
    """Timestamp indices that lie in no span."""
    inside = {i for lo, hi in spans for i in range(lo, hi + 1)}
    return [i for i in range(spans[-1][1] + 1) if i not in inside]


@cache
def _suppress_index(ids: tuple[int, ...], device: str) -> torch.Tensor:
    return torch.tensor(ids, dtype=torch.long, device=device)


class WhisperLogitsRule:
    """Callable on (output token ids so far, one row of logits) -> the row, changed in place."""

    def __init__(self, args: WhisperRuleArgs) -> None:
        self.a = args
        self._between = torch.tensor(_between_spans(args.spans) if args.spans else [], dtype=torch.long)

    def __call__(self, output_ids: Sequence[int], logits: torch.Tensor) -> torch.Tensor:
        a = self.a
        vocab = logits.shape[-1]
        device = str(logits.device)
        ids = [t for t in a.suppress if t < vocab] + [a.no_timestamps]
        logits[_suppress_index(tuple(ids), device)] = NEG_INF
        ts = a.timestamp_begin
        n = len(output_ids)
        if a.without_timestamps:
            return self._text_only(n, logits)
        if a.spans:
            self._keep_to_spans(output_ids, logits)
        if n == 0:
            if a.suppress_begin:
                logits[_suppress_index(a.suppress_begin, device)] = NEG_INF
            # The first token is a timestamp, no later than max_initial_timestamp.
            logits[:ts] = NEG_INF
            if a.max_initial_timestamp_index is not None:
                logits[ts + a.max_initial_timestamp_index + 1 :] = NEG_INF
            return logits

        last_ts = output_ids[-1] >= ts
        penultimate_ts = n < 2 or output_ids[-2] >= ts
        if last_ts:
            if penultimate_ts:
                logits[ts:] = NEG_INF  # a pair just closed: text must follow
            else:
                logits[: a.eot] = NEG_INF  # an open timestamp: another one or the end
        last_timestamp = next((t for t in reversed(output_ids) if t >= ts), None)
        if last_timestamp is not None:
            # Never go back in time, and give every segment a non-zero length.
            upto = last_timestamp if (last_ts and not penultimate_ts) else last_timestamp + 1
            logits[ts:upto] = NEG_INF

        # The reference compares log-probabilities; both sides share softmax's normaliser, so the
        # raw logits compare alike without a softmax over the whole vocabulary at every step.
        if torch.logsumexp(logits[ts:].float(), dim=-1) > logits[:ts].max():
            logits[:ts] = NEG_INF
        return logits

    def _text_only(self, n: int, logits: torch.Tensor) -> torch.Tensor:
        """No timestamps at all, and no blank first token (the reference's rules without timestamps)."""
        if n == 0 and self.a.suppress_begin:
            logits[_suppress_index(self.a.suppress_begin, str(logits.device))] = NEG_INF
        logits[self.a.timestamp_begin :] = NEG_INF
        return logits

    def _keep_to_spans(self, output_ids: Sequence[int], logits: torch.Tensor) -> None:
        """No timestamp outside the clips, and an open segment closes in the clip it opened in."""
        ts, spans = self.a.timestamp_begin, self.a.spans
        if len(self._between):
            if self._between.device != logits.device:
                self._between = self._between.to(logits.device)
            logits[ts + self._between] = NEG_INF
        logits[ts + spans[-1][1] + 1 :] = NEG_INF
        if output_ids and output_ids[-1] < ts:  # inside a segment: its closing stamp stays in its clip
            opened = next((t for t in reversed(output_ids) if t >= ts), None)
            end = self.a.span_end(opened - ts) if opened is not None else None
            if end is not None:
                logits[ts + end + 1 :] = NEG_INF


def build_rule(args: Mapping[str, Any]) -> WhisperLogitsRule:
    """The factory the engine process calls with a request's rule arguments."""
    return WhisperLogitsRule(WhisperRuleArgs.from_mapping(args))
