"""The sandbox control API (JSON under /sandbox/api) the web chat UI talks to."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.sandbox.record import now_ms

if TYPE_CHECKING:
    from bot.sandbox.emulator import LarkEmulator

PREFIX = "/sandbox/api"


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ControlApi:
    """Routes to read the tenant, read/post chat messages, post an alert bot's card and click
    card buttons."""

    def __init__(self, emulator: LarkEmulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[BaseRoute]:
        """The control routes (absolute paths under /sandbox/api)."""
        return [
            Route(f"{PREFIX}/state", self.state, methods=["GET"]),
            Route(f"{PREFIX}/chats/{{chat_id}}/messages", self.messages, methods=["GET"]),
            Route(f"{PREFIX}/chats/{{chat_id}}/messages", self.post, methods=["POST"]),
            Route(f"{PREFIX}/chats/{{chat_id}}/cards", self.post_card, methods=["POST"]),
            Route(f"{PREFIX}/messages/{{message_id}}/actions", self.action, methods=["POST"]),
        ]

    async def state(self, request: Request) -> Response:
        """`GET /state`: the bot, the users and the chats."""
        emu = self.emulator
        return JSONResponse(
            {
                "bot": {"open_id": emu.bot.open_id, "name": emu.bot.name},
                "users": [{"open_id": u.open_id, "name": u.name} for u in emu.users.values()],
                "chats": [
                    {"chat_id": c.chat_id, "name": c.name, "type": c.chat_type}
                    for c in emu.chats.values()
                ],
            }
        )

    async def messages(self, request: Request) -> Response:
        """`GET /chats/{id}/messages?after=SEQ&since=MS`: messages with seq > after, plus
        (when `since` is given) older ones updated after `since` ms; all when neither."""
        chat_id = request.path_params["chat_id"]
        if chat_id not in self.emulator.chats:
            return _error(404, f"unknown chat {chat_id}")
        try:
            after = int(request.query_params.get("after", "0"))
            since = int(request.query_params.get("since", "-1"))
        except ValueError:
            return _error(400, "after and since must be integers")
        now = now_ms()
        urgent: dict[str, list[dict[str, Any]]] = {}
        for notice in self.emulator.paging.urgents:  # 加急 shown on the message, as Lark does
            urgent.setdefault(notice.message_id, []).append(
                {"kind": notice.kind, "open_ids": list(notice.open_ids)}
            )
        picked = [
            {**m.to_view(), "urgent": urgent.get(m.message_id, [])}
            for m in self.emulator.transcript(chat_id)
            if m.seq > after or (since >= 0 and m.updated_at > since)
        ]
        return JSONResponse({"messages": picked, "now": now})

    async def post(self, request: Request) -> Response:
        """`POST /chats/{id}/messages` {"sender","text"}: a user types into the chat.

        The bot is mentioned when the text starts with "@<bot name>" (which is stripped);
        p2p chats never carry a mention, as in Lark.
        """
        emu = self.emulator
        chat = emu.chats.get(request.path_params["chat_id"])
        body = await _body(request)
        sender, text = body.get("sender"), body.get("text")
        if chat is None:
            return _error(404, "unknown chat")
        if not isinstance(sender, str) or sender not in emu.users:
            return _error(400, "sender must be the open_id of a sandbox user")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "text must be a non-empty string")
        tag = f"@{emu.bot.name}"
        mentioned = text == tag or text.startswith(tag + " ")
        if mentioned:
            text = text[len(tag) :].strip()
        message = emu.post_message(
            chat.chat_id, sender, text, mention_bot=mentioned and chat.chat_type == "group"
        )
        return JSONResponse({"message_id": message.message_id})

    async def post_card(self, request: Request) -> Response:
        """`POST /chats/{id}/cards` {"sender","card"}: another app (an alert bot) posts a card,
        delivered to the bot in the background as Lark delivers it (`LarkEmulator.post_card`)."""
        emu = self.emulator
        chat = emu.chats.get(request.path_params["chat_id"])
        body = await _body(request)
        sender, card = body.get("sender"), body.get("card")
        if chat is None:
            return _error(404, "unknown chat")
        if not isinstance(sender, str) or sender not in emu.users:
            return _error(400, "sender must be the open_id of a sandbox user")
        if not isinstance(card, dict):
            return _error(400, "card must be a card JSON object")
        message = emu.post_card(chat.chat_id, sender, card)
        return JSONResponse({"message_id": message.message_id})

    async def action(self, request: Request) -> Response:
        """`POST /messages/{id}/actions` {"operator","value","form_value"?,"name"?}: a click;
        answers once the bot acked: {"toast", "card_updated"}."""
        emu = self.emulator
        message = emu.store.get(request.path_params["message_id"])
        body = await _body(request)
        operator = body.get("operator")
        form_value = body.get("form_value")
        if message is None or message.msg_type != "interactive":
            return _error(404, "no card message with that id")
        if not isinstance(operator, str) or operator not in emu.users:
            return _error(400, "operator must be the open_id of a sandbox user")
        if form_value is not None and not isinstance(form_value, dict):
            return _error(400, "form_value must be an object")
        timeout = emu.ack_deadline * emu.max_deliveries + 1.0
        try:
            async with asyncio.timeout(timeout):
                result = await emu.click(
                    message.message_id,
                    operator,
                    body.get("value"),
                    form_value=form_value,
                    name=str(body.get("name") or ""),
                )
        except TimeoutError:
            return _error(504, "the bot did not answer the card callback")
        if not result.delivery.acked:
            return _error(502, f"the bot's callback failed (ack code {result.delivery.ack_code})")
        return JSONResponse({"toast": result.toast, "card_updated": result.card is not None})
