"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app.state import Runtime, get_runtime

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(runtime: Annotated[Runtime, Depends(get_runtime)]) -> JSONResponse:
    """The engine is up and can take requests."""
    if await runtime.engine.check_health():
        return JSONResponse({"status": "ready", "model": runtime.served_name})
    return JSONResponse({"status": "unavailable", "model": runtime.served_name}, status_code=503)
