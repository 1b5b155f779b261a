"""Environment variables vLLM reads in the processes it starts: which ones the settings ask for, and
setting them while one engine starts (its processes inherit them; the next engine gets its own)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from config.models import ModelSpec

if TYPE_CHECKING:
    from config.settings import Settings


def engine_environment(settings: Settings, spec: ModelSpec | None = None) -> dict[str, str]:
    """What one model's engine processes must see, as the settings (and the model's entry) ask."""
    spec = spec or settings.served_models()[0]
    env = {}
    if spec.visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = spec.visible_devices
    if settings.cpu_reserved_cores is not None:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(settings.cpu_reserved_cores)
    if spec.distributed_executor_backend == "uni":
        # vLLM's CPU platform turns `uni` back into `mp` (a worker process of its own) unless this is off.
        # The async engine this gateway runs keeps its engine-core process either way.
        env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    return env


@contextmanager
def applied(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in this process's environment meanwhile, the previous values back afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
