"""`LarkEmulator`: a protocol-faithful Lark/Feishu server for the real `lark_oapi` SDK.

Point the SDK at it with `domain=http://127.0.0.1:PORT`: REST calls, the long-connection
WebSocket (protobuf frames) and the sandbox control API are all served by `routes()`; tests can
run it standalone with `bot.sandbox.server.serve_emulator`. It never imports lark_oapi.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Literal

from starlette.routing import BaseRoute, WebSocketRoute

from bot.sandbox.cardcheck import card_problem
from bot.sandbox.control import ControlApi
from bot.sandbox.degraded import degraded_card
from bot.sandbox.documents import Documents
from bot.sandbox.envelopes import (
    App,
    card_action_event,
    mention,
    message_event,
    new_id,
    people_keys,
    user_content,
)
from bot.sandbox.gateway import WS_PATH, Gateway
from bot.sandbox.guard import Guard
from bot.sandbox.model import (
    DEFAULT_CHATS,
    DEFAULT_USERS,
    AckRecord,
    Chat,
    ClickResult,
    ClientConfig,
    DeliveryResult,
    User,
    p2p_chat,
)
from bot.sandbox.paging import Paging
from bot.sandbox.record import ApiCall, Duplicate, Message, ToastRecord, Transcript
from bot.sandbox.rest import RestApi
from bot.sandbox.signin import SignIns

log = logging.getLogger(__name__)


class LarkEmulator:
    """In-memory Lark tenant with one bot app, preset users and chats, and full recording.

    With several long connections open (replicas), each event goes to one of them at random,
    as Lark does; `seed` makes the choices reproducible, `redelivery_delays` spaces the
    redeliveries of unacknowledged events (see `bot.sandbox.gateway`)."""

    def __init__(
        self,
        *,
        app_id: str = "cli_sandbox",
        app_secret: str = "sandbox-secret",  # noqa: S107 - a fake app's fixed secret
        bot_open_id: str = "ou_larkops_bot",
        bot_name: str = "larkops",
        tenant_key: str = "736588c9260f175d",
        ack_deadline: float = 3.0,
        max_deliveries: int = 4,
        redelivery_delays: Sequence[float] = (),
        seed: int | None = None,
        fragment_size: int = 65536,
        client_config: ClientConfig | None = None,
        users: Iterable[User] | None = None,
        chats: Iterable[Chat] | None = None,
        token_ttl: int = 7200,
        chat_rate_limit: int = 5,
        app_rate_limit: int = 50,
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.sign_ins = SignIns()  # Feishu sign-in (bot.sandbox.signin)
        self.tenant_key = tenant_key
        self.bot = User(bot_open_id, bot_name)
        self.ack_deadline = ack_deadline
        self.max_deliveries = max_deliveries
        self.redelivery_delays = tuple(redelivery_delays)
        self.fragment_size = fragment_size
        self.client_config = client_config or ClientConfig()
        self.users: dict[str, User] = {u.open_id: u for u in (users or DEFAULT_USERS)}
        self.chats: dict[str, Chat] = {c.chat_id: c for c in (chats or DEFAULT_CHATS)}
        for user in self.users.values():
            if not any(c.peer == user.open_id for c in self.chats.values()):
                chat = p2p_chat(user)
                self.chats[chat.chat_id] = chat
        self.calls: list[ApiCall] = []
        self.acks: list[AckRecord] = []
        self.duplicates: list[Duplicate] = []
        self.toasts: list[ToastRecord] = []
        self.store = Transcript()
        self.paging = Paging()  # urgent notices and created groups (`bot.sandbox.paging`)
        self.documents = Documents()  # docx documents (`bot.sandbox.documents`)
        self.guard = Guard(
            token_ttl=token_ttl, chat_rate_limit=chat_rate_limit, app_rate_limit=app_rate_limit
        )
        # which connection gets each event: random like Lark, reproducible with a seed
        self.gateway = Gateway(self, random.Random(seed))  # noqa: S311 - not a secret
        self._rest = RestApi(self)
        self._control = ControlApi(self)
        self._tasks: set[asyncio.Task[Any]] = set()

    def people(self, *, union: bool = False) -> set[str]:
        """The ids a card may mention: the users' open_ids and user_ids, and the bot's; with
        `union` their union_ids too (a text message's `<at user_id=…>` takes any of the three)."""
        found = {self.bot.open_id}
        for user in self.users.values():
            found.update((user.open_id, user.user_id, *((user.union_id,) if union else ())))
        return found

    @property
    def identity(self) -> tuple[str, str]:
        """(app_id, tenant_key)."""
        return self.app_id, self.tenant_key

    @property
    def connections(self) -> int:
        """How many SDK WebSockets are connected now."""
        return len(self.gateway.connections)

    def routes(self) -> list[BaseRoute]:
        """REST, WebSocket and control-API routes, to mount at any Starlette app's root."""
        socket = WebSocketRoute(WS_PATH, self.gateway.serve)
        return [*self._rest.routes(), socket, *self._control.routes()]

    def restore(self, messages: list[Message]) -> None:
        """Put back the messages of an earlier run (a restarted sandbox), their send `uuid`s
        still deduplicated."""
        self.store.restore(messages)
        for message in messages:
            self._rest.remember(message)

    def recall(self, message_id: str) -> None:
        """Take a message back, as its sender or a group administrator does in the client: it
        stays listed (`deleted` true), and replying to or updating it is refused (230011)."""
        message = self.store.get(message_id)
        if message is None:
            raise ValueError(f"unknown message {message_id!r}")
        message.recalled = True
        self.store.touch()

    def transcript(self, chat_id: str) -> list[Message]:
        """The chat's messages (users' and the bot's) in order."""
        return self.store.chat(chat_id)

    def find_chat(self, receive_id: str, *, by_open_id: bool = False) -> Chat | None:
        """The chat with this id, or with `by_open_id` the bot's p2p chat with that user."""
        if by_open_id:
            return next((c for c in self.chats.values() if c.peer == receive_id), None)
        return self.chats.get(receive_id)

    def user(self, who: str | User) -> User:
        """A preset user by open_id (a User passes through); ValueError when unknown."""
        if isinstance(who, User):
            return who
        if who == self.bot.open_id:
            return self.bot
        if who not in self.users:
            raise ValueError(f"unknown user {who!r}")
        return self.users[who]

    def fail_next(
        self,
        path_prefix: str,
        *,
        status: int,
        code: int,
        count: int = 1,
        headers: dict[str, str] | None = None,
        seconds: float | None = None,
    ) -> None:
        """Answer the next `count` requests under `path_prefix` with this Lark error (with
        `seconds`: every request under it for that many seconds)."""
        self.guard.fail_next(
            path_prefix, status=status, code=code, count=count, headers=headers, seconds=seconds
        )

    def hold_next(self, path_prefix: str, seconds: float) -> None:
        """Let the next request under `path_prefix` take effect only `seconds` after it
        arrived (a slow Lark); a client that gives up meanwhile does not stop it."""
        self.guard.hold_next(path_prefix, seconds)

    def revoke_tokens(self) -> None:
        """Invalidate every issued tenant token (next use gets 99991663)."""
        self.guard.revoke_tokens()

    async def drop_connections(self) -> int:
        """Close every SDK socket; the SDK reconnects by itself. Returns how many closed."""
        return await self.gateway.drop_connections()

    def _user_message(
        self,
        chat_id: str,
        sender: str | User,
        text: str,
        *,
        mention_bot: bool,
        msg_type: Literal["text", "post"],
        chat_type: str | None,
        sender_type: Literal["user", "app"],
        event_id: str | None,
        message_id: str | None,
        parent_id: str | None,
    ) -> tuple[Message, dict[str, Any]]:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ValueError(f"unknown chat {chat_id!r}")
        author = self.user(sender)
        mentioned = self.bot if mention_bot else None
        others = people_keys(text, list(self.users.values())) if msg_type == "text" else []
        content, display = user_content(msg_type, text, mentioned, others)
        message = Message(
            seq=self.store.next_seq(),
            message_id=message_id or new_id("om_"),
            chat_id=chat_id,
            sender_id=author.open_id,
            sender_name=author.name,
            sender_type="user" if sender_type == "user" else "bot",
            msg_type=msg_type,
            content=content,
            text=display,
        )
        parent = self.store.get(parent_id) if parent_id else None
        if parent is not None:
            message.parent_id = parent.message_id
            message.root_id = parent.root_id or parent.message_id
            message.thread_id = parent.thread_id
        if mentioned:
            message.mentions = [mention(mentioned, self.tenant_key)]
        message.mentions += [mention(person, self.tenant_key, key) for key, person in others]
        self.store.add(message)
        envelope = message_event(
            App(self.app_id, self.tenant_key),
            message,
            author,
            sender_type=sender_type,
            chat_type=chat_type or chat.chat_type,
            mentions=message.mentions,
            event_id=event_id,
        )
        return message, envelope

    async def send_message(
        self,
        chat_id: str,
        sender: str | User,
        text: str,
        *,
        mention_bot: bool = True,
        msg_type: Literal["text", "post"] = "text",
        chat_type: str | None = None,
        sender_type: Literal["user", "app"] = "user",
        event_id: str | None = None,
        message_id: str | None = None,
        parent_id: str | None = None,
    ) -> DeliveryResult:
        """Record a user's message and deliver im.message.receive_v1; waits for the outcome."""
        message, envelope = self._user_message(
            chat_id,
            sender,
            text,
            mention_bot=mention_bot,
            msg_type=msg_type,
            chat_type=chat_type,
            sender_type=sender_type,
            event_id=event_id,
            message_id=message_id,
            parent_id=parent_id,
        )
        return await self._deliver(envelope, message.message_id)

    def record_message(
        self, chat_id: str, sender: str | User, text: str, *, mention_bot: bool = True
    ) -> dict[str, Any]:
        """Record a user's text message and return its `im.message.receive_v1` envelope without
        delivering it (HTTP event delivery: the caller POSTs it to the bot's request URL)."""
        _, envelope = self._user_message(
            chat_id,
            sender,
            text,
            mention_bot=mention_bot,
            msg_type="text",
            chat_type=None,
            sender_type="user",
            event_id=None,
            message_id=None,
            parent_id=None,
        )
        return envelope

    async def send_card(
        self,
        chat_id: str,
        sender: str | User,
        card: dict[str, Any],
        *,
        event_id: str | None = None,
    ) -> DeliveryResult:
        """Another app (an alert bot) posts `card` in a chat; waits for the outcome. As in
        Lark, the event carries only the degraded render (`bot.sandbox.degraded`: the upgrade
        notice for a JSON 2.0 card); `GET /open-apis/im/v1/messages/:id?card_msg_content_type=
        user_card_content` returns the card itself."""
        message, envelope = self._card_message(chat_id, sender, card, event_id)
        return await self._deliver(envelope, message.message_id)

    def post_card(self, chat_id: str, sender: str | User, card: dict[str, Any]) -> Message:
        """Like send_card but delivers in the background; returns the recorded message."""
        message, envelope = self._card_message(chat_id, sender, card, None)
        self._spawn(self._deliver(envelope, message.message_id))
        return message

    def _card_message(
        self, chat_id: str, sender: str | User, card: dict[str, Any], event_id: str | None
    ) -> tuple[Message, dict[str, Any]]:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ValueError(f"unknown chat {chat_id!r}")
        author = self.user(sender)
        message = Message(
            seq=self.store.next_seq(),
            message_id=new_id("om_"),
            chat_id=chat_id,
            sender_id=author.open_id,
            sender_name=author.name,
            sender_type="bot",
            msg_type="interactive",
            content=json.dumps(degraded_card(card), ensure_ascii=False),
            card=card,
        )
        self.store.add(message)
        envelope = message_event(
            App(self.app_id, self.tenant_key),
            message,
            author,
            sender_type="app",
            chat_type=chat.chat_type,
            mentions=[],
            event_id=event_id,
        )
        return message, envelope

    def post_message(
        self, chat_id: str, sender: str | User, text: str, *, mention_bot: bool = True
    ) -> Message:
        """Like send_message but delivers in the background; returns the recorded message."""
        message, envelope = self._user_message(
            chat_id,
            sender,
            text,
            mention_bot=mention_bot,
            msg_type="text",
            chat_type=None,
            sender_type="user",
            event_id=None,
            message_id=None,
            parent_id=None,
        )
        self._spawn(self._deliver(envelope, message.message_id))
        return message

    async def deliver_raw(self, payload: bytes | dict[str, Any]) -> DeliveryResult:
        """Push any envelope (even malformed bytes) through the delivery machinery."""
        if isinstance(payload, dict):
            header = payload.get("header")
            event_id = header.get("event_id", "") if isinstance(header, dict) else ""
            data = json.dumps(payload, ensure_ascii=False).encode()
        else:
            event_id, data = new_id("raw_"), payload
        return await self.gateway.deliver(data, str(event_id))

    async def _deliver(self, envelope: dict[str, Any], message_id: str) -> DeliveryResult:
        data = json.dumps(envelope, ensure_ascii=False).encode()
        event_id = envelope["header"]["event_id"]
        return await self.gateway.deliver(data, event_id, message_id)

    async def click(
        self,
        message_id: str,
        operator: str | User,
        value: Any,
        *,
        form_value: dict[str, Any] | None = None,
        name: str = "",
    ) -> ClickResult:
        """Click a button of the bot card `message_id`: deliver card.action.trigger, apply the
        callback's card to the message and record its toast."""
        message = self.store.get(message_id)
        if message is None or message.msg_type != "interactive":
            raise ValueError(f"{message_id!r} is not a card message")
        user = self.user(operator)
        token = self.guard.issue_card_token(message_id)
        envelope = card_action_event(
            App(self.app_id, self.tenant_key),
            message,
            user,
            token=token,
            value=value,
            name=name,
            form_value=form_value,
        )
        result = await self._deliver(envelope, message_id)
        response = result.response if isinstance(result.response, dict) else {}
        toast = response.get("toast") if isinstance(response.get("toast"), dict) else None
        card = _callback_card(response.get("card"))
        problem = card_problem(card, self.people()) if card is not None else None
        if problem is not None:  # Feishu keeps the card as it was
            card = None
        if card is not None:
            message.set_card(card)
            self.store.touch()
        if toast is not None:
            self.toasts.append(
                ToastRecord(
                    message_id,
                    user.open_id,
                    str(toast.get("type", "info")),
                    str(toast.get("content", "")),
                    result.acks[-1].at if result.acks else 0.0,
                )
            )
        refused = problem.response() if problem else ""
        return ClickResult(toast, card, result.latency_ms, result.response, result, refused)

    async def wait_for_bot_message(
        self,
        chat_id: str,
        predicate: Callable[[Message], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented API
        *,
        after: int = 0,
    ) -> Message:
        """The first bot message in the chat with seq > `after` matching `predicate` (its
        current state, so card updates count), waiting up to `timeout` seconds."""

        def wanted(message: Message) -> bool:
            if message.sender_id != self.bot.open_id or message.seq <= after:
                return False
            return predicate is None or predicate(message)

        async with asyncio.timeout(timeout):
            return await self.store.wait_for(chat_id, wanted)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("sandbox delivery failed: %r", task.exception())

    async def aclose(self) -> None:
        """Cancel background deliveries and close all sockets."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.drop_connections()


def _callback_card(card: Any) -> dict[str, Any] | None:
    """The card of a callback response: `{"type":"raw","data":...}` or a template."""
    if not isinstance(card, dict):
        return None
    data = card.get("data")
    if isinstance(data, str):
        with contextlib.suppress(ValueError):
            data = json.loads(data)
    if card.get("type") == "raw" and isinstance(data, dict):
        return data
    return card if card.get("type") == "template" else None
