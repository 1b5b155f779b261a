"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

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
    """The engine is up and can take requests."""
    runtime = gateway.runtime
    if runtime is not None and await runtime.engine.check_health():
        return JSONResponse({"status": "ready", "model": runtime.served_name})
    return JSONResponse({"status": "unavailable"}, status_code=503)


@router.get("/metrics")
async def metrics(gateway: Annotated[Gateway, Depends(get_gateway)]) -> Response:
    """Prometheus text format."""
    return Response(gateway.metrics.render(), media_type=gateway.metrics.content_type)
