"""How Whisper reads a window: temperature fallback, re-reading an unfinished tail, language detection.

This is the policy of OpenAI's reference `transcribe()`, run with every window in parallel: a
window is decoded at the coolest temperature whose reading passes the quality checks, and
when the transcript stops short of speech the model has not written down, that tail is read
again. A reading that writes nothing or loops over audio that holds speech is read again
without the prompt first (the reference drops the prompt on fallback): only the no-speech
rule may end a window with speech empty before every fallback reading has been tried. The
prompts live in `family.py`, the parsing of one reading in `window.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from models.interface import (
    DecodeOptions,
    EngineCalls,
    GenerationRequest,
    GenerationResult,
    Piece,
    Segment,
    SpeechToTextConfig,
)
from models.signal import has_speech, is_silent
from models.whisper.window import NO_SPEECH_THRESHOLD, WindowOutcome

log = logging.getLogger("speech_gateway.whisper")

# A window whose transcript stops this far before its end, with speech after, has that tail read again.
MIN_TAIL_S = 0.5
MAX_REREADS = 3
# Windows tried, in order, for language detection before settling on the best guess.
DETECTION_WINDOWS = 3


@dataclass(frozen=True)
class LanguageGuess:
    language: str
    probability: float
    no_speech_prob: float


class WindowDecoder(Protocol):
    """How one reading of a window is asked for and understood (`WhisperModel`)."""

    def get_generation_prompt(
        self,
        audio: np.ndarray,
        stt_config: SpeechToTextConfig,
        options: DecodeOptions,
        temperature: float,
        stretches: Sequence[tuple[float, float]] = (),
    ) -> GenerationRequest: ...

    def parse_window(
        self, result: GenerationResult, window_s: float, offset_s: float, temperature: float, final: bool = False
    ) -> WindowOutcome: ...


class WindowReader(WindowDecoder, Protocol):
    """The parts of `WhisperModel` this policy drives."""

    @property
    def fallback_temperatures(self) -> Sequence[float]: ...

    def get_language_detection_prompt(
        self, audio: np.ndarray, stt_config: SpeechToTextConfig, candidates: Sequence[str]
    ) -> GenerationRequest: ...

    def parse_language_detection(self, result: GenerationResult, candidates: Sequence[str]) -> LanguageGuess: ...


async def detect_language(
    model: WindowReader, pieces: Sequence[Piece], options: DecodeOptions, stt: SpeechToTextConfig, calls: EngineCalls
) -> LanguageGuess | None:
    """The language of the first window that holds speech (the best guess if none does)."""
    best = None
    tried = 0
    for piece in pieces:
        if is_silent(piece.samples):
            continue
        request = model.get_language_detection_prompt(piece.samples, stt, options.candidate_languages)
        result = await calls.generate(request, f"lang{piece.index}")
        guess = model.parse_language_detection(result, options.candidate_languages)
        if best is None or guess.no_speech_prob < best.no_speech_prob:
            best = guess
        tried += 1
        if guess.no_speech_prob < NO_SPEECH_THRESHOLD or tried >= DETECTION_WINDOWS:
            break
    if best is not None:
        log.debug("detected language %s (p=%.2f)", best.language, best.probability)
    return best


@dataclass(frozen=True)
class Window:
    """A stretch of one piece being read: samples [start, end) of `piece`."""

    piece: Piece
    start: int
    end: int
    depth: int = 0

    @property
    def samples(self) -> np.ndarray:
        return self.piece.samples[self.start : self.end]


Attempt = Callable[[float, DecodeOptions], Awaitable[WindowOutcome]]


async def fallback(
    attempt: Attempt,
    temperatures: Sequence[float],
    options: DecodeOptions,
    holds_speech: Callable[[], bool],
    climb_unsure: bool = True,
) -> list[WindowOutcome]:
    """Every reading of one window the policy asks for, in the order it prefers them.

    With `climb_unsure` False, only a reading that may have lost speech (empty, or a loop) goes
    on to hotter temperatures; one that is merely unsure is kept.
    """
    first, *others = temperatures
    attempts = [await attempt(first, options)]
    hotter = options
    if attempts[0].empty or attempts[0].looped:
        speech = holds_speech()
        if attempts[0].empty and not speech:
            return attempts
        if speech and options.prompt:
            # A prompt can make the model write nothing or loop: read again without it at the
            # same temperature, and keep it out of the hotter readings that may follow.
            hotter = replace(options, prompt=None)
            attempts.append(await attempt(first, hotter))
    # The next temperature alone (it usually suffices: one more pass), then all the others at
    # once (two round trips at most instead of up to five in a row).
    for step, batch in enumerate((others[:1], others[1:])):
        if not batch or any(not a.retry for a in attempts):
            break
        if not climb_unsure and not any(a.empty or a.looped for a in attempts):
            break
        if step and all(a.empty for a in attempts):
            # Nothing written cool and hot, without the prompt: the model hears no words there (a
            # breath, a click the detector took for speech). The whole ladder on each such window
            # cost 10 % RTFx on real calls.
            break
        attempts += await asyncio.gather(*(attempt(t, hotter) for t in batch))
    return attempts


async def read_window(
    model: WindowReader, window: Window, options: DecodeOptions, stt: SpeechToTextConfig, calls: EngineCalls
) -> tuple[list[Segment], int, int]:
    """Segments of the window, and the input and output tokens spent: fallback, then the unread tail again."""
    rate = window.piece.sample_rate
    samples = window.samples
    if is_silent(samples):
        return [], 0, 0
    window_s = len(samples) / rate
    offset_s = window.piece.offset_s + window.start / rate
    final = window.piece.final and window.end == len(window.piece.samples)
    tag = f"d{window.depth}"

    async def attempt(temperature: float, opts: DecodeOptions) -> WindowOutcome:
        request = model.get_generation_prompt(samples, stt, opts, temperature)
        # The tag names the pass's kind for the request's stage times (`models/stages.py`).
        hotter = "-fb" if temperature != temperatures[0] else ""
        result = await calls.generate(request, f"{tag}-t{temperature:g}{hotter}{'' if opts is options else '-np'}")
        outcome = model.parse_window(result, window_s, offset_s, temperature, final)
        log.debug(
            "%.2f s at %.2f s, T=%g%s: %d tokens (%s), consumed %.2f s%s",
            window_s,
            offset_s,
            temperature,
            "" if opts is options else " without the prompt",
            len(result.token_ids),
            result.finish_reason,
            outcome.consumed_s,
            ", empty" if outcome.empty else ", looped" if outcome.looped else ", retry" if outcome.retry else "",
        )
        return replace(outcome, input_tokens=result.prompt_tokens)

    requested = options.temperature
    temperatures = model.fallback_temperatures if requested == 0 else [requested]
    # The pieces are what the speech detector found; this energy check keeps the fallback off
    # windows too quiet or too short to hold a word, where an empty reading loses nothing.
    # A tail read again is a few seconds the model chose to stop before: read alone, it is often
    # unsure at every temperature. On the conversation set the hotter readings of unsure tails
    # changed no word and cost 17 % RTFx (12 real and read files: 16.6 -> 19.9); the kept pauses
    # of packing made such tails common. Tails that come back empty or looping still climb.
    attempts = await fallback(
        attempt,
        temperatures,
        options,
        lambda: has_speech(samples, window.piece.samples, rate=rate),
        climb_unsure=window.depth == 0,
    )
    # The coolest reading that passes the model's checks, else the most confident one.
    outcome = next((a for a in attempts if not a.retry), max(attempts, key=lambda a: a.score))
    if outcome.cut_short and not options.segment_times:
        # Text only, and it ran out of tokens: read the window with timestamps, whose tail re-read
        # finds what the first reading could not hold.
        segments, more_in, more_out = await read_window(model, window, replace(options, segment_times=True), stt, calls)
        spent = sum(a.input_tokens for a in attempts), sum(a.output_tokens for a in attempts)
        return segments, spent[0] + more_in, spent[1] + more_out
    segments = list(outcome.segments)
    spent_in = sum(a.input_tokens for a in attempts)
    spent_out = sum(a.output_tokens for a in attempts)
    tail = window.start + max(1, int(outcome.consumed_s * rate))
    if (
        window.depth < MAX_REREADS
        and not outcome.no_speech
        and (window.end - tail) / rate > MIN_TAIL_S
        and has_speech(window.piece.samples[tail : window.end], samples, rate=rate)
    ):
        # The model stopped short of speech it has not written down: read that part again.
        rest = Window(window.piece, tail, window.end, window.depth + 1)
        more, more_in, more_out = await read_window(model, rest, options, stt, calls)
        segments += more
        spent_in += more_in
        spent_out += more_out
    return segments, spent_in, spent_out
