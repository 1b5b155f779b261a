"""Starting every served model, one after another: one that fails is reported, the others serve.

A failure is logged with its details and kept as a `ModelFailure` whose reason is fit for clients
(`/ready` shows it): no paths, no internals. The server refuses to start when nothing would serve,
or when the operator asked for all or nothing (`require_all_models`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import PurePath

from app.ops.metrics import Metrics
from app.state import ModelFailure, Runtime, Served
from config import ModelSpec, Settings
from models.speakers.interface import Diarizer
from models.speakers.registry import load_diarizer

log = logging.getLogger("speech_gateway")

ENGINE_FAILED = "its engine failed to start (the server log has the details)"

ModelStarter = Callable[[Settings, ModelSpec, Metrics], Awaitable[Runtime]]


class StartupError(RuntimeError):
    """The server cannot serve as the settings ask; the message says which models and why."""


def display_name(spec: ModelSpec) -> str:
    """The name a model is reported by before it runs: its served name, else its source's last part."""
    return spec.served_model_name or PurePath(spec.model).name or spec.model


def failure_reason(error: BaseException) -> str:
    """Why a model did not start, in words that carry no path and no internals (the log has those)."""
    from models.registry import UnsupportedModelError  # imports the families (torch): only on a failure
    from models.source import ModelProvisionError

    if isinstance(error, ModelProvisionError):
        return "its weights could not be found: not an embedded model, a checkpoint directory or a reachable hub id"
    if isinstance(error, UnsupportedModelError):
        return "its checkpoint is not one of the model families this server knows"
    # vLLM's engine reports its cause (memory, an unsupported layout ...) in its own process's log.
    return ENGINE_FAILED


def _check_names(runtimes: list[Runtime]) -> None:
    """Names are checked in the settings where given; a name taken from the model is known only now."""
    seen: set[str] = set()
    for runtime in runtimes:
        for name in {runtime.served_name, *runtime.aliases}:
            if name in seen:
                raise StartupError(f"two models answer to the name {name!r}: give each a `served_model_name`")
            seen.add(name)


async def start_models(settings: Settings, metrics: Metrics, start: ModelStarter) -> Served:
    """Every model of the settings, started in order; engines start one at a time (memory is profiled
    while no other engine is loading)."""
    runtimes: list[Runtime] = []
    failures: list[ModelFailure] = []
    specs = settings.served_models()
    try:
        for spec in specs:
            name = display_name(spec)
            try:
                runtimes.append(await start(settings, spec, metrics))
            except Exception as error:
                failure = ModelFailure(name, failure_reason(error))
                failures.append(failure)
                if failure.reason == ENGINE_FAILED:  # not one we can name: its traceback helps
                    log.error("model %s did not start: %s", name, failure.reason, exc_info=error)
                else:  # a setting to fix; the operator's log may name the path
                    log.error("model %s did not start: %s (%s)", name, failure.reason, error)
        _check_names(runtimes)
        if failures and (settings.require_all_models or not runtimes):
            why = "; ".join(f"{f.name}: {f.reason}" for f in failures)
            rule = "every model must start (require_all_models)" if runtimes else "no model started"
            raise StartupError(f"{rule}: {why}")
    except BaseException:
        for runtime in runtimes:
            runtime.close()
        raise
    if failures:
        log.warning("serving %d of %d models", len(runtimes), len(specs))
    return Served(runtimes, failures)


def load_speaker_model(name: str) -> Diarizer:
    """The diarizer named `name`, from the speaker models' registry (`models.speakers`)."""
    return load_diarizer(name)
