"""Reading a Hugging Face checkpoint's small JSON files, as every family needs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json(path: Path) -> dict[str, Any]:
    """The file's object, or {} where the checkpoint has no such file."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def feature_extractor_config(model_dir: Path) -> dict[str, Any]:
    """The feature extractor's settings: `preprocessor_config.json`, or the section of
    `processor_config.json` that transformers 5 writes instead."""
    return read_json(model_dir / "preprocessor_config.json") or read_json(model_dir / "processor_config.json").get(
        "feature_extractor", {}
    )
