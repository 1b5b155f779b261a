"""Every knob of speech-gateway in one settings class, read once from the environment and a file."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from config import bounded_json
from config.models import ModelSpec, check_unique_names, inherit, parse_entries

ENV_PREFIX = "SPEECH_GATEWAY_"
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG_FILE"
OTEL_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
DEFAULT_MODEL = "whisper-base"
MAX_CONFIG_FILE_CHARS = 1024 * 1024  # a settings file is a few dozen lines

Dtype = Literal["auto", "float32", "float16", "bfloat16"]

# Resident bytes one second of audio costs a request in flight, end to end (decode, resample,
# speech detection, packing, engine inputs), on the default model: measured 106 kB/s on 6,900 s
# of noise (the 16 kHz samples and what is derived from them); continuous speech adds its packed
# copy (up to 64 kB/s). See the README's limits. The default audio budget gives audio in flight
# this share of the machine's memory.
BYTES_PER_AUDIO_SECOND = 150_000
AUDIO_MEMORY_SHARE = 0.125


def default_audio_budget_s() -> float:
    """Seconds of audio in flight that fit in `AUDIO_MEMORY_SHARE` of this machine's memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 * 1024**3  # a machine that will not say: assume a small one
    return max(600.0, round(memory * AUDIO_MEMORY_SHARE / BYTES_PER_AUDIO_SECOND, -2))


