"""`larkops apikey`: make, list and revoke keys of the REST API, without the bot.

    larkops apikey create --name ci --owner ou_alice     # prints the key once
    larkops apikey list [--json]
    larkops apikey revoke ab12cd34                        # the prefix (or the whole key)

A key acts as its owner (an open_id), with the owner's roles and never more. The key is shown
once; only its hash is stored. Only the configuration, asyncpg and `storage.api_keys` are
imported (not the Lark SDK, not the HTTP app, not SQLAlchemy), so these answer fast. Exit 2
for bad arguments or configuration, 1 when the database cannot be reached or the key is
unknown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from bot.config import ConfigError, Settings, load_settings
from bot.startup import StartupError, connect_failure, database_url
from storage import api_keys

EXIT_FAILURE = 1
EXIT_USAGE = 2
OPEN_ID = re.compile(r"ou_[A-Za-z0-9_-]{1,64}")
# the spellings `storage.database.driver_url` accepts, as asyncpg wants them (without SQLAlchemy)
_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")
T = TypeVar("T")


def _fail(message: str, code: int) -> int:
    print(f"larkops: {message}", file=sys.stderr)
    return code


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


async def _with_db(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    url, embedded = await database_url(settings)
    try:
        try:
            conn = await asyncpg.connect(
                _SCHEME.sub("postgresql://", url, count=1),
                timeout=10,
                server_settings={"application_name": "larkops"},
            )
        except Exception as exc:
            raise connect_failure(exc, embedded) from None
        try:
            return await work(conn)
        except asyncpg.PostgresError:
            # SQLAlchemy and Alembic only to say why: the schema is behind
            from storage.database import Database
            from storage.migration import current_revision, head_revision

            database = await Database.open(url, pool_size=1)
            try:
                revision, head = await current_revision(database), head_revision()
            finally:
                await database.close()
            if revision != head:
                raise StartupError(
                    f"the database is at revision {revision or 'base'}, not {head}: "
                    "run `larkops migrate` first"
                ) from None
            raise
        finally:
            await conn.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.release)


def _row(row: api_keys.KeyRow) -> dict[str, Any]:
    return {
        "prefix": row.prefix,
        "name": row.name,
        "owner": row.owner,
        "created_at": _when(row.created_at),
        "last_used_at": _when(row.last_used_at),
        "revoked_at": _when(row.revoked_at),
    }


def build_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="larkops apikey", description="REST API keys")
    actions = root.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key (printed once)")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--owner", required=True, help="the open_id (ou_…) it acts as")
    listing = actions.add_parser("list", help="every key: prefix, name, owner, last use")
    listing.add_argument("--json", action="store_true", help="JSON lines")
    revoke = actions.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    return root


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    if args.action == "create":
        if not OPEN_ID.fullmatch(args.owner):
            return _fail(f"--owner must be an open_id (ou_…), not {args.owner!r}", EXIT_USAGE)
        if not args.name.strip() or len(args.name) > 200:
            return _fail("--name must be 1 to 200 characters", EXIT_USAGE)
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_USAGE)
    try:
        if args.action == "create":
            made = asyncio.run(
                _with_db(
                    settings,
                    lambda db: api_keys.create(db, name=args.name.strip(), owner=args.owner),
                )
            )
            print(made.key)
            print(
                f"key {made.row.prefix} ({made.row.name}) acts as {made.row.owner}; "
                "it is shown only now, keep it",
                file=sys.stderr,
            )
            return 0
        if args.action == "list":
            rows = asyncio.run(_with_db(settings, api_keys.listing))
            for row in rows:
                data = _row(row)
                if args.json:
                    print(json.dumps(data, ensure_ascii=False))
                    continue
                state = f"revoked {data['revoked_at']}" if row.revoked_at else "active"
                used = data["last_used_at"] or "never used"
                print(f"{row.prefix}  {row.name:<20} {row.owner:<24} {state:<10} {used}")
            return 0
        revoked = asyncio.run(_with_db(settings, lambda db: api_keys.revoke(db, args.prefix)))
    except StartupError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    if revoked is None:
        return _fail(f"no active key with the prefix {args.prefix!r}", EXIT_FAILURE)
    print(f"revoked {revoked.prefix} ({revoked.name})")
    return 0
