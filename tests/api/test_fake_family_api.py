"""The gateway serves a family it has never heard of: `app/` is model-agnostic.

A fake family (2 s pieces, answers word by word, billed in tokens) and a fake engine go through
the real app, driven by the official SDK over ASGITransport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx
import pytest
from openai import AsyncOpenAI

from app.main import create_app
from app.scheduling.pipeline import Transcriber
from app.state import Runtime
from config import load_settings
from models.interface import (
    DecodeOptions,
    Emit,
    EngineCalls,
    GenerationRequest,
    GenerationResult,
    ModelInputError,
    Piece,
    Reading,
    Segment,
    SpeechToTextConfig,
    Task,
    TextDelta,
    TranscriptionModel,
    UsageKind,
)
from tests.api.conftest import wav_bytes


class FakeFamily:
    """Reads a piece as 'piece <i> lasts <n> seconds', one word per engine token."""

    supported_languages: Mapping[str, str] = {"en": "english"}
    supports_transcription_only: ClassVar[bool] = False
    usage_kind: ClassVar[UsageKind] = "tokens"
    supports_word_timestamps: ClassVar[bool] = False

    def __init__(self) -> None:
        self.prepared = 0

    @classmethod
    def from_pretrained(cls, model_dir: Path, dtype: str = "auto") -> Self:
        return cls()

    @property
    def supports_translation(self) -> bool:
        return False

    @property
    def supports_language_detection(self) -> bool:
        return False

    def engine_args(self) -> Mapping[str, Any]:
        return {}

    def get_speech_to_text_config(self, task: Task) -> SpeechToTextConfig:
        return SpeechToTextConfig(max_audio_clip_s=2.0, overlap_chunk_second=0.5)

    def validate_language(self, language: str | None) -> str | None:
        return language

    def validate_options(self, options: DecodeOptions) -> None:
        if options.word_timestamps:
            raise ModelInputError("no words here", param="timestamp_granularities")

    async def prepare(self, pieces: Sequence[Piece], options: DecodeOptions, calls: EngineCalls) -> DecodeOptions:
        self.prepared += 1
        return options

    async def warm_up(self, calls: EngineCalls) -> None:
        return None

    async def read(self, piece: Piece, options: DecodeOptions, calls: EngineCalls, emit: Emit | None = None) -> Reading:
        words = f"piece {piece.index} lasts {round(piece.duration)} seconds".split()
        request = GenerationRequest(prompt={"words": words, "piece": piece.index}, max_tokens=len(words))
        if emit is None:
            result = await calls.generate(request, "read")
        else:
            async for result in calls.stream(request, "read"):
                emit(TextDelta(" " + words[len(result.token_ids) - 1]))
        text = " " + " ".join(words[: len(result.token_ids)])
        segment = Segment(piece.offset_s, piece.offset_s + piece.duration, text, list(result.token_ids))
        return Reading([segment], input_tokens=10, audio_tokens=7, output_tokens=len(result.token_ids))


class WordEngine:
    """Gives back one token per word; the first piece is the slowest, so order must be restored."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.ids: list[str] = []

    async def _step(self, request: GenerationRequest) -> None:
        await asyncio.sleep(0.02 if request.prompt["piece"] == 0 else 0.001)

    async def generate(self, request: GenerationRequest, request_id: str) -> GenerationResult:
        results = [result async for result in self.stream(request, request_id)]
        return results[-1]

    async def stream(self, request: GenerationRequest, request_id: str) -> AsyncIterator[GenerationResult]:
        self.ids.append(request_id)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            words = request.prompt["words"]
            for n in range(1, len(words) + 1):
                await self._step(request)
                yield GenerationResult(list(range(n)), "", finish_reason="stop" if n == len(words) else None)
        finally:
            self.running -= 1

    async def check_health(self) -> bool:
        return True

    def pending(self) -> int:
        return self.running

    def shutdown(self) -> None:
        pass


@pytest.fixture
async def fake() -> AsyncIterator[tuple[AsyncOpenAI, FakeFamily, WordEngine]]:
    family, engine = FakeFamily(), WordEngine()
    model: TranscriptionModel = family  # mypy checks the fake against the protocol here

    async def runtime(settings: Any, metrics: Any) -> Runtime:
        return Runtime(settings, model, engine, Transcriber(model, engine), "fake-1")

    app = create_app(load_settings({}), runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield AsyncOpenAI(api_key="x", base_url="http://test/v1", http_client=http, max_retries=0), family, engine


AUDIO = wav_bytes(5.0)


async def test_pieces_read_concurrently_and_merged_in_order(fake: tuple[AsyncOpenAI, FakeFamily, WordEngine]) -> None:
    client, family, engine = fake
    verbose = await client.audio.transcriptions.create(
        model="fake-1", file=("a.wav", AUDIO), response_format="verbose_json", timestamp_granularities=["segment"]
    )
    assert [s.text.strip() for s in verbose.segments or []] == [
        "piece 0 lasts 2 seconds",
        "piece 1 lasts 2 seconds",
        "piece 2 lasts 1 seconds",
    ]
    starts = [s.start for s in verbose.segments or []]
    assert starts[0] == 0.0 and 1.4 < starts[1] < 2.1 and starts[2] > starts[1]
    assert engine.most == 3 and family.prepared == 1
    assert len(set(engine.ids)) == len(engine.ids)


async def test_token_usage_sums_the_pieces(fake: tuple[AsyncOpenAI, FakeFamily, WordEngine]) -> None:
    client, _, _ = fake
    result = await client.audio.transcriptions.create(model="fake-1", file=("a.wav", AUDIO))
    assert result.text.startswith("piece 0 lasts")
    assert result.usage is not None and result.usage.type == "tokens"
    assert result.usage.model_dump() == {
        "type": "tokens",
        "input_tokens": 30,
        "output_tokens": 15,
        "total_tokens": 45,
        "input_token_details": {"audio_tokens": 21, "text_tokens": 9},
    }


async def test_stream_deltas_arrive_word_by_word_in_piece_order(
    fake: tuple[AsyncOpenAI, FakeFamily, WordEngine],
) -> None:
    client, _, _ = fake
    stream = await client.audio.transcriptions.create(model="fake-1", file=("a.wav", AUDIO), stream=True)
    events = [event async for event in stream]
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) == 15
    assert "".join(deltas) == "piece 0 lasts 2 seconds piece 1 lasts 2 seconds piece 2 lasts 1 seconds"
    assert events[-1].type == "transcript.text.done" and events[-1].text == "".join(deltas)


async def test_what_the_family_refuses_is_its_400(fake: tuple[AsyncOpenAI, FakeFamily, WordEngine]) -> None:
    client, _, engine = fake
    with pytest.raises(Exception) as caught:
        await client.audio.transcriptions.create(
            model="fake-1", file=("a.wav", AUDIO), response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert getattr(caught.value, "status_code", None) == 400
    assert getattr(caught.value, "body", {})["param"] == "timestamp_granularities"
    assert engine.ids == []
