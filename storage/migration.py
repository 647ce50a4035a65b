"""Run the Alembic migrations from inside the app (`larkops migrate`, and `larkops run` at start).

Usage::

    await upgrade(db)                    # to head; a no-op when already there
    await downgrade(db, "base")
    await current_revision(db)           # e.g. '0001'
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from storage.database import Database

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

_SCRIPTS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision, read from the scripts' `revision`/`down_revision` lines.

    Alembic's `ScriptDirectory` imports Alembic and runs every script to learn this (a quarter
    of a second of CPU and 3 MB at each `larkops run`, where the database is nearly always at
    head already: issue 22); `tests/unit/test_migration_head.py` checks both agree."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (_SCRIPTS / "versions").glob("*.py"):
        names = _assignments(script)
        revision, down = names.get("revision"), names.get("down_revision")
        if isinstance(revision, str):
            revisions.add(revision)
            if isinstance(down, str):
                parents.add(down)
            elif isinstance(down, (tuple, list)):  # a merge revision
                parents.update(str(name) for name in down)
    heads = revisions - parents
    assert len(heads) == 1, f"migrations/versions has {len(heads)} heads: {sorted(heads)}"
    return heads.pop()


def _assignments(script: Path) -> dict[str, object]:
    """The module-level constants a migration script assigns (`revision = "0018"` …)."""
    found: dict[str, object] = {}
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        target: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and value is not None:
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
    return found


async def current_revision(db: Database) -> str | None:
    """The revision the database is at (None: none yet), read without importing Alembic."""
    async with db.engine.connect() as conn:
        table = await conn.scalar(text("SELECT to_regclass(:name)"), {"name": VERSION_TABLE})
        if table is None:
            return None
        revision = await conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608
        return str(revision) if revision is not None else None


async def upgrade(db: Database, revision: str = "head") -> bool:
    """Migrate up to `revision`; returns False when nothing had to be done (then Alembic is not
    even imported)."""
    if revision == "head" and await current_revision(db) == head_revision():
        return False
    from alembic import command

    async with db.engine.connect() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))
        await conn.commit()
    return True


async def downgrade(db: Database, revision: str) -> None:
    from alembic import command

    async with db.engine.connect() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))
        await conn.commit()
