"""Console sessions: a random token in an HttpOnly cookie, its hash here, a CSRF token beside
it, an expiry. Signing in makes a new session (the old cookie's session is ended: rotation).

    made = await open_session(db, "ou_alice", "Alice", hours=12)   # made.token -> the cookie
    row = await find(db, token)          # None: unknown or expired
    await close(db, token)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from storage.database import Database
from storage.models import ConsoleSession


@dataclass(frozen=True)
class Opened:
    row: ConsoleSession
    token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    db: Database, open_id: str, name: str, *, hours: float, replacing: str | None = None
) -> Opened:
    token = secrets.token_urlsafe(32)
    async with db.session() as session:
        if replacing:
            await session.execute(
                delete(ConsoleSession).where(ConsoleSession.token_hash == _hash(replacing))
            )
        await session.execute(
            delete(ConsoleSession).where(ConsoleSession.expires_at < datetime.now(UTC))
        )
        row = ConsoleSession(
            token_hash=_hash(token),
            open_id=open_id,
            name=name[:200],
            csrf=secrets.token_urlsafe(24),
            expires_at=datetime.now(UTC) + timedelta(hours=hours),
        )
        session.add(row)
        await session.flush()
    return Opened(row, token)


async def find(db: Database, token: str) -> ConsoleSession | None:
    if not token or len(token) > 200:
        return None
    async with db.session() as session:
        row = await session.scalar(
            select(ConsoleSession).where(ConsoleSession.token_hash == _hash(token))
        )
    if row is None or row.expires_at <= datetime.now(UTC):
        return None
    return row


async def close(db: Database, token: str) -> None:
    async with db.session() as session:
        await session.execute(
            delete(ConsoleSession).where(ConsoleSession.token_hash == _hash(token))
        )
