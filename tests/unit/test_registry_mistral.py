"""The registry on checkpoints in Mistral's own layout (params.json, no config.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.registry import UnsupportedModelError, architecture_of, family_of
from models.voxtral import VoxtralModel

WHISPER_ARGS = {"encoder_args": {"dim": 1280}, "downsample_args": {"downsample_factor": 4}}


def _checkpoint(tmp_path: Path, params: dict[str, object]) -> Path:
    (tmp_path / "params.json").write_text(json.dumps(params), encoding="utf-8")
    return tmp_path


def test_an_audio_encoder_in_params_json_is_voxtral(tmp_path: Path) -> None:
    directory = _checkpoint(tmp_path, {"dim": 3072, "multimodal": {"whisper_model_args": WHISPER_ARGS}})
    assert architecture_of(directory) == "VoxtralForConditionalGeneration"
    assert family_of(directory) is VoxtralModel


def test_other_mistral_checkpoints_are_named_and_refused(tmp_path: Path) -> None:
    causal = {"encoder_args": {"dim": 1280, "causal": True}, "downsample_args": {"downsample_factor": 4}}
    (tmp_path / "realtime").mkdir()
    (tmp_path / "text").mkdir()
    realtime = _checkpoint(tmp_path / "realtime", {"multimodal": {"whisper_model_args": causal}})
    text = _checkpoint(tmp_path / "text", {"dim": 4096})
    for directory, architecture in ((realtime, "VoxtralRealtimeGeneration"), (text, "MistralForCausalLM")):
        with pytest.raises(UnsupportedModelError, match=architecture):
            family_of(directory)


def test_config_json_wins_where_a_checkpoint_has_both(tmp_path: Path) -> None:
    directory = _checkpoint(tmp_path, {"multimodal": {"whisper_model_args": WHISPER_ARGS}})
    (directory / "config.json").write_text(json.dumps({"architectures": ["WhisperForConditionalGeneration"]}))
    assert architecture_of(directory) == "WhisperForConditionalGeneration"


def test_voxtral_without_mistral_files_is_a_start_up_error_naming_them(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["VoxtralForConditionalGeneration"]}))
    with pytest.raises(ValueError, match=r"tekken\.json, params\.json"):
        VoxtralModel.from_pretrained(tmp_path)
