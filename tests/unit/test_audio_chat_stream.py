# ruff: noqa: E501  (one scripted answer per line)
"""Streaming an audio LLM's answer: deltas only ever append, and add up to the cleaned answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from transformers.models.audioflamingo3.processing_audioflamingo3 import AudioFlamingo3Processor

from models.audio_chat import AudioChatFamily
from models.audioflamingo3 import AudioFlamingo3Model
from models.interface import EngineCalls, GenerationRequest, GenerationResult, TextDelta
from models.qwen2_audio import Qwen2AudioModel
from models.qwen3_asr import Qwen3ASRModel


def scripted(family: type[AudioChatFamily], pieces: list[str]) -> AudioChatFamily:
    """A family whose tokens are the given text pieces (no tokenizer needed)."""

    class Scripted(family):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.supported_languages = dict(family.languages)

        def decode(self, token_ids: object) -> str:
            return "".join(pieces[i] for i in token_ids)  # type: ignore[attr-defined]

    return Scripted()


def calls_for(pieces: list[str]) -> EngineCalls:
    async def stream(request: GenerationRequest, tag: str) -> AsyncIterator[GenerationResult]:
        for n in range(1, len(pieces) + 1):
            yield GenerationResult(list(range(n)), "", finish_reason="stop" if n == len(pieces) else None)

    async def generate(request: GenerationRequest, tag: str) -> GenerationResult:
        return GenerationResult(list(range(len(pieces))), "", finish_reason="stop")

    return EngineCalls(generate=generate, stream=stream)


ANSWERS = [
    (AudioFlamingo3Model, ["The", " spoken", " content", " of", " the", " audio", " is", ' "', "Hello", " world", ',', " how", " are", " you", "?", '".']),
    (AudioFlamingo3Model, ["Hello", " there", ",", " friend", "."]),
    (AudioFlamingo3Model, ["The", " transcription", " of", " the", " audio", " is", " 'Yes", "'", "."]),
    (Qwen3ASRModel, ["language", " English", "<asr_text>", "Hello", " world", " again"]),
    (Qwen3ASRModel, ["Plain", " words", " only"]),
    (Qwen3ASRModel, ["language", " English", "<asr_text>", "start", *[" do"] * 30, " end", " now"]),
    (Qwen3ASRModel, ["language", " English", "<asr_text>", "one", *[" two three"] * 12, " four"]),
    (Qwen2AudioModel, [" Good", " morning", ",", " everyone", "."]),
]  # fmt: skip


@pytest.mark.parametrize(("family", "pieces"), ANSWERS)
def test_deltas_add_up_to_the_cleaned_answer(family: type[AudioChatFamily], pieces: list[str]) -> None:
    model = scripted(family, pieces)
    deltas: list[TextDelta] = []
    request = GenerationRequest(prompt={}, max_tokens=10)
    asyncio.run(model._stream(request, calls_for(pieces), deltas.append, logprobs=False))
    streamed = "".join(d.text for d in deltas)
    assert streamed.strip() == model.clean("".join(pieces))
    assert len(deltas) >= 2


@pytest.mark.parametrize(
    "answer", ['The spoken content of the audio is "Hi there".', "The content of the input audio is 'x'", "plain."]
)
def test_audioflamingo3_cleanup_equals_the_processor(answer: str) -> None:
    expected = AudioFlamingo3Processor._strip_assistant_prefix_and_quotes(None, answer)  # type: ignore[arg-type]
    assert AudioFlamingo3Model.clean(None, answer) == expected  # type: ignore[arg-type]
