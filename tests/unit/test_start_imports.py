"""What `larkops run` imports before the Lark connection opens (issue 22): `bot.app` loads
only what the gateway, the database and the HTTP server need; the desks (and with them
langgraph, langchain_core and langsmith, FastAPI, the model SDKs), Alembic, redis-py and the
sandbox come later or only when used. A change that brings one of them back into the start's
first phase fails here, by name."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from bot import app

# third-party packages the first phase must not load, and the bot's own modules it must not
LATER = (
    "langgraph",
    "langchain_core",
    "langsmith",
    "fastapi",
    "openai",
    "anthropic",
    "kubernetes_asyncio",
    "apscheduler",
    "alembic",
    "redis",
    "lark_oapi",  # its client module comes with the connection, its API modules never
)
OWN_LATER = ("bot.assembly", "bot.api", "bot.console", "bot.sandbox", "workflows.checkpoint")

PROBE = """
import json, sys
import bot.app
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_the_app_module_loads_none_of_what_comes_after_the_connection() -> None:
    modules = _loaded(PROBE)
    third = sorted({m.split(".")[0] for m in modules if m.split(".")[0] in LATER})
    own = sorted(m for m in modules if m.startswith(OWN_LATER))
    assert third == [], f"import bot.app loaded {third}"
    assert own == [], f"import bot.app loaded {own}"


def test_the_modules_the_desks_are_built_from_exist() -> None:
    for name in app.DESK_MODULES:
        importlib.import_module(name)
