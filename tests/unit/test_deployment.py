"""The Dockerfile and compose file cannot be run here (no Docker engine): read them instead."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_runs_larkops_as_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    final_stage = text.split("\nFROM ")[-1]
    assert final_stage.startswith("python:3.11-slim")
    user = re.search(r"^USER (\S+)$", final_stage, re.M)
    assert user is not None
    assert user.group(1).split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in final_stage
    assert "/healthz" in final_stage
    assert 'ENTRYPOINT ["larkops"]' in final_stage
    assert 'CMD ["run"]' in final_stage
    # every package the app is made of is copied into the build
    for package in ("bot", "workflows", "plugins", "cards", "storage", "migrations"):
        assert f"COPY {package} ./{package}" in text


def test_compose_wires_pgvector_redis_and_the_bot() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["redis"]["image"].startswith("redis:")
    bot = services["bot"]
    env = bot["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["LARKOPS_HTTP_HOST"] == "0.0.0.0"
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bot["depends_on"]["redis"]["condition"] == "service_healthy"
