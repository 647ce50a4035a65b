"""The sandbox's chat history, kept in `$LARKOPS_HOME/sandbox/chats.json` so that a restarted
`larkops run` shows the same chats (and their cards, whose buttons still work: the signing key is
kept in `$LARKOPS_HOME` too).

The newest 5,000 messages are kept. The file is written whole (to a temporary file, then
renamed) at most twice a second while the chats change, and once more at shutdown.

Usage::

    history = ChatHistory(emulator, settings.home)
    history.load()
    history.start(); ...; await history.stop()
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.sandbox.record import Message
from storage.tasks import cancel

if TYPE_CHECKING:
    from bot.sandbox.emulator import LarkEmulator

log = logging.getLogger(__name__)
SAVE_EVERY = 0.5  # seconds between writes while the chats change
KEEP = 5000  # the newest messages kept (a sandbox, not an archive)
_FIELDS = {f.name for f in fields(Message)} - {"card_history", "card_times"}


class ChatHistory:
    def __init__(self, emulator: LarkEmulator, home: Path) -> None:
        self.emulator = emulator
        self.store = emulator.store
        self.path = home / "sandbox" / "chats.json"
        self._task: asyncio.Task[None] | None = None

    def load(self) -> int:
        """Put the kept messages back; how many (0 when there is no history or it is unreadable:
        the sandbox then starts empty, logging why)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            messages = [_message(item) for item in raw["messages"]]
        except FileNotFoundError:
            return 0
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("sandbox history %s unreadable, starting empty: %s", self.path, exc)
            return 0
        self.emulator.restore(messages)
        return len(messages)

    def snapshot(self) -> str:
        """The chats as the file keeps them (taken on the event loop, where they change)."""
        kept = [
            {key: value for key, value in asdict(message).items() if key in _FIELDS}
            for message in self.store.messages()[-KEEP:]
        ]
        return json.dumps({"messages": kept}, ensure_ascii=False)

    def write(self, snapshot: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(snapshot, encoding="utf-8")
        os.replace(temporary, self.path)

    def save(self) -> None:
        self.write(self.snapshot())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._keep())

    async def _keep(self) -> None:
        while True:
            await self.store.changed()
            await asyncio.sleep(SAVE_EVERY)  # gathers a burst of changes into one write
            try:
                await asyncio.to_thread(self.write, self.snapshot())
            except (OSError, TypeError, ValueError) as exc:
                log.warning("sandbox history not saved: %s", exc)

    async def stop(self) -> None:
        await cancel(self._task)
        try:
            self.save()
        except (OSError, TypeError, ValueError) as exc:
            log.warning("sandbox history not saved at shutdown: %s", exc)


def _message(item: dict[str, Any]) -> Message:
    message = Message(**{key: value for key, value in item.items() if key in _FIELDS})
    if message.card is not None:
        message.card_history = [message.card]
    return message
