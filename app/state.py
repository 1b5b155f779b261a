"""The typed state of one app: what `create_app` builds and what the lifespan adds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request

from app.http.errors import APIError
from app.ops.metrics import Metrics
from app.ops.tracing import Tracing
from app.scheduling.admission import Admission
from app.scheduling.pipeline import Engine, Transcriber
from config import Settings
from models.interface import TranscriptionModel


@dataclass
class Runtime:
    """The model and engine, built by the lifespan."""

    settings: Settings
    model: TranscriptionModel
    engine: Engine
    transcriber: Transcriber
    served_name: str
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(a for a in self.settings.model_aliases if a != self.served_name)

    def serves(self, name: str) -> bool:
        return name == self.served_name or name in self.aliases

    def close(self) -> None:
        self.transcriber.close()
        self.engine.shutdown()


@dataclass
class Gateway:
    """Everything a route may need; `runtime` is None until the engine is up."""

    settings: Settings
    metrics: Metrics
    admission: Admission
    runtime: Runtime | None = None
    tracing: Tracing | None = None  # only when an OTLP endpoint is configured


def gateway_of(request: Request) -> Gateway:
    gateway = getattr(request.app.state, "gateway", None)
    assert isinstance(gateway, Gateway), "create_app did not attach the gateway"
    return gateway


# The dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread pool, and
# that hop cost a request 60-137 ms under load (the `route` stage) for two attribute reads.
async def get_gateway(request: Request) -> Gateway:
    return gateway_of(request)


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


def runtime_of(request: Request) -> Runtime:
    runtime = gateway_of(request).runtime
    if runtime is None:
        raise APIError(
            503, "the model is still loading; retry shortly", type="server_error", headers={"Retry-After": "5"}
        )
    return runtime
