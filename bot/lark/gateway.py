"""Where Lark's events come in, open before the bot's desks exist.

`larkops run` opens the gateway as soon as the database is ready (`bot.app`): the long
connection connects while the rest of the bot (the workflow graphs, the scheduler, the model
clients: most of the start-up's imports, issue 22) is still being built. What arrives meanwhile
is not lost: the inbox commits message events (and `bot.lark.delivery` hands it those POSTed
over HTTP), which its workers handle once the runtime serves it; a card action waits for that
within Lark's deadline (`bot.lark.inbox`).

Usage::

    gateway = Gateway(settings, db, target, listen=True)
    gateway.open()                      # the long connection starts connecting
    ...                                 # build the desks
    runtime = assemble(..., gateway=gateway); runtime.start()   # serves the inbox
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from bot.config import Settings
from bot.lark.connection import LongConnection
from bot.lark.inbox import Inbox
from storage.database import Database


@dataclass(frozen=True)
class LarkTarget:
    """Where to connect: the real Lark (or Feishu) app, or the local sandbox."""

    app_id: str
    app_secret: str
    domain: str
    sandbox: bool = False


class Gateway:
    """The inbox, accepting from the start, and the long connection that delivers to it."""

    def __init__(
        self, settings: Settings, db: Database, target: LarkTarget, *, listen: bool = True
    ) -> None:
        self.settings = settings
        self.target = target
        self.listen = listen  # hold the long connection (an intake process does not)
        self.inbox = Inbox(db)
        self.connection: LongConnection | None = None

    def open(self) -> None:
        """Start the long connection (unless events come over HTTP, or another process holds
        it); from now on events are committed, and handled once the inbox is served."""
        if self.settings.lark_event_delivery == "http" or not self.listen:
            return
        self.connection = LongConnection(
            self.target.app_id,
            self.target.app_secret,
            self.target.domain,
            self.inbox.accept,
            asyncio.get_running_loop(),
        )
        self.connection.start()

    async def connected(self, patience: float) -> None:
        """Wait, at most `patience` seconds, until the long connection is up or has failed.

        The app imports the rest of the bot after this: a second of CPU on a thread that shares
        the interpreter with the SDK's. Waiting first lets the handshake through without that
        contention, and costs no CPU: the loop is idle meanwhile."""
        connection = self.connection
        if connection is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience):
                # the SDK has no callback for the first connect (only for reconnects): look
                while not (connection.connected or connection.error):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)

    def state(self) -> str:
        """Where the connection is, for `/readyz` and `/status`."""
        if self.settings.lark_event_delivery == "http":
            return "http delivery"
        if self.connection is None:
            return "starting"
        if self.connection.error:
            return f"error: {self.connection.error}"
        return "connected" if self.connection.connected else "connecting"

    def wake(self) -> None:
        """Something was committed elsewhere (a webhook): let a worker look now."""
        self.inbox.wake()

    async def close(self) -> None:
        """No new events, then the workers finish what they hold."""
        if self.connection is not None:
            await asyncio.to_thread(self.connection.stop)
        await self.inbox.stop()
