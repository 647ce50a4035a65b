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
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from storage.database import Database
from storage.models import ApiKey

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
class Made:
    row: ApiKey
    key: str  # the whole key: shown once, never stored


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


async def create(db: Database, *, name: str, owner: str) -> Made:
    prefix = _random(PREFIX_LENGTH)
    key = f"{SCHEME}_{prefix}_{_random(SECRET_LENGTH)}"
    async with db.session() as session:
        row = ApiKey(name=name, owner=owner, prefix=prefix, secret_hash=digest(key))
        session.add(row)
        await session.flush()
    return Made(row, key)


async def listing(db: Database) -> Sequence[ApiKey]:
    async with db.session() as session:
        return (await session.scalars(select(ApiKey).order_by(ApiKey.id))).all()


async def revoke(db: Database, prefix: str) -> ApiKey | None:
    """Revoke the key with this prefix (or `lko_<prefix>…`); None when no live key has it."""
    wanted = prefix.removeprefix(f"{SCHEME}_").split("_")[0]
    async with db.session() as session:
        row = await session.scalar(
            update(ApiKey)
            .where(ApiKey.prefix == wanted, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
            .returning(ApiKey)
        )
    for listener in list(_revoked_here):
        listener(wanted)
    return row


async def holder(db: Database, key: str) -> Holder | None:
    """Who `key` is when it is live; None when it is malformed, unknown, forged (the hash
    differs) or revoked. Reads one row; notes nothing (`touch` does)."""
    prefix = prefix_of(key)
    if prefix is None:
        return None
    table = ApiKey.__table__
    query = select(table.c.id, table.c.owner, table.c.secret_hash, table.c.revoked_at).where(
        table.c.prefix == prefix
    )
    async with db.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None or not hmac.compare_digest(row.secret_hash, digest(key)):
        return None
    if row.revoked_at is not None:
        return None
    return Holder(int(row.id), prefix, str(row.owner))


async def touch(db: Database, key_id: int) -> None:
    """Note that the key was used now (callers do it at most every `TOUCH_EVERY`)."""
    async with db.session() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=datetime.now(UTC))
        )
