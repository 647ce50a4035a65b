"""The API keys this process has checked: a key is read from the database once, then known
here for `KEEP` seconds, so a request costs no query for its key.

A revoked key fails on the very next request, on every replica:
- revoked in this process (`storage.api_keys.revoke`): the keyring is told at once;
- revoked elsewhere (`larkops apikey revoke`, another replica): migration 0018's trigger sends
  a change notice (`storage.changes.ChangeFeed`), and every request first reads the notices
  that have arrived;
- while the notices cannot be trusted — no feed, its connection lost (`reset`), or so many
  changes since the last request that some may have been dropped — nothing is kept: every
  request asks the database, as if there were no keyring.

`last_used_at` is written at most every `api_keys.TOUCH_EVERY` per key and replica.

    keyring = Keyring()
    holder = await keyring.holder(db, key, feed)   # None: unknown, forged or revoked → 401
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.logs import get_logger
from storage import api_keys
from storage.api_keys import Holder

if TYPE_CHECKING:
    from storage.changes import ChangeFeed
    from storage.database import Database

log = get_logger(__name__)
KEEP = 300.0  # seconds a checked key is believed without the database (the notices say more)
MOST = 10_000  # keys kept at once (live keys only; a bigger set starts again)


@dataclass
class _Known:
    holder: Holder
    until: float  # monotonic
    touched: float  # monotonic, when last_used_at was last written by this process


class Keyring:
    def __init__(self) -> None:
        self._known: dict[str, _Known] = {}  # sha256 of the key → who
        self._notices: asyncio.Queue[dict[str, Any]] | None = None
        self._subscription: contextlib.AsyncExitStack | None = None
        self._undo = api_keys.on_revoke(self.forget)
        self._forgotten = 0  # revocations heard so far: a check that spans one keeps nothing

    def forget(self, prefix: str) -> None:
        """The key with this prefix no longer works (revoked, deleted, changed)."""
        self._forgotten += 1
        for digest, known in list(self._known.items()):
            if known.holder.prefix == prefix:
                del self._known[digest]

    async def holder(self, db: Database, key: str, feed: ChangeFeed | None) -> Holder | None:
        """Who `key` is, or None when it is malformed, unknown, forged or revoked."""
        trusted = await self._heed(feed)
        digest = api_keys.digest(key)
        now = time.monotonic()
        known = self._known.get(digest)
        if known is None or known.until < now or not trusted:
            self._known.pop(digest, None)
            heard = self._forgotten
            found = await api_keys.holder(db, key)
            if found is None:
                return None
            known = _Known(found, now + KEEP, now - 2 * api_keys.TOUCH_EVERY.total_seconds())
            # a revocation heard while the row was read may be this key's: believe it once
            if trusted and heard == self._forgotten:
                if len(self._known) >= MOST:
                    self._known.clear()
                self._known[digest] = known
        if now - known.touched >= api_keys.TOUCH_EVERY.total_seconds():
            known.touched = now
            await api_keys.touch(db, known.holder.id)
        return known.holder

    async def _heed(self, feed: ChangeFeed | None) -> bool:
        """Read the notices that have arrived; whether they can be trusted to name every
        revocation since the keys were checked."""
        if feed is None:
            self._known.clear()
            return False
        if self._notices is None:
            stack = contextlib.AsyncExitStack()
            try:
                self._notices = await stack.enter_async_context(feed.subscribe())
            except Exception as exc:  # the database is away: every request asks it
                log.warning("api.keyring_no_feed", error=str(exc)[:300])
                await stack.aclose()
                return False
            self._subscription = stack
            self._known.clear()  # what was checked before listening may since be revoked
        notices = self._notices
        if notices.full():  # the feed drops the oldest notice of a full queue
            self._forgotten += 1
            self._known.clear()
        while not notices.empty():
            change = notices.get_nowait()
            kind = change.get("kind")
            if kind == "api_key":
                self.forget(str(change.get("prefix", "")))
            elif kind == "reset":  # the listening connection was lost: listen anew
                self._forgotten += 1
                self._known.clear()
                await self.close()
                return False
        return True

    async def close(self) -> None:
        """Stop listening (the next request listens again)."""
        subscription, self._subscription, self._notices = self._subscription, None, None
        if subscription is not None:
            await subscription.aclose()

    async def stop(self) -> None:
        await self.close()
        self._undo()
        self._known.clear()
