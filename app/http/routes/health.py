"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from app.state import Gateway, get_gateway

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(gateway: Annotated[Gateway, Depends(get_gateway)]) -> JSONResponse:
    """Every started engine is up and can take requests; `models` tells each model's state.

    A model that failed to start is listed with why, but does not make the gateway unready: it will
    not recover by waiting (`require_all_models` refuses to start instead).
    """
    served = gateway.served
    if served is None:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    healthy = await asyncio.gather(*(runtime.engine.check_health() for runtime in served.runtimes))
    models: list[dict[str, Any]] = [
        {"id": runtime.served_name, "status": "ready" if ok else "unavailable"}
        for runtime, ok in zip(served.runtimes, healthy, strict=True)
    ]
    models += [{"id": failure.name, "status": "failed", "reason": failure.reason} for failure in served.failures]
    body = {"status": "ready" if all(healthy) else "unavailable", "model": served.default.served_name, "models": models}
    return JSONResponse(body, status_code=200 if all(healthy) else 503)


@router.get("/metrics")
async def metrics(gateway: Annotated[Gateway, Depends(get_gateway)]) -> Response:
    """Prometheus text format."""
    return Response(gateway.metrics.render(), media_type=gateway.metrics.content_type)
