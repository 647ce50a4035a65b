"""Handlers parse, call a desk and render (docs/architecture.md): none reads the database or
the settings. A query or a setting a handler wants is a decision its desk makes (returning codes
and values, or refusing with an enumerated reason); what it needs to render (the language, the
time zone) comes from `HandlerContext` (`texts`, `zone`). This fails on any handler in
`bot/commands/` that reads `.db` or `.settings` of anything (`ctx.services.db`,
`desk.settings`), names a `Database` or `Settings`, imports them, or asks for them by parameter
name."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "bot" / "commands"
# handler modules still allowed to read them, and why (none: keep it empty)
ALLOWED: dict[str, str] = {}
_ATTRIBUTES = {"db", "settings"}
_TYPES = {"Database", "Settings"}
_MODULES = {"storage.database", "bot.config"}


def _reads(source: str) -> list[str]:
    """What in the source reaches the database or the settings, with its line."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and node.attr in _ATTRIBUTES:
            found.append(f"{line}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in _TYPES:
            found.append(f"{line}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in _TYPES:
            found.append(f"{line}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in _MODULES:
            found.append(f"{line}: from {node.module}")
        elif isinstance(node, ast.ImportFrom) and any(a.name in _TYPES for a in node.names):
            found.append(f"{line}: import of {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Import) and any(a.name in _MODULES for a in node.names):
            found.append(f"{line}: import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.arg) and node.arg in _ATTRIBUTES:
            found.append(f"{line}: parameter {node.arg}")
        elif isinstance(node, ast.Constant) and node.value in (*_TYPES, *_ATTRIBUTES):
            found.append(f"{line}: {node.value!r} (a string annotation or getattr)")
    return found


def test_handlers_read_neither_the_database_nor_the_settings() -> None:
    wrong: list[str] = []
    for path in sorted(HANDLERS.rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if name in ALLOWED:
            continue
        wrong += [f"{name}:{read}" for read in _reads(path.read_text(encoding="utf-8"))]
    assert wrong == []


def test_the_allow_list_is_empty() -> None:
    assert ALLOWED == {}


def test_the_check_sees_each_way_in() -> None:
    examples = {
        "async def h(ctx):\n    await get(ctx.services.db, 1)\n": ".db",
        "def h(ctx):\n    return ctx.services.settings.timezone\n": ".settings",
        "def h(desk):\n    return desk.settings\n": ".settings",
        "from storage.database import Database\n": "from storage.database",
        "from bot.config import load_settings\n": "from bot.config",
        "import bot.config\n": "import bot.config",
        "async def h(ctx, db: Database) -> None: ...\n": "parameter db",
        "async def h(ctx, settings) -> None: ...\n": "parameter settings",
        "def h(s: 'Settings') -> None: ...\n": "'Settings'",
        "def h(ctx):\n    return getattr(ctx.services, 'db')\n": "'db'",
    }
    for source, expected in examples.items():
        assert any(expected in read for read in _reads(source)), source
    assert _reads("async def h(ctx, desk: IncidentDesk):\n    await desk.ack(ctx.user)\n") == []
