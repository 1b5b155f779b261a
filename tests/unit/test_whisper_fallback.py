"""Whisper's fallback policy with scripted engine results: what is read again, how, and how often."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from models.interface import DecodeOptions, EngineCalls, GenerationRequest, GenerationResult, Piece, Reading
from models.whisper import WhisperModel
from tests.unit.test_whisper_parse import result, stamp, words

RATE = 16_000
PROMPT = "quick brown fox " * 625
SPOKEN = " The quick brown fox jumps over the lazy dog."
LADDER = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


@dataclass
class ScriptedEngine:
    """Answers each request by (temperature, whether the prompt was sent); counts every pass."""

    answer: Callable[[float, bool], GenerationResult]
    asked: list[tuple[float, bool]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def calls(self, model: WhisperModel) -> EngineCalls:
        async def generate(request: GenerationRequest, tag: str) -> GenerationResult:
            decoder = request.prompt["decoder_prompt"]["prompt_token_ids"]
            prompted = decoder[0] == model.vocab.sot_prev
            self.asked.append((request.temperature, prompted))
            self.tags.append(tag)
            return self.answer(request.temperature, prompted)

        async def stream(request: GenerationRequest, tag: str) -> AsyncIterator[GenerationResult]:
            yield await generate(request, tag)

        return EngineCalls(generate=generate, stream=stream)


def speech_piece(seconds: float = 3.0) -> Piece:
    """Loud enough throughout for the energy check; what it says is up to the script."""
    samples = (np.random.default_rng(1).standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)
    return Piece(index=0, samples=samples, sample_rate=RATE, offset_s=0.0, final=True)


def read(model: WhisperModel, engine: ScriptedEngine, prompt: str | None, piece: Piece | None = None) -> Reading:
    options = DecodeOptions(language="en", prompt=prompt)
    return asyncio.run(model.read(piece or speech_piece(), options, engine.calls(model)))


def text_of(reading: Reading) -> str:
    return "".join(s.text for s in reading.segments)


def spoken(m: WhisperModel) -> GenerationResult:
    return result(m, [stamp(m, 0.0), *words(m, SPOKEN), stamp(m, 2.5), m.vocab.eot])


def nothing(m: WhisperModel) -> GenerationResult:
    """The model ends at once; P(no speech) is high but the reading is sure of itself: not silence."""
    return result(m, [stamp(m, 0.0), m.vocab.eot], logprob=-0.1, no_speech=0.7)


def looping(m: WhisperModel) -> GenerationResult:
    return result(m, [stamp(m, 0.0), *words(m, " fox fox fox fox" * 20), stamp(m, 1.0), m.vocab.eot])


@pytest.mark.parametrize("prompt", [None, "Foxes and dogs.", PROMPT])
def test_ordinary_speech_costs_one_engine_pass(whisper_base: WhisperModel, prompt: str | None) -> None:
    m = whisper_base
    engine = ScriptedEngine(lambda t, prompted: spoken(m))
    reading = read(m, engine, prompt)
    assert engine.asked == [(0.0, prompt is not None)]
    assert text_of(reading) == SPOKEN


def test_an_empty_reading_with_a_prompt_is_read_again_without_it(whisper_base: WhisperModel) -> None:
    m = whisper_base
    engine = ScriptedEngine(lambda t, prompted: nothing(m) if prompted else spoken(m))
    reading = read(m, engine, PROMPT)
    # As OpenAI's reference drops the prompt on fallback: the same temperature first, without it.
    assert engine.asked == [(0.0, True), (0.0, False)]
    assert text_of(reading) == SPOKEN and reading.segments[0].temperature == 0.0
    assert len(set(engine.tags)) == len(engine.tags), "engine request ids must differ"


def test_a_loop_with_a_prompt_is_read_again_without_it(whisper_base: WhisperModel) -> None:
    m = whisper_base
    engine = ScriptedEngine(lambda t, prompted: looping(m) if prompted else spoken(m))
    assert text_of(read(m, engine, PROMPT)) == SPOKEN
    assert engine.asked == [(0.0, True), (0.0, False)]


def test_an_empty_reading_without_a_prompt_climbs_the_temperature_ladder(whisper_base: WhisperModel) -> None:
    m = whisper_base
    engine = ScriptedEngine(lambda t, prompted: nothing(m) if t == 0 else spoken(m))
    reading = read(m, engine, None)
    assert engine.asked == [(0.0, False), (0.2, False)]
    assert text_of(reading) == SPOKEN and reading.segments[0].temperature == 0.2


def test_without_the_prompt_the_hotter_readings_stay_without_it(whisper_base: WhisperModel) -> None:
    m = whisper_base
    engine = ScriptedEngine(lambda t, prompted: spoken(m) if t >= 0.4 else looping(m))
    reading = read(m, engine, "Foxes and dogs.")
    assert engine.asked[:3] == [(0.0, True), (0.0, False), (0.2, False)]
    assert not any(prompted for _, prompted in engine.asked[1:])
    assert text_of(reading) == SPOKEN and reading.segments[0].temperature == 0.4


def test_empty_is_final_only_after_a_reading_without_the_prompt_and_a_hotter_one(whisper_base: WhisperModel) -> None:
    m = whisper_base
    engine = ScriptedEngine(lambda t, prompted: nothing(m))
    reading = read(m, engine, PROMPT)
    assert reading.segments == []
    # Not the whole ladder: empty cool and hot means the model hears no words there.
    assert engine.asked == [(0.0, True), (0.0, False), (LADDER[1], False)]


def test_a_silent_window_ends_empty_at_once(whisper_base: WhisperModel) -> None:
    # OpenAI's no-speech rule: P(no speech) > 0.6 and an unsure reading (avg logprob < -1).
    m = whisper_base
    silent = result(m, [stamp(m, 0.0), *words(m, " you"), stamp(m, 1.0), m.vocab.eot], logprob=-2.5, no_speech=0.9)
    engine = ScriptedEngine(lambda t, prompted: silent)
    assert read(m, engine, PROMPT).segments == []
    assert engine.asked == [(0.0, True)]


def test_an_empty_reading_of_a_window_without_speech_ends_at_once(whisper_base: WhisperModel) -> None:
    m = whisper_base
    click = np.zeros(RATE, np.float32)
    click[RATE // 2 : RATE // 2 + 800] = 0.1  # 50 ms: not silence, too short to hold a word
    piece = Piece(index=0, samples=click, sample_rate=RATE, offset_s=0.0, final=True)
    engine = ScriptedEngine(lambda t, prompted: nothing(m))
    assert read(m, engine, PROMPT, piece).segments == []
    assert engine.asked == [(0.0, True)]


def test_an_unsure_reading_keeps_the_prompt_up_the_ladder(whisper_base: WhisperModel) -> None:
    # Low confidence alone is the reference's fallback as before: the prompt stays up to T=0.5.
    m = whisper_base
    unsure = result(m, [stamp(m, 0.0), *words(m, SPOKEN), stamp(m, 2.5), m.vocab.eot], logprob=-1.5)
    engine = ScriptedEngine(lambda t, prompted: unsure if t == 0 else spoken(m))
    assert text_of(read(m, engine, "Foxes and dogs.")) == SPOKEN
    assert engine.asked == [(0.0, True), (0.2, True)]


def first_then(m: WhisperModel, tail: GenerationResult) -> Callable[[float, bool], GenerationResult]:
    """The first reading writes the first second and stops (its tail is read again); then `tail`."""
    calls = iter(range(100))

    def answer(temperature: float, prompted: bool) -> GenerationResult:
        if next(calls) == 0:
            return result(m, [stamp(m, 0.0), *words(m, " The quick"), stamp(m, 1.0), m.vocab.eot])
        return tail

    return answer


def test_an_unsure_tail_is_kept_without_hotter_readings(whisper_base: WhisperModel) -> None:
    m = whisper_base
    unsure = result(m, [stamp(m, 0.0), *words(m, " brown fox."), stamp(m, 1.5), m.vocab.eot], logprob=-1.5)
    engine = ScriptedEngine(first_then(m, unsure))
    assert text_of(read(m, engine, None)) == " The quick brown fox."
    assert engine.asked == [(0.0, False), (0.0, False)]


def test_an_empty_tail_still_climbs_the_ladder(whisper_base: WhisperModel) -> None:
    m = whisper_base
    engine = ScriptedEngine(first_then(m, nothing(m)))
    read(m, engine, None)
    assert [t for t, _ in engine.asked] == [0.0, 0.0, 0.2]
