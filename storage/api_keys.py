"""API keys: made once (the secret is shown then and never again), found by their prefix,
checked against a hash, revoked.

A key reads `lko_<prefix>_<secret>`: the prefix (8 characters) names it in lists and in the
audit timeline, the secret (32 characters) is known only to whoever holds the key; the row
keeps sha256 of the whole key.

    made = await create(db, name="ci", owner="ou_alice")     # made.key: print it once
    who = await holder(db, made.key)                         # None: unknown, forged, revoked
    await revoke(db, "ab12cd34")

The API does not read this table on every request: `bot.api.keyring` keeps what `holder`
found (and `touch`es a key at most every `TOUCH_EVERY`), and forgets a key when it is revoked:
at once in this process (`on_revoke`), and in every other one by the database's change notice
(migration 0018).

Each function takes the app's `Database` or a bare asyncpg connection (what `larkops apikey`
opens: SQLAlchemy and the ORM models take most of a second to import, issue 22 item 5), and
runs its one statement on the asyncpg connection either way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from storage.database import Database

SCHEME = "lko"
_ALPHABET = string.ascii_lowercase + string.digits
PREFIX_LENGTH = 8
SECRET_LENGTH = 32
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is written at most this often per key


# what a revocation in this process tells this process's keyrings (the prefix revoked)
_revoked_here: set[Callable[[str], None]] = set()


def on_revoke(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call `listener(prefix)` when a key is revoked in this process; returns the undo."""
    _revoked_here.add(listener)
    return lambda: _revoked_here.discard(listener)


@dataclass(frozen=True)
class Holder:
    """Who a live key is: what the API needs of it on every request."""

    id: int
    prefix: str
    owner: str  # the open_id it acts as


@dataclass(frozen=True)
class KeyRow:
    """A row of `api_keys` without its hash: what lists and revocations show."""

    id: int
    prefix: str
    name: str
    owner: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Made:
    row: KeyRow
    key: str  # the whole key: shown once, never stored


def _key_row(record: Any) -> KeyRow:
    """A `KeyRow` from a record that holds its columns (the statements below name them)."""
    return KeyRow(**{name: record[name] for name in KeyRow.__dataclass_fields__})


@asynccontextmanager
async def _connection(db: Database | asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection to run a statement on (each statement commits by itself)."""
    if isinstance(db, asyncpg.Connection):
        yield db
        return
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, asyncpg.Connection), "storage.database opens asyncpg"
        yield driver


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def prefix_of(key: str) -> str | None:
    """The prefix of a well-formed key, None for anything else."""
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != SCHEME:
        return None
    prefix, secret = parts[1], parts[2]
    if len(prefix) != PREFIX_LENGTH or len(secret) != SECRET_LENGTH:
        return None
    if not set(prefix + secret) <= set(_ALPHABET):
        return None
    return prefix


async def create(db: Database | asyncpg.Connection, *, name: str, owner: str) -> Made:
    prefix = _random(PREFIX_LENGTH)
    key = f"{SCHEME}_{prefix}_{_random(SECRET_LENGTH)}"
    async with _connection(db) as conn:
        record = await conn.fetchrow(
            "INSERT INTO api_keys (name, owner, prefix, secret_hash) VALUES ($1, $2, $3, $4) "
            "RETURNING id, prefix, name, owner, created_at, last_used_at, revoked_at",
            name,
            owner,
            prefix,
            digest(key),
        )
    return Made(_key_row(record), key)


async def listing(db: Database | asyncpg.Connection) -> Sequence[KeyRow]:
    async with _connection(db) as conn:
        records = await conn.fetch(
            "SELECT id, prefix, name, owner, created_at, last_used_at, revoked_at "
            "FROM api_keys ORDER BY id"
        )
    return [_key_row(record) for record in records]


async def revoke(db: Database | asyncpg.Connection, prefix: str) -> KeyRow | None:
    """Revoke the key with this prefix (or `lko_<prefix>…`); None when no live key has it."""
    wanted = prefix.removeprefix(f"{SCHEME}_").split("_")[0]
    async with _connection(db) as conn:
        record = await conn.fetchrow(
            "UPDATE api_keys SET revoked_at = $2 WHERE prefix = $1 AND revoked_at IS NULL "
            "RETURNING id, prefix, name, owner, created_at, last_used_at, revoked_at",
            wanted,
            datetime.now(UTC),
        )
    for listener in list(_revoked_here):
        listener(wanted)
    return _key_row(record) if record is not None else None


async def holder(db: Database | asyncpg.Connection, key: str) -> Holder | None:
    """Who `key` is when it is live; None when it is malformed, unknown, forged (the hash
    differs) or revoked. Reads one row; notes nothing (`touch` does)."""
    prefix = prefix_of(key)
    if prefix is None:
        return None
    async with _connection(db) as conn:
        row = await conn.fetchrow(
            "SELECT id, owner, secret_hash, revoked_at FROM api_keys WHERE prefix = $1", prefix
        )
    if row is None or not hmac.compare_digest(row["secret_hash"], digest(key)):
        return None
    if row["revoked_at"] is not None:
        return None
    return Holder(int(row["id"]), prefix, str(row["owner"]))


async def touch(db: Database | asyncpg.Connection, key_id: int) -> None:
    """Note that the key was used now (callers do it at most every `TOUCH_EVERY`)."""
    async with _connection(db) as conn:
        await conn.execute(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1", key_id, datetime.now(UTC)
        )
