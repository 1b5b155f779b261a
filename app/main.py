"""`create_app(settings)`: the FastAPI application, whose lifespan starts and stops the engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.errors import install_error_handlers
from app.pipeline import Transcriber
from app.routes import audio, health, models
from app.state import Runtime
from config import Settings

log = logging.getLogger("speech_gateway")

RuntimeFactory = Callable[[Settings], Awaitable[Runtime]]


async def build_runtime(settings: Settings) -> Runtime:
    """Provision the model, load its registry entry and start vLLM (off the event loop)."""
    from app.engine import VllmEngine  # vLLM is imported only when a real engine is wanted
    from models.registry import load_model
    from models.source import resolve

    source = await asyncio.to_thread(resolve, settings.model, settings.cache_dir)
    model = await asyncio.to_thread(load_model, source.directory)
    engine = await asyncio.to_thread(VllmEngine.start, settings, source.directory)
    return Runtime(
        settings=settings,
        model=model,
        engine=engine,
        transcriber=Transcriber(model, engine, settings.decode_workers),
        served_name=settings.served_model_name or source.default_name,
    )


def create_app(settings: Settings, runtime_factory: RuntimeFactory = build_runtime) -> FastAPI:
    """The application; `runtime_factory` lets tests supply a runtime with a fake engine."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await runtime_factory(settings)
        app.state.runtime = runtime
        log.info("serving %s (aliases: %s)", runtime.served_name, ", ".join(runtime.aliases) or "none")
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(title="speech-gateway", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(audio.router)
    app.include_router(models.router)
    app.include_router(health.router)
    return app
