"""Several models in one gateway, as settings: the `models` list, its inheritance, its refusals, and
vLLM's parallelism settings reaching the engine's arguments and vLLM's own configuration."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import ModelSpec, engine_environment, load_settings

TWO = [
    {"model": "whisper-base", "served_model_name": "base", "model_aliases": ["whisper-1"]},
    {"model": "/ckpt/qwen3", "served_model_name": "qwen", "model_aliases": "asr,asr-2", "gpu_memory_utilization": 0.2},
]


def test_one_model_is_the_top_level_settings() -> None:
    (spec,) = load_settings({"SPEECH_GATEWAY_GPU_MEMORY_UTILIZATION": "0.3"}).served_models()
    assert (spec.model, spec.served_model_name, spec.model_aliases) == ("whisper-base", None, ("whisper-1",))
    assert spec.gpu_memory_utilization == 0.3 and spec.tensor_parallel_size == 1


def test_each_model_has_its_own_names_and_share_and_inherits_the_rest() -> None:
    env = {
        "SPEECH_GATEWAY_MODELS": json.dumps(TWO),
        "SPEECH_GATEWAY_DTYPE": "float32",
        "SPEECH_GATEWAY_ENFORCE_EAGER": "true",
        "SPEECH_GATEWAY_GPU_MEMORY_UTILIZATION": "0.1",
    }
    base, qwen = load_settings(env).served_models()
    assert (base.served_model_name, base.model_aliases) == ("base", ("whisper-1",))
    assert (qwen.served_model_name, qwen.model_aliases) == ("qwen", ("asr", "asr-2"))
    assert (base.gpu_memory_utilization, qwen.gpu_memory_utilization) == (0.1, 0.2)
    assert all(s.dtype == "float32" and s.enforce_eager for s in (base, qwen))


def test_a_toml_file_lists_models_as_tables(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        'tensor_parallel_size = 2\n[[models]]\nmodel = "whisper-base"\n'
        '[[models]]\nmodel = "/ckpt/b"\nserved_model_name = "b"\ntensor_parallel_size = 1\nvisible_devices = "2"\n'
    )
    first, second = load_settings({"SPEECH_GATEWAY_CONFIG_FILE": str(path)}).served_models()
    assert (first.tensor_parallel_size, second.tensor_parallel_size) == (2, 1)
    settings = load_settings({})
    assert engine_environment(settings, second)["CUDA_VISIBLE_DEVICES"] == "2"
    assert "CUDA_VISIBLE_DEVICES" not in engine_environment(settings, first)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('{"model": "whisper-base"}', "list of objects"),
        ("[1, 2]", "list of objects"),
        ('[{"model": "a", "served_model_name": "x"}, {"model": "b", "model_aliases": ["x"]}]', "'x'"),
        ('[{"model": "a", "tensor_parallel": 2}]', "tensor_parallel"),
        ('[{"model": "a", "distributed_executor_backend": "slurm"}]', "distributed_executor_backend"),
        ('[{"served_model_name": "a"}]', "model"),
        ("[" * 40 + "]" * 40, "nested deeper"),
        ("[" + ",".join(['{"model": "a"}'] * 17) + "]", "at most 16"),
    ],
)
def test_a_bad_models_list_is_refused_naming_what_is_wrong(value: str, says: str) -> None:
    with pytest.raises(ValueError, match="models") as caught:
        load_settings({"SPEECH_GATEWAY_MODELS": value})
    assert says in str(caught.value)


@pytest.fixture
def own_environment() -> Iterator[None]:
    """vLLM's configuration sets process environment variables (LOCAL_WORLD_SIZE ...): undo them for
    the engines later tests start in this process."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


PARALLEL = {
    "tensor_parallel_size": 2,
    "pipeline_parallel_size": 3,
    "data_parallel_size": 4,
    "data_parallel_size_local": 2,
    "data_parallel_address": "10.0.0.1",
    "data_parallel_rpc_port": 13345,
    "data_parallel_backend": "ray",
    "distributed_executor_backend": "ray",
}


def test_parallelism_settings_reach_the_engine_arguments(tmp_path: Path, own_environment: None) -> None:
    from app.scheduling.engine import engine_args  # imports vLLM

    settings = load_settings({"SPEECH_GATEWAY_MODELS": json.dumps([{"model": "whisper-base", **PARALLEL}])})
    args = engine_args(settings, tmp_path, {}, settings.served_models()[0])
    assert {key: getattr(args, key) for key in PARALLEL} == PARALLEL
    # The one-model case: the same settings at the top level.
    top = load_settings({f"SPEECH_GATEWAY_{key.upper()}": str(value) for key, value in PARALLEL.items()})
    assert {key: getattr(engine_args(top, tmp_path), key) for key in PARALLEL} == PARALLEL
    # Unset, vLLM's own defaults stay.
    plain = engine_args(load_settings({}), tmp_path)
    assert (plain.data_parallel_address, plain.distributed_executor_backend) == (None, None)


def test_vllm_builds_its_parallel_configuration_from_them(tmp_path: Path, own_environment: None) -> None:
    """vLLM's own `VllmConfig` (built, nothing started) holds each model's parallel layout and share."""
    from transformers import WhisperConfig

    from app.scheduling.engine import engine_args

    WhisperConfig(
        d_model=64,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        architectures=["WhisperForConditionalGeneration"],
    ).save_pretrained(tmp_path)
    entry = {"model": str(tmp_path), "served_model_name": "w", "gpu_memory_utilization": 0.05}
    layout = {"tensor_parallel_size": 2, "data_parallel_size": 2, "data_parallel_size_local": 1}
    address = {"data_parallel_address": "10.0.0.1", "data_parallel_rpc_port": 13345}
    settings = load_settings({"SPEECH_GATEWAY_MODELS": json.dumps([{**entry, **layout, **address}])})
    spec: ModelSpec = settings.served_models()[0]
    config = engine_args(settings, tmp_path, {}, spec).create_engine_config()
    parallel = config.parallel_config
    assert (parallel.tensor_parallel_size, parallel.data_parallel_size, parallel.data_parallel_size_local) == (2, 2, 1)
    assert (parallel.data_parallel_master_ip, parallel.data_parallel_rpc_port) == ("10.0.0.1", 13345)
    assert parallel.world_size == 2 and config.cache_config.gpu_memory_utilization == 0.05
