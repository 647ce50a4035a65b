"""What the emulator remembers: the chat transcript (with card versions) and call/ack logs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.model import SenderType


def now_ms() -> int:
    """Wall-clock milliseconds, Lark's timestamp unit."""
    return int(time.time() * 1000)


@dataclass
class Message:
    """One message in a chat, from a user or the bot; `card` is the current card version."""

    seq: int
    message_id: str
    chat_id: str
    sender_id: str
    sender_name: str
    sender_type: SenderType
    msg_type: str
    content: str
    text: str = ""
    card: dict[str, Any] | None = None
    card_history: list[dict[str, Any]] = field(default_factory=list)
    card_times: list[float] = field(default_factory=list)  # time.monotonic() of each version
    parent_id: str = ""
    root_id: str = ""
    thread_id: str = ""
    mentions: list[dict[str, Any]] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)  # whom a bot's text/post @-mentions
    created_at: int = field(default_factory=now_ms)
    updated_at: int = 0
    uuid: str | None = None
    recalled: bool = False  # taken back by its sender or an administrator: still listed

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    def set_card(self, card: dict[str, Any]) -> None:
        """Make `card` the current version (the old one stays in `card_history`)."""
        self.card = card
        self.card_history.append(card)
        self.card_times.append(time.monotonic())
        self.content = json.dumps(card, ensure_ascii=False)
        self.updated_at = max(now_ms(), self.updated_at + 1)

    def to_lark(self, app_id: str, tenant_key: str) -> dict[str, Any]:
        """The message object of Lark's im/v1 responses."""
        if self.sender_type == "bot":
            sender = {"id": app_id, "id_type": "app_id", "sender_type": "app"}
        else:
            sender = {"id": self.sender_id, "id_type": "open_id", "sender_type": "user"}
        sender["tenant_key"] = tenant_key
        return {
            "message_id": self.message_id,
            "root_id": self.root_id,
            "parent_id": self.parent_id,
            "thread_id": self.thread_id,
            "msg_type": self.msg_type,
            "create_time": str(self.created_at),
            "update_time": str(self.updated_at),
            "deleted": self.recalled,
            "updated": self.updated_at != self.created_at,
            "chat_id": self.chat_id,
            "sender": sender,
            "body": {"content": self.content},
            "mentions": [],
            "upper_message_id": "",
        }

    def to_view(self) -> dict[str, Any]:
        """The control API's shape for the web chat UI."""
        return {
            "seq": self.seq,
            "message_id": self.message_id,
            "sender": {
                "open_id": self.sender_id,
                "name": self.sender_name,
                "type": self.sender_type,
            },
            "msg_type": self.msg_type,
            "text": self.text,
            "card": self.card,
            "parent_id": self.parent_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class ApiCall:
    """One REST request and how it was answered (`code` is the Lark code in the body)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    code: int | None
    at: float


@dataclass
class Duplicate:
    """A send/reply replayed with an already used `uuid` (nothing new was created)."""

    uuid: str
    message_id: str
    path: str
    at: float


@dataclass
class ToastRecord:
    """A toast a card callback showed to the clicking user."""

    message_id: str
    operator: str
    type: str
    content: str
    at: float


class Transcript:
    """All messages by id and by chat, with waiting for changes."""

    def __init__(self) -> None:
        self._by_id: dict[str, Message] = {}
        self._by_chat: dict[str, list[Message]] = {}
        self._seq = 0
        self._changed = asyncio.Event()

    def next_seq(self) -> int:
        """A fresh, increasing sequence number."""
        self._seq += 1
        return self._seq

    def add(self, message: Message) -> Message:
        """Store a new message and wake waiters."""
        self._by_id[message.message_id] = message
        self._by_chat.setdefault(message.chat_id, []).append(message)
        self.touch()
        return message

    def get(self, message_id: str) -> Message | None:
        """The message with this id, if any."""
        return self._by_id.get(message_id)

    def chat(self, chat_id: str) -> list[Message]:
        """The chat's messages in order (a copy)."""
        return list(self._by_chat.get(chat_id, []))

    def touch(self) -> None:
        """Signal that something changed (new message or card update)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        """Return at the next change (a new message or a card update)."""
        await self._changed.wait()

    def messages(self) -> list[Message]:
        """Every message, oldest first."""
        return sorted(self._by_id.values(), key=lambda message: message.seq)

    def restore(self, messages: list[Message]) -> None:
        """Put back messages kept from an earlier run (their ids and order kept)."""
        for message in sorted(messages, key=lambda m: m.seq):
            if message.message_id not in self._by_id:
                self._by_id[message.message_id] = message
                self._by_chat.setdefault(message.chat_id, []).append(message)
            self._seq = max(self._seq, message.seq)
        self.touch()

    async def wait_for(self, chat_id: str, predicate: Callable[[Message], bool]) -> Message:
        """The first message of the chat matching `predicate` (bound it with asyncio.timeout)."""
        while True:
            changed = self._changed
            for message in self.chat(chat_id):
                if predicate(message):
                    return message
            await changed.wait()
