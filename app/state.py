"""The one typed object the lifespan builds and every route reads: settings, model, engine."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request

from app.pipeline import Engine, Transcriber
from config import Settings
from models.interface import TranscriptionModel


@dataclass
class Runtime:
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


def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    assert isinstance(runtime, Runtime), "the lifespan did not build the runtime"
    return runtime
