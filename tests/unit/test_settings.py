from pathlib import Path

import pytest
from pydantic import ValidationError

from config import load_settings


def test_defaults_serve_the_embedded_model_on_loopback() -> None:
    s = load_settings({})
    assert (s.model, s.host, s.port) == ("whisper-base", "127.0.0.1", 8000)
    assert s.model_aliases == ["whisper-1"]
    assert s.max_upload_bytes == 25 * 1024 * 1024


def test_environment_overrides_and_types() -> None:
    s = load_settings(
        {
            "SPEECH_GATEWAY_PORT": "9001",
            "SPEECH_GATEWAY_ENFORCE_EAGER": "true",
            "SPEECH_GATEWAY_GPU_MEMORY_UTILIZATION": "0.5",
            "SPEECH_GATEWAY_MODEL_ALIASES": "whisper-1, my-asr",
            "OTHER": "ignored",
        }
    )
    assert s.port == 9001 and s.enforce_eager and s.gpu_memory_utilization == 0.5
    assert s.model_aliases == ["whisper-1", "my-asr"]


def test_config_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('port = 9100\nserved_model_name = "asr"\ndtype = "float32"\n')
    s = load_settings({"SPEECH_GATEWAY_CONFIG_FILE": str(path), "SPEECH_GATEWAY_PORT": "9200"})
    assert (s.port, s.served_model_name, s.dtype) == (9200, "asr", "float32")


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "70000"), ("GPU_MEMORY_UTILIZATION", "1.5"), ("DTYPE", "int3"), ("MAX_UPLOAD_MB", "0")],
)
def test_invalid_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        load_settings({f"SPEECH_GATEWAY_{name}": value})


def test_empty_variables_count_as_unset() -> None:
    s = load_settings({"SPEECH_GATEWAY_GPU_MEMORY_UTILIZATION": "", "SPEECH_GATEWAY_API_KEY": ""})
    assert s.gpu_memory_utilization is None and s.api_key == []


def test_api_keys_are_a_list_and_stay_out_of_repr() -> None:
    s = load_settings({"SPEECH_GATEWAY_API_KEY": "sk-one, sk-two"})
    assert s.api_key == ["sk-one", "sk-two"] and "sk-one" not in repr(s)


def test_only_load_settings_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_GATEWAY_API_KEY", "sk-a,sk-b")
    monkeypatch.setenv("SPEECH_GATEWAY_PORT", "9300")
    s = load_settings()
    assert s.api_key == ["sk-a", "sk-b"] and s.port == 9300
    assert load_settings({}).port == 8000


def test_the_cpu_engine_gets_every_core_by_default() -> None:
    from config import engine_environment

    assert engine_environment(load_settings({})) == {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    one = load_settings({"SPEECH_GATEWAY_CPU_RESERVED_CORES": "1"})
    assert engine_environment(one) == {"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"}


def test_the_one_process_executor_is_not_turned_back_into_a_worker_process() -> None:
    from config import engine_environment

    uni = load_settings({"SPEECH_GATEWAY_DISTRIBUTED_EXECUTOR_BACKEND": "uni"})
    assert engine_environment(uni)["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in engine_environment(load_settings({}))


def test_the_otlp_endpoint_comes_from_the_standard_variable_unless_ours_names_one() -> None:
    assert load_settings({}).otel_endpoint is None
    assert load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}).otel_endpoint == "http://otel:4318"
    ours = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "SPEECH_GATEWAY_OTEL_ENDPOINT": "http://mine:4318"}
    assert load_settings(ours).otel_endpoint == "http://mine:4318"
