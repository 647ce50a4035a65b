"""The CLI paths that need no app start fast (issue 22 item 5; timed by bench/cli_start.py):
they answer without loading the app, the Lark SDK, the database layer or the workflows'
graph library, whose imports alone take seconds, or structlog (0.1 s with its dev renderer).
`larkops apikey` talks to the database through asyncpg alone: not SQLAlchemy, not the ORM
models."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import World

# packages (any module under them) and the app's own entry module
HEAVY = (
    "lark_oapi",
    "sqlalchemy",
    "langgraph",
    "asyncpg",
    "openai",
    "anthropic",
    "structlog",
    # bot.config reads the environment itself: pydantic-settings imports asyncio, argparse and
    # importlib's resources (about a fifth of `config check`); YAML only when a file is named
    "pydantic_settings",
    "yaml",
)
APP = "bot.app"

PROBE = """
import contextlib, io, json, sys
from bot.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY} or m == {APP!r})
print(json.dumps({{"code": code, "out": out.getvalue(), "heavy": heavy}}))
"""


def run(
    *argv: str, heavy: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None
) -> dict[str, object]:
    code = PROBE.format(HEAVY=set(heavy), APP=APP)
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "argv",
    [
        ("--version",),
        ("config", "check"),
        ("schedule", "parse", "每天早上9点检查服务器健康", "--json"),
    ],
)
def test_cli_paths_without_the_app_load_none_of_it(argv: tuple[str, ...]) -> None:
    result = run(*argv)
    assert result["code"] in (0, None), result
    assert result["heavy"] == [], f"larkops {' '.join(argv)} imported {result['heavy']}"


def test_config_check_runs_no_event_loop_machinery() -> None:
    result = run("config", "check", heavy=("asyncio",))
    assert result["code"] in (0, None), result
    assert result["heavy"] == [], result


def test_version_names_the_package() -> None:
    result = run("--version")
    assert str(result["out"]).startswith("larkops "), result


def test_apikey_commands_load_neither_the_app_nor_sqlalchemy(world: World) -> None:
    env = {**os.environ, "DATABASE_URL": world.db_url, "LARKOPS_HOME": str(world.tmp)}
    # asyncpg it needs; SQLAlchemy (so neither storage.database nor storage.models) it does not
    heavy = (*(name for name in HEAVY if name != "asyncpg"), "alembic")
    made = run("apikey", "create", "--name", "ci", "--owner", "ou_alice", heavy=heavy, env=env)
    assert made["code"] == 0, made
    prefix = str(made["out"]).split("_")[1]
    listed = run("apikey", "list", "--json", heavy=heavy, env=env)
    assert listed["code"] == 0, listed
    assert [json.loads(line)["prefix"] for line in str(listed["out"]).splitlines()] == [prefix]
    revoked = run("apikey", "revoke", prefix, heavy=heavy, env=env)
    assert revoked["code"] == 0, revoked
    for result in (made, listed, revoked):
        assert result["heavy"] == [], result
