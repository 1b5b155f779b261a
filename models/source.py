"""Where the served checkpoint comes from: the embedded default, a directory, or a hub id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.whisper.embedded import EMBEDDED, ModelProvisionError, provision


@dataclass(frozen=True)
class ModelSource:
    directory: Path
    # The name clients use unless the settings give another.
    default_name: str


def resolve(model: str, cache_dir: Path, show_progress: bool = True) -> ModelSource:
    """A local checkpoint directory for `model`, provisioning the embedded one when named."""
    if model in EMBEDDED:
        return ModelSource(provision(EMBEDDED[model], cache_dir, show_progress), model)
    path = Path(model).expanduser()
    if path.is_dir():
        return ModelSource(path.resolve(), path.resolve().name)
    if path.exists() or model.startswith((".", "/", "~")):
        raise ModelProvisionError(f"model path {model!r} is not a checkpoint directory")
    try:
        from huggingface_hub import snapshot_download

        directory = snapshot_download(model, cache_dir=str(cache_dir / "hub"))
    except Exception as exc:
        raise ModelProvisionError(
            f"{model!r} is neither an embedded model ({', '.join(EMBEDDED)}), a directory, "
            f"nor a hub id that could be fetched: {exc}"
        ) from None
    return ModelSource(Path(directory), model)
