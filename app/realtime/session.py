"""One transcription session's state: its configuration, the input audio buffer, turns, committed items.

Pure apart from the speech detector: text in, server events and committed audio out. The route
sends the events and transcribes the commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.audio.vad import SpeechDetector
from app.realtime.events import (
    RATE,
    ClientEvent,
    Dialect,
    EventError,
    SessionConfig,
    apply_update,
    decode_pcm16,
    error_event,
    new_id,
    parse_event,
    server_event,
    session_shape,
)
from app.realtime.turns import Turn, TurnDetector

MIN_COMMIT_SAMPLES = RATE // 10  # OpenAI refuses to commit less than 100 ms
IDLE_KEEP_S = 0.5  # with turn detection, silence kept beyond the prefix padding while nobody speaks
TRANSCRIPTION_PARAMS = ("model", "language", "prompt")

Check = Callable[[SessionConfig], None]


@dataclass(frozen=True)
class Commit:
    """A committed item: its audio at 24 kHz, and the configuration it is to be transcribed with."""

    item_id: str
    samples: np.ndarray
    config: SessionConfig


@dataclass
class Outcome:
    """What one client event led to: server events to send, items to transcribe."""

    events: list[dict[str, Any]] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)


class Session:
    """The session state machine; `check` refuses (EventError) a configuration the server cannot serve."""

    def __init__(self, config: SessionConfig, detector: SpeechDetector, check: Check, max_buffer_s: float) -> None:
        self.id = new_id("sess")
        self.config = config
        self._detector = detector
        self._check = check
        self._max_samples = int(max_buffer_s * RATE)
        self._buffer: list[np.ndarray] = []
        self._start = 0  # session sample index of the buffer's first sample
        self._received = 0  # samples received in the whole session
        self._item: str | None = None  # the item of the speech in progress
        self._previous: str | None = None  # the last committed item
        self._turns = self._detector_for(config)

    def created(self) -> dict[str, Any]:
        return server_event("session.created", session=session_shape(self.id, self.config, "ga"))

    @property
    def buffered(self) -> int:
        return self._received - self._start

    def receive(self, text: str | bytes) -> Outcome:
        """Handle one client message; a refused one yields one `error` event and changes nothing."""
        event: ClientEvent | None = None
        try:
            event = parse_event(text)
            return self._dispatch(event)
        except EventError as error:
            return Outcome([error_event(error, event.event_id if event else None)])

    def _dispatch(self, event: ClientEvent) -> Outcome:
        if event.type in ("session.update", "transcription_session.update"):
            return self._update(event)
        if event.type == "input_audio_buffer.append":
            return self._append(decode_pcm16(event.body.get("audio")))
        if event.type == "input_audio_buffer.commit":
            return self._commit_manually()
        return self._clear()

    # -- configuration ------------------------------------------------------------------------
    def _detector_for(self, config: SessionConfig) -> TurnDetector | None:
        if config.turn_detection is None:
            return None
        return TurnDetector(self._detector, config.turn_detection, origin=self._received)

    def _update(self, event: ClientEvent) -> Outcome:
        config, dialect = apply_update(self.config, event)
        try:
            self._check(config)
        except EventError as error:
            if error.param in TRANSCRIPTION_PARAMS:
                error.param = f"{_transcription_path(dialect)}.{error.param}"
            raise
        if config.turn_detection is None or self._turns is None:
            self._turns = self._detector_for(config)
        else:
            self._turns.params = config.turn_detection
        self.config = config
        kind = "session.updated" if dialect == "ga" else "transcription_session.updated"
        return Outcome([server_event(kind, session=session_shape(self.id, config, dialect))])

    # -- the buffer ---------------------------------------------------------------------------
    def _append(self, samples: np.ndarray) -> Outcome:
        out = Outcome()
        if self.buffered + len(samples) > self._max_samples:
            if self._turns is None or not self._turns.speaking:
                seconds = self._max_samples / RATE
                raise EventError(
                    f"The input audio buffer holds at most {seconds:.0f} s of uncommitted audio; "
                    "commit or clear it before appending more.",
                    "input_audio_buffer_full",
                    "audio",
                )
            self._cut(out)  # speech this long is committed as it goes
        self._buffer.append(samples)
        self._received += len(samples)
        if self._turns is not None:
            for turn in self._turns.feed(samples):
                self._on_turn(turn, out)
            if not self._turns.speaking:
                keep = self.config.turn_detection.prefix_padding_ms * RATE // 1000 if self.config.turn_detection else 0
                self._drop_before(self._received - keep - int(IDLE_KEEP_S * RATE))
        return out

    def _on_turn(self, turn: Turn, out: Outcome) -> None:
        if turn.kind == "start":
            self._drop_before(turn.sample)
            self._item = new_id("item")
            out.events.append(
                server_event("input_audio_buffer.speech_started", audio_start_ms=_ms(self._start), item_id=self._item)
            )
            return
        end = min(turn.sample, self._received)
        item = self._item or new_id("item")
        out.events.append(server_event("input_audio_buffer.speech_stopped", audio_end_ms=_ms(end), item_id=item))
        self._item = None
        self._commit(item, end, out, pad=True)

    def _cut(self, out: Outcome) -> None:
        """Commit the speech in progress so far; the speech goes on as a new item."""
        item = self._item or new_id("item")
        out.events.append(
            server_event("input_audio_buffer.speech_stopped", audio_end_ms=_ms(self._received), item_id=item)
        )
        self._commit(item, self._received, out, pad=True)
        self._item = new_id("item")
        out.events.append(
            server_event("input_audio_buffer.speech_started", audio_start_ms=_ms(self._received), item_id=self._item)
        )

    def _commit_manually(self) -> Outcome:
        if self.buffered < MIN_COMMIT_SAMPLES:
            raise EventError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {1000 * self.buffered / RATE:.2f}ms of audio.",
                "input_audio_buffer_commit_empty",
            )
        out = Outcome()
        if self._turns is not None and self._turns.speaking:
            self._cut(out)
        else:
            self._commit(self._item or new_id("item"), self._received, out)
            self._item = None
        return out

    def _commit(self, item: str, end: int, out: Outcome, pad: bool = False) -> None:
        """Commit the buffer up to session sample `end`; what follows stays buffered."""
        audio = np.concatenate(self._buffer) if self._buffer else np.zeros(0, dtype=np.float32)
        taken, rest = audio[: end - self._start], audio[end - self._start :]
        if pad and len(taken) < MIN_COMMIT_SAMPLES:
            taken = np.concatenate([taken, np.zeros(MIN_COMMIT_SAMPLES - len(taken), dtype=np.float32)])
        self._buffer = [rest] if len(rest) else []
        self._start = end
        out.events.append(server_event("input_audio_buffer.committed", item_id=item, previous_item_id=self._previous))
        self._previous = item
        out.commits.append(Commit(item, taken, self.config))

    def _clear(self) -> Outcome:
        self._buffer = []
        self._start = self._received
        self._item = None
        if self._turns is not None:
            self._turns.interrupt()
        return Outcome([server_event("input_audio_buffer.cleared")])

    def _drop_before(self, sample: int) -> None:
        """Forget buffered audio before session sample `sample`."""
        drop = min(sample, self._received) - self._start
        if drop <= 0:
            return
        audio = np.concatenate(self._buffer)[drop:]
        self._buffer = [audio] if len(audio) else []
        self._start += drop


def _ms(sample: int) -> int:
    return sample * 1000 // RATE


def _transcription_path(dialect: Dialect) -> str:
    return "session.input_audio_transcription" if dialect == "beta" else "session.audio.input.transcription"
