"""The CLI paths that need no app start fast (issue 22 item 5; timed by bench/cli_start.py):
they answer without loading the app, the Lark SDK, the database layer or the workflows'
graph library, whose imports alone take seconds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# packages (any module under them) and the app's own entry module
HEAVY = ("lark_oapi", "sqlalchemy", "langgraph", "asyncpg", "openai", "anthropic")
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


def run(*argv: str) -> dict[str, object]:
    code = PROBE.format(HEAVY=set(HEAVY), APP=APP)
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
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


def test_version_names_the_package() -> None:
    result = run("--version")
    assert str(result["out"]).startswith("larkops "), result
