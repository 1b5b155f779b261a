"""The house rules that tools can check: ruff (lint and format), mypy, and the rooms of DESIGN.md."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.background import MYPY

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint_and_format() -> None:
    lint = run("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout
    fmt = run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout


def test_mypy() -> None:
    # Begun as the session started (tests/conftest.py), beside the tests before this one.
    returncode, output = MYPY.result(timeout_s=600)
    assert returncode == 0, output


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_rooms_keep_their_walls() -> None:
    for path in sorted((ROOT / "app").rglob("*.py")) + sorted((ROOT / "models").rglob("*.py")):
        names = imports_of(path)
        where = path.relative_to(ROOT).as_posix()
        if where != "app/scheduling/engine.py":
            assert not any(n == "vllm" or n.startswith("vllm.") for n in names), f"{where} imports vLLM"
        if where.startswith("models/"):
            assert not any(n.split(".")[0] in ("fastapi", "starlette", "app") for n in names), f"{where} knows HTTP"
        if where.startswith("app/"):
            assert not any(n.startswith("models.whisper") for n in names), f"{where} knows a particular model"
        if not where.startswith("config/"):
            assert "os.environ" not in path.read_text(encoding="utf-8"), f"{where} reads the environment"


def test_app_names_no_particular_model() -> None:
    for path in sorted((ROOT / "app").rglob("*.py")):
        text = path.read_text(encoding="utf-8").lower()
        for name in ("whisper", "qwen", "flamingo"):
            assert name not in text, f"{path.relative_to(ROOT)} names {name}"


def test_each_room_says_what_it_holds() -> None:
    for init in sorted((ROOT / "app").rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        where = init.relative_to(ROOT).as_posix()
        assert docstring and "\n" not in docstring.strip(), f"{where} needs a one-line docstring"
