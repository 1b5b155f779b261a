"""The typed state of one app: what `create_app` builds and what the lifespan adds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request

from app.http.errors import APIError, model_not_found
from app.ops.metrics import Metrics
from app.ops.tracing import Tracing
from app.scheduling.admission import Admission
from app.scheduling.diarization import SpeakerModel
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
    # Other names of this model; None: the settings' `model_aliases` (the one-model case).
    alias_names: tuple[str, ...] | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        names = self.settings.model_aliases if self.alias_names is None else self.alias_names
        return tuple(a for a in names if a != self.served_name)

    def serves(self, name: str) -> bool:
        return name == self.served_name or name in self.aliases

    def close(self) -> None:
        self.transcriber.close()
        self.engine.shutdown()


@dataclass(frozen=True)
class ModelFailure:
    """A model that did not start: its name and why, in words fit for clients (no paths, no internals)."""

    name: str
    reason: str


@dataclass
class Served:
    """The models this gateway serves, in the settings' order (the first is the default), and those that failed."""

    runtimes: list[Runtime]
    failures: list[ModelFailure] = field(default_factory=list)

    @property
    def default(self) -> Runtime:
        return self.runtimes[0]

    def find(self, name: str) -> Runtime | None:
        """The model a request names, by its served name or an alias."""
        return next((runtime for runtime in self.runtimes if runtime.serves(name)), None)

    def pick(self, name: str) -> Runtime:
        """`find`, or the 404 OpenAI answers for a model it does not have (param `model`)."""
        runtime = self.find(name)
        if runtime is None:
            raise model_not_found(name)
        return runtime

    def pending(self) -> int:
        return sum(runtime.engine.pending() for runtime in self.runtimes)

    def close(self) -> None:
        for runtime in self.runtimes:
            runtime.close()


@dataclass
class Gateway:
    """Everything a route may need; `served` is None until the engines are up."""

    settings: Settings
    metrics: Metrics
    admission: Admission
    served: Served | None = None
    tracing: Tracing | None = None  # only when an OTLP endpoint is configured
    # The speaker model (`diarized_json`), loaded on first use; None when the settings turn it off.
    speakers: SpeakerModel | None = None

    @property
    def runtime(self) -> Runtime | None:
        """The default model's runtime (the first served)."""
        return self.served.default if self.served is not None else None


def gateway_of(request: Request) -> Gateway:
    gateway = getattr(request.app.state, "gateway", None)
    assert isinstance(gateway, Gateway), "create_app did not attach the gateway"
    return gateway


# The dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread pool, and
# that hop cost a request 60-137 ms under load (the `route` stage) for two attribute reads.
async def get_gateway(request: Request) -> Gateway:
    return gateway_of(request)


async def get_served(request: Request) -> Served:
    return served_of(request)


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


def served_of(request: Request) -> Served:
    served = gateway_of(request).served
    if served is None:
        raise APIError(
            503, "the model is still loading; retry shortly", type="server_error", headers={"Retry-After": "5"}
        )
    return served


def runtime_of(request: Request) -> Runtime:
    """The default model's runtime."""
    return served_of(request).default
