"""`create_app(settings)`: the FastAPI application, whose lifespan starts and stops the engine."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from app.http.auth import api_key_guard
from app.http.errors import install_error_handlers
from app.http.middleware import RequestContext
from app.http.routes import audio, health, models, page
from app.http.routes.realtime import build_router as realtime_router
from app.ops.metrics import Metrics
from app.ops.tracing import Tracing
from app.scheduling.admission import Admission
from app.scheduling.diarization import DiarizerLoader, SpeakerModel
from app.scheduling.pipeline import Transcriber
from app.startup import load_speaker_model, start_models
from app.state import Gateway, Runtime, Served
from config import ModelSpec, Settings

log = logging.getLogger("speech_gateway")

WARM_UP_TIMEOUT_S = 120

# Builds what is served once the app starts; `metrics` is the app's, for what the runtime reports.
# A factory may return one Runtime (tests with one fake engine) or every model's (`Served`).
RuntimeFactory = Callable[[Settings, Metrics], Awaitable[Runtime | Served]]


async def build_runtime(settings: Settings, metrics: Metrics) -> Served:
    """Every model of the settings, each with its own engine (see app.startup)."""
    served = await start_models(settings, metrics, start_model)
    limit_threads(settings.gateway_threads)  # after every engine's processes started: they keep their own
    return served


async def start_model(settings: Settings, spec: ModelSpec, metrics: Metrics) -> Runtime:
    """Provision one model, load its registry entry and start its vLLM engine (off the event loop)."""
    from app.scheduling.engine import VllmEngine  # vLLM is imported only when a real engine is wanted
    from models.registry import load_model
    from models.source import resolve

    source = await asyncio.to_thread(resolve, spec.model, settings.cache_dir)
    model = await asyncio.to_thread(load_model, source.directory, spec.dtype)
    engine = await asyncio.to_thread(VllmEngine.start, settings, source.directory, model.engine_args(), spec)
    runtime = Runtime(
        settings=settings,
        model=model,
        engine=engine,
        transcriber=Transcriber(
            model,
            engine,
            settings.decode_workers,
            settings.windows_per_request,
            window_sharing_wait_s=settings.window_sharing_wait_ms / 1000,
            on_shared_window=metrics.observe_sharing,
        ),
        served_name=spec.served_model_name or source.default_name,
        alias_names=spec.model_aliases,
    )
    await warm_up(runtime.transcriber)
    return runtime


def limit_threads(threads: int) -> None:
    """The gateway's own torch work (speech detection, word alignment) on `threads` threads, so that it
    does not take the cores the engine's threads run on."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


async def warm_up(transcriber: Transcriber) -> None:
    """One small request through everything before the server takes clients; a failure only
    leaves the first client waiting longer."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(WARM_UP_TIMEOUT_S):
            await transcriber.warm_up()
    except Exception:
        log.warning("the warm-up failed; the first request will be slower", exc_info=True)
    else:
        log.info("warmed up in %.1f s", time.perf_counter() - started)


def create_app(
    settings: Settings,
    runtime_factory: RuntimeFactory = build_runtime,
    diarizer_loader: DiarizerLoader = load_speaker_model,
) -> FastAPI:
    """The application; `runtime_factory` and `diarizer_loader` let tests supply a fake engine and diarizer."""
    gateway = Gateway(
        settings=settings,
        metrics=Metrics(),
        admission=Admission(settings.max_concurrent_requests, settings.max_queued_requests, settings.audio_budget_s),
        tracing=Tracing.from_settings(settings),
        speakers=None if settings.diarizer == "off" else SpeakerModel(settings.diarizer, diarizer_loader),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = await runtime_factory(settings, gateway.metrics)
        served = built if isinstance(built, Served) else Served([built])
        gateway.served = served
        gateway.metrics.watch(
            in_flight=lambda: gateway.admission.active,
            waiting=lambda: gateway.admission.waiting,
            engine=served.pending,
        )
        budget = gateway.admission.audio
        gateway.metrics.watch_audio(in_flight=lambda: budget.in_flight_s, waiting=lambda: budget.waiting_s)
        for runtime in served.runtimes:
            log.info("serving %s (aliases: %s)", runtime.served_name, ", ".join(runtime.aliases) or "none")
        try:
            yield
        finally:
            log.info("stopping the engine%s", "s" if len(served.runtimes) > 1 else "")
            gateway.served = None
            served.close()
            if gateway.speakers is not None:
                gateway.speakers.close()
            if gateway.tracing is not None:
                gateway.tracing.shutdown()  # sends what is still batched

    app = FastAPI(title="speech-gateway", version="0.1.0", lifespan=lifespan)
    app.state.gateway = gateway
    install_error_handlers(app)
    guarded = [Depends(api_key_guard(settings.api_key))]
    app.include_router(audio.router, dependencies=guarded)
    app.include_router(models.router, dependencies=guarded)
    app.include_router(realtime_router(settings))  # authenticates in the route: WebSockets have no 401
    app.include_router(health.router)
    app.include_router(page.router)
    app.add_middleware(RequestContext, metrics=gateway.metrics, tracing=gateway.tracing)
    return app
