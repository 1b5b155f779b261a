"""The models one gateway serves: one entry each, with its own source, names, memory share and engine settings.

`SPEECH_GATEWAY_MODELS` (or `models` in the settings file) is a JSON list of objects whose keys are
the single-model settings' names (`model`, `served_model_name`, `model_aliases`, `dtype`, ...).
An entry inherits every engine setting it does not name from the top-level settings; names and
aliases are its own. Unset, the top-level settings describe the one model served.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config import bounded_json

Dtype = Literal["auto", "float32", "float16", "bfloat16"]
MAX_MODELS = 16
MAX_MODELS_CHARS = 64 * 1024  # a list of a few models is a few hundred characters

# vLLM's own parallelism arguments, passed to its engine as given (unset: vLLM's defaults).
PARALLEL_KEYS = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "data_parallel_size_local",
    "data_parallel_address",
    "data_parallel_rpc_port",
    "data_parallel_backend",
    "distributed_executor_backend",
)
# Settings of one model's engine that an entry of the list inherits from the top level.
ENGINE_KEYS = (
    "dtype",
    "max_model_len",
    "gpu_memory_utilization",
    "enforce_eager",
    "max_num_seqs",
    "model_impl",
    "visible_devices",
    *PARALLEL_KEYS,
)
NAME_KEYS = ("model", "served_model_name", "model_aliases")


class ModelSpec(BaseModel):
    """One served model: where its weights come from, the names clients use, its engine's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    served_model_name: str | None = None
    model_aliases: tuple[str, ...] = ()
    dtype: Dtype = "auto"
    max_model_len: int | None = Field(None, ge=1)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    enforce_eager: bool = False
    max_num_seqs: int | None = Field(None, ge=1)
    model_impl: Literal["auto", "vllm", "transformers"] = "auto"
    visible_devices: str | None = Field(None, pattern=r"^[0-9A-Za-z,:-]*$")
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    data_parallel_size_local: int | None = Field(None, ge=1)
    data_parallel_address: str | None = None
    data_parallel_rpc_port: int | None = Field(None, ge=1, le=65535)
    data_parallel_backend: Literal["mp", "ray"] | None = None
    distributed_executor_backend: Literal["mp", "ray", "uni", "external_launcher"] | None = None

    @field_validator("model_aliases", mode="before")
    @classmethod
    def _split_aliases(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    def names(self) -> tuple[str, ...]:
        """The names given in the settings (the served name may still come from the model)."""
        return tuple(n for n in (self.served_model_name, *self.model_aliases) if n)

    def parallel_args(self) -> dict[str, Any]:
        """vLLM's parallelism arguments that are set, by vLLM's own names."""
        return {key: getattr(self, key) for key in PARALLEL_KEYS if getattr(self, key) is not None}


def parse_entries(value: Any) -> list[dict[str, Any]]:
    """The raw entries of the models list (a JSON text from the environment, or a list from a file)."""
    if isinstance(value, str | bytes):
        value = bounded_json.loads(value, max_chars=MAX_MODELS_CHARS)
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise ValueError("`models` must be a JSON list of objects, one per model")
    if len(value) > MAX_MODELS:
        raise ValueError(f"`models` names {len(value)} models; at most {MAX_MODELS} are served at once")
    return [{key.lower(): item for key, item in entry.items()} for entry in value]


def inherit(entries: Iterable[Mapping[str, Any]], top: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each entry with the top-level engine settings it does not name itself."""
    inherited = {key: top[key] for key in ENGINE_KEYS if key in top}
    return [{**inherited, **entry} for entry in entries]


def check_unique_names(specs: Iterable[ModelSpec]) -> None:
    """Refuse a name (served or alias) given to two models: a request could not pick between them."""
    seen: set[str] = set()
    for spec in specs:
        for name in set(spec.names()):
            if name in seen:
                raise ValueError(f"the model name {name!r} is given to more than one model in `models`")
            seen.add(name)