class Settings(BaseSettings):
    """Settings, each readable from `SPEECH_GATEWAY_<NAME>` (see the README's table)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # What is served.
    model: str = Field(
        DEFAULT_MODEL,
        description="`whisper-base` (the embedded default), a Hugging Face checkpoint directory, "
        "or a hub id where a hub is reachable.",
    )
    served_model_name: str | None = Field(None, description="Name clients use; defaults from the model.")
    model_aliases: list[str] = Field(
        default_factory=lambda: ["whisper-1"],
        description="Other names accepted for the served model (OpenAI's `whisper-1` by default).",
    )
    models: tuple[ModelSpec, ...] = Field(
        (),
        description="Several models in one gateway: a JSON list of objects, each with `model` and the other "
        "settings of this section and the engine's by the same names (see the README); unset: the one model "
        "the settings above describe.",
    )
    require_all_models: bool = Field(
        False, description="Refuse to start unless every model of `models` starts (default: serve those that do)."
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "speech-gateway",
        description="Where the embedded model is converted to and reused from.",
    )

    # Where it listens.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = Field("json", description="`json`: one object per line.")
    otel_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector base URL for request spans (also read from the standard "
        "`OTEL_EXPORTER_OTLP_ENDPOINT`); unset: no tracing at all.",
    )
    otel_service_name: str = Field("speech-gateway", description="`service.name` of exported spans.")

    # Who may call it, and how much at once.
    api_key: list[str] = Field(
        default_factory=list,
        repr=False,
        description="Keys accepted as `Authorization: Bearer <key>` on /v1 routes, comma-separated; "
        "empty: no authentication.",
    )
    max_concurrent_requests: int = Field(
        64,
        ge=1,
        description="Audio requests processed at once. Each holds its decoded audio (about 230 MB an hour); "
        "short clips of concurrent requests share engine windows, so more at once is faster.",
    )
    max_queued_requests: int = Field(64, ge=0, description="Audio requests waiting beyond those; more: 429.")
    request_timeout_s: float = Field(600, gt=0, description="Longest a request may take before a 504.")
    shutdown_grace_s: float = Field(30, ge=0, description="On SIGTERM, how long requests in flight may finish.")

    # The engine.
    dtype: Dtype = Field("auto", description="`auto`: bfloat16 on CPUs that have it, else the checkpoint's.")
    max_model_len: int | None = Field(None, ge=1)
    gpu_memory_utilization: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of GPU memory (on CPU: of the NUMA node's memory) for weights and KV cache; "
        "unset: 0.9 on GPU, 0.35 on CPU.",
    )
    enforce_eager: bool = Field(False, description="Skip graph compilation: faster start, slower decoding.")
    max_num_seqs: int | None = Field(None, ge=1)
    # vLLM's parallelism, passed to its engine as given (see the README's multi-GPU and Ray examples).
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    data_parallel_size_local: int | None = Field(None, ge=1)
    data_parallel_address: str | None = None
    data_parallel_rpc_port: int | None = Field(None, ge=1, le=65535)
    data_parallel_backend: Literal["mp", "ray"] | None = None
    distributed_executor_backend: Literal["mp", "ray", "uni", "external_launcher"] | None = Field(
        None,
        description="`ray` to place the engine's workers on a Ray cluster (several nodes); `uni` to run the model "
        "in the engine core's process (on CPU too, where vLLM would turn it into `mp`); unset: vLLM's choice.",
    )
    visible_devices: str | None = Field(
        None,
        pattern=r"^[0-9A-Za-z,:-]*$",
        description="GPUs the engine's processes see (`CUDA_VISIBLE_DEVICES`), e.g. `0,1`; unset: all.",
    )
    cpu_reserved_cores: int | None = Field(
        0,
        ge=0,
        description="CPU engine: cores vLLM keeps for its scheduler instead of the model "
        "(`VLLM_CPU_NUM_OF_RESERVED_CPU`); 0 gives the model every core; unset: vLLM's default.",
    )
    model_impl: Literal["auto", "vllm", "transformers"] = Field(
        "auto",
        description="`transformers`: run the model through vLLM's Transformers backend instead of its "
        "own model class; `auto`: vLLM's class where it has one.",
    )

    # Audio handling.
    max_upload_mb: float = Field(25, gt=0, description="Largest upload accepted, in MB (OpenAI's cap is 25).")
    max_audio_seconds: float = Field(2 * 3600, gt=0, description="Longest audio accepted, in seconds.")
    audio_budget_s: float = Field(
        default_factory=default_audio_budget_s,
        gt=0,
        description="Seconds of audio processed at once, over all requests (memory follows audio, not requests); "
        "a request that does not fit waits, or gets 429 once a budget's worth already waits. "
        "Default: an eighth of the machine's memory at the measured cost per audio second.",
    )
    upload_idle_timeout_s: float = Field(
        30, gt=0, description="An upload that sends nothing for this long is cut off (408)."
    )
    upload_timeout_s: float = Field(300, gt=0, description="Longest an upload's body may take to arrive (408 beyond).")
    decode_workers: int = Field(2, ge=1, description="Threads decoding and resampling uploads.")
    # One thread: on 2 cores with the CPU engine, 64 clips at once went 13.9 -> 17.3 RTFx and one
    # 30 s request 1.19 -> 1.04 s (bench at defaults, 2026-12-02); speech detection of a long file is slower.
    gateway_threads: int = Field(
        1,
        ge=0,
        description="Threads each of the gateway's own numeric steps (speech detection, word alignment) may use; "
        "the engine has its own. 0: torch's default (every core).",
    )
    windows_per_request: int = Field(
        32, ge=1, description="Windows of one request decoded at once (the rest wait their turn)."
    )
    # Off by default: a clip read in one window with others is read in their company (its words
    # can differ with who rode along), and an answer must not depend on what else is in flight.
    window_sharing_wait_ms: float = Field(
        0,
        ge=0,
        le=5000,
        description="Opt-in: how long a short clip may wait for clips of other requests to share one model "
        "window with, where the model family can split a window back by its timestamps (0, the default: never "
        "shared). Sharing saves encoder passes under load, but a clip's words can then differ with its company.",
    )

    # Who spoke when (`response_format=diarized_json`).
    diarizer: str = Field(
        "campplus",
        description="The speaker model behind `response_format=diarized_json` (see the README); "
        "`off`: no speaker model is loaded and diarized_json is refused (400).",
    )

    # Live transcription (the Realtime WebSocket at /v1/realtime).
    realtime_max_sessions: int = Field(
        16, ge=0, description="Realtime sessions open at once; past it a connection is told so and closed (1013)."
    )
    realtime_idle_timeout_s: float = Field(
        120, gt=0, description="A realtime session with no client event for this long (and nothing pending) is closed."
    )
    realtime_max_buffer_s: float = Field(
        120,
        gt=0,
        description="Uncommitted audio a realtime session holds, in seconds: with turn detection, speech this long "
        "is committed as it goes; without, further appends are refused until a commit or clear.",
    )
    realtime_max_message_mb: float = Field(
        4, gt=0, description="Largest realtime client event, in MB (4 MB: about 60 s of base64 24 kHz PCM16)."
    )
    realtime_send_timeout_s: float = Field(
        30,
        gt=0,
        description="A realtime client that reads none of the server's events for this long (its socket's "
        "buffers full) is cut off, and its session's slot and audio freed.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load_settings` is the one reader of the environment and the file; values arrive here.
        return (init_settings,)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @model_validator(mode="before")
    @classmethod
    def _model_entries(cls, data: Any) -> Any:
        # Entries of `models` inherit the engine settings given at the top level.
        if isinstance(data, dict) and data.get("models") not in (None, "", [], ()):
            data = {**data, "models": inherit(parse_entries(data["models"]), data)}
        return data

    @field_validator("models")
    @classmethod
    def _unique_names(cls, value: tuple[ModelSpec, ...]) -> tuple[ModelSpec, ...]:
        check_unique_names(value)
        return value

    def served_models(self) -> tuple[ModelSpec, ...]:
        """The models to serve: the `models` list, or the one model of the top-level settings."""
        if self.models:
            return self.models
        fields = {key: getattr(self, key) for key in ModelSpec.model_fields if key != "model_aliases"}
        return (ModelSpec(**fields, model_aliases=tuple(self.model_aliases)),)

    @field_validator("model_aliases", "api_key", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        # Accept a comma-separated string from the environment as well as a JSON list.
        if isinstance(value, str):
            if value.strip().startswith("["):
                return bounded_json.loads(value)  # a JSONError is a ValueError: pydantic names the setting
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


class ConfigFileError(ValueError):
    """The settings file cannot be read as settings; the message names the file and what is wrong."""


def _read_config_file(path: Path) -> dict[str, Any]:
    """A TOML or JSON file of settings, keys without the env prefix (`port = 9000`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigFileError(f"{path}: cannot read the settings file ({error})") from None
    if len(text) > MAX_CONFIG_FILE_CHARS:
        raise ConfigFileError(f"{path}: longer than {MAX_CONFIG_FILE_CHARS} characters; is it the settings file?")
    data = _parse_config(path, text)
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a table of settings")
    return {key.lower(): value for key, value in data.items()}


def _parse_config(path: Path, text: str) -> Any:
    if path.suffix.lower() != ".toml":
        try:
            return bounded_json.loads(text)
        except bounded_json.JSONError as error:
            where = f" (setting {error.field!r})" if error.field else ""
            raise ConfigFileError(f"{path}: the JSON is {error.message}{where}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(f"{path}: not valid TOML ({error})") from None
    except RecursionError:  # tomllib has no depth limit of its own; the file is bounded in size above
        raise ConfigFileError(f"{path}: the TOML nests too deeply") from None


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from, in order of precedence: overrides, the environment, the config file.

    `environ` defaults to the process environment; tests pass their own mapping.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if config_file := env.get(CONFIG_FILE_ENV):
        values.update(_read_config_file(Path(config_file)))
    # OpenTelemetry's standard variable, unless our own setting names an endpoint.
    if otel := env.get(OTEL_ENDPOINT_ENV):
        values["otel_endpoint"] = otel
    # An empty variable counts as unset (compose passes `${VAR:-}` through as "").
    values.update(
        (key[len(ENV_PREFIX) :].lower(), value)
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and key != CONFIG_FILE_ENV and value != ""
    )
    values.update(overrides)
    return Settings.model_validate(values)
