"""API keys: made once (the secret is shown then and never again), found by their prefix,
checked against a hash, revoked.

A key reads `lko_<prefix>_<secret>`: the prefix (8 characters) names it in lists and in the
audit timeline, the secret (32 characters) is known only to whoever holds the key; the row
keeps sha256 of the whole key.

    made = await create(db, name="ci", owner="ou_alice")     # made.key: print it once
    row = await verify(db, made.key)                         # None: unknown, forged, revoked
    await revoke(db, "ab12cd34")
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Sequence
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
        return await session.scalar(
            update(ApiKey)
            .where(ApiKey.prefix == wanted, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
            .returning(ApiKey)
        )


async def verify(db: Database, key: str) -> ApiKey | None:
    """The live key row of `key`, its last use noted; None when it is malformed, unknown,
    forged (the hash differs) or revoked."""
    prefix = prefix_of(key)
    if prefix is None:
        return None
    async with db.session() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or not hmac.compare_digest(row.secret_hash, digest(key)):
        return None
    if row.revoked_at is not None:
        return None
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        async with db.session() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now)
            )
        row.last_used_at = now
    return row
