"""API tier: the real app over ASGITransport, driven by the official SDK, with a scripted engine."""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import AsyncIterator, Callable

import httpx
import numpy as np
import pytest
import soundfile as sf
from openai import AsyncOpenAI

from app.audio.vad import LoudnessVad
from app.main import create_app
from app.ops.metrics import Metrics
from app.scheduling.pipeline import Transcriber
from app.state import Runtime
from config import Settings, load_settings
from models.interface import GenerationRequest, GenerationResult
from models.whisper import WhisperModel


class ScriptedEngine:
    """Answers like Whisper would, from the request alone: each window says how long it is.

    Satisfies the pipeline's Engine protocol; records every request it was given.
    """

    def __init__(self, model: WhisperModel, language: str = "en") -> None:
        self.model = model
        self.language = language
        self.requests: list[GenerationRequest] = []
        self.healthy = True
        # Seconds each generation takes, so tests can hold requests in flight.
        self.delay = 0.0
        self.running = 0
        # Logprob of every sampled token, by temperature (default -0.1: a confident reading).
        self.logprob_at: dict[float, float] = {}

    async def generate(self, request: GenerationRequest, request_id: str) -> GenerationResult:
        self.requests.append(request)
        self.running += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        vocab = self.model.vocab
        audio, rate = request.prompt["encoder_prompt"]["multi_modal_data"]["audio"]
        if request.max_tokens == 1:  # language detection
            step = {i: -8.0 for i in request.logprob_token_ids or []}
            step[vocab.languages[self.language]] = -0.05
            step[vocab.no_speech] = math.log(0.01)
            return GenerationResult(token_ids=[vocab.languages[self.language]], text="", step_logprobs=[step])
        # The sound's length: packed pieces end in a second of silence, which says nothing.
        seconds = len(np.trim_zeros(audio, "b")) / rate
        words = self.model.tokenizer.encode(f" Window of {round(seconds)} seconds.", add_special_tokens=False).ids
        end = vocab.timestamp_begin + min(1500, round(seconds / 0.02))
        tokens = [vocab.timestamp_begin, *words, end, vocab.eot]
        sot_row = {vocab.no_speech: math.log(0.01)}
        return GenerationResult(
            token_ids=tokens,
            text="",
            token_logprobs=[self.logprob_at.get(request.temperature, -0.1)] * len(tokens),
            prompt_logprobs=[None] * (len(request.prompt["decoder_prompt"]["prompt_token_ids"]) - 2) + [sot_row, {}],
            step_logprobs=[{vocab.no_speech: math.log(0.01)}] if request.logprob_token_ids else [],
            finish_reason="stop",
        )

    async def stream(self, request: GenerationRequest, request_id: str) -> AsyncIterator[GenerationResult]:
        # Whisper reads whole windows; a stream is its one final result.
        yield await self.generate(request, request_id)

    async def check_health(self) -> bool:
        return self.healthy

    def pending(self) -> int:
        return self.running

    def shutdown(self) -> None:
        self.healthy = False


def wav_bytes(seconds: float, rate: int = 16000, amplitude: float = 0.3, channels: int = 1) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    tone = (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


AppFactory = Callable[..., AsyncIterator[tuple[AsyncOpenAI, ScriptedEngine]]]


@pytest.fixture
def settings() -> Settings:
    return load_settings({}, max_upload_mb=4)


async def _serve(
    settings: Settings, model: WhisperModel, served_name: str
) -> AsyncIterator[tuple[AsyncOpenAI, ScriptedEngine, httpx.AsyncClient]]:
    engine = ScriptedEngine(model)

    async def runtime(s: Settings, metrics: Metrics) -> Runtime:
        # The scripted engine answers any sound; what counts as speech is the e2e tier's business.
        return Runtime(s, model, engine, Transcriber(model, engine, vad=LoudnessVad()), served_name)

    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            client = AsyncOpenAI(api_key="unused", base_url="http://test/v1", http_client=http, max_retries=0)
            yield client, engine, http


@pytest.fixture
def serve(
    whisper_base: WhisperModel,
) -> Callable[..., AsyncIterator[tuple[AsyncOpenAI, ScriptedEngine, httpx.AsyncClient]]]:
    """Serve the base model with settings overridden by keyword."""

    def start(**overrides: object) -> AsyncIterator[tuple[AsyncOpenAI, ScriptedEngine, httpx.AsyncClient]]:
        return _serve(load_settings({}, max_upload_mb=4, **overrides), whisper_base, "whisper-base")

    return start


@pytest.fixture
async def api(
    settings: Settings, whisper_base: WhisperModel
) -> AsyncIterator[tuple[AsyncOpenAI, ScriptedEngine, httpx.AsyncClient]]:
    async for served in _serve(settings, whisper_base, "whisper-base"):
        yield served


@pytest.fixture
async def english_only_api(
    settings: Settings, whisper_tiny_en: WhisperModel
) -> AsyncIterator[tuple[AsyncOpenAI, ScriptedEngine, httpx.AsyncClient]]:
    async for served in _serve(settings, whisper_tiny_en, "whisper-tiny.en"):
        yield served
