"""The emulator's paging side: urgent notices (加急) and group creation.

- `PATCH /open-apis/im/v1/messages/{message_id}/urgent_app|urgent_sms|urgent_phone
  ?user_id_type=open_id` with `{"user_id_list": [...]}`: only a message the bot sent; people not
  in its chat come back in `invalid_user_id_list`. Refusals as Feishu answers them (HTTP 400):
  the tenant's urgent quota used up (`URGENT_QUOTA`), the app without the channel's scope
  (`SCOPE_MISSING`), a group where members may not send urgent notices (`URGENT_FORBIDDEN`).
- `POST /open-apis/im/v1/chats?user_id_type=open_id[&uuid=…]`: a private group with the listed
  people and the bot; a repeated `uuid` gets the same group.
- `DELETE /open-apis/im/v1/chats/{chat_id}`: dissolve a group the bot made.
- `POST /open-apis/im/v1/pins` with `{"message_id": …}`: pin a message in its chat.
- `GET /open-apis/contact/v3/users/find_by_department?department_id=…`: a department's direct
  members (schedules may rotate through a `dept:`), paged.

    emulator.paging.quota["urgent_phone"] = 0          # the next phone call is refused
    emulator.paging.revoke("urgent_sms")               # the app lacks the SMS scope
    emulator.paging.urgents                            # every urgent notice that got through
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from bot.sandbox.envelopes import new_id
from bot.sandbox.guard import LarkError
from bot.sandbox.model import Chat
from bot.sandbox.record import now_ms

if TYPE_CHECKING:
    from bot.sandbox.emulator import LarkEmulator

URGENT_KINDS = ("urgent_app", "urgent_sms", "urgent_phone")
URGENT_QUOTA = 230024  # 400: "Reach the upper limit of urgent message" (quota used up)
URGENT_FORBIDDEN = 230027  # 400: the group lets only its owner/managers send urgent notices
SCOPE_MISSING = 99991672  # 400: the app has not been granted the scope of this channel
FIELD_INVALID = 99992402
MESSAGE_GONE = 230011
NOT_BOT_MESSAGE = 230012  # the urgent pages: "Bot is NOT the sender of the message."
NOT_OWNER = 232014  # 400: only the group's owner may dissolve it
_SCOPES = {
    "urgent_app": "im:message.urgent",
    "urgent_sms": "im:message.urgent:sms",
    "urgent_phone": "im:message.urgent:phone",
}


@dataclass(frozen=True)
class Urgent:
    """One urgent notice that got through."""

    kind: str
    message_id: str
    chat_id: str
    open_ids: tuple[str, ...]
    at: float


@dataclass
class Paging:
    """What the tenant allows and what was sent."""

    # notices left per kind (Feishu counts SMS and phone against the tenant's paid quota)
    quota: dict[str, int] = field(
        default_factory=lambda: {"urgent_app": 10_000, "urgent_sms": 100, "urgent_phone": 100}
    )
    scopes: set[str] = field(default_factory=lambda: set(URGENT_KINDS))
    urgents: list[Urgent] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # chat ids of the groups made
    pins: list[str] = field(default_factory=list)  # message ids pinned, in order
    dissolved: list[str] = field(default_factory=list)  # chat ids of the groups dissolved
    _uuids: dict[str, str] = field(default_factory=dict)

    def revoke(self, kind: str) -> None:
        """The app loses the scope of `kind` (its next notice is refused)."""
        self.scopes.discard(kind)

    def to(self, open_id: str) -> list[Urgent]:
        """The urgent notices that reached `open_id`."""
        return [u for u in self.urgents if open_id in u.open_ids]


async def urgent(emulator: LarkEmulator, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    kind = request.path_params["kind"]
    paging = emulator.paging
    if kind not in URGENT_KINDS:
        raise LarkError(404, 404, "404 page not found")
    if request.query_params.get("user_id_type") not in ("open_id", "user_id", "union_id"):
        raise LarkError(400, FIELD_INVALID, "field validation failed: user_id_type")
    wanted = body.get("user_id_list")
    if not isinstance(wanted, list) or not wanted or len(wanted) > 200:
        raise LarkError(400, FIELD_INVALID, "field validation failed: user_id_list")
    message = emulator.store.get(request.path_params["message_id"])
    if message is None:
        raise LarkError(400, MESSAGE_GONE, "The message was not found or has been recalled.")
    if message.sender_id != emulator.bot.open_id:  # another app's message is no more the bot's
        raise LarkError(400, NOT_BOT_MESSAGE, "Bot is NOT the sender of the message.")
    if kind not in paging.scopes:
        scope = _SCOPES[kind]
        raise LarkError(
            400,
            SCOPE_MISSING,
            f"Access denied. One of the following scopes is required: [{scope}].",
        )
    chat = emulator.chats[message.chat_id]
    if not chat.urgent_allowed:
        raise LarkError(400, URGENT_FORBIDDEN, "Lack of necessary permissions.")
    if paging.quota.get(kind, 0) < len(wanted):
        raise LarkError(400, URGENT_QUOTA, "Reach the upper limit of urgent message.")
    members = set(chat.members if chat.members is not None else emulator.users)
    if chat.chat_type == "p2p":
        members = {chat.peer}
    reached = tuple(str(w) for w in wanted if w in members)
    invalid = [str(w) for w in wanted if w not in members]
    if reached:
        paging.quota[kind] -= len(reached)
        paging.urgents.append(Urgent(kind, message.message_id, chat.chat_id, reached, time.time()))
        message.updated_at = max(now_ms(), message.updated_at + 1)  # the web chat redraws it
        emulator.store.touch()
    return {"code": 0, "msg": "success", "data": {"invalid_user_id_list": invalid}}


async def create_chat(
    emulator: LarkEmulator, request: Request, body: dict[str, Any]
) -> dict[str, Any]:
    paging = emulator.paging
    uuid = request.query_params.get("uuid") or ""
    if uuid and uuid in paging._uuids:
        chat = emulator.chats[paging._uuids[uuid]]
        return {"code": 0, "msg": "success", "data": _chat_data(chat, emulator)}
    name, people = body.get("name"), body.get("user_id_list") or []
    if not isinstance(name, str) or not name.strip() or not isinstance(people, list):
        raise LarkError(400, FIELD_INVALID, "field validation failed: name, user_id_list")
    if len(people) > 50:  # Feishu invites at most 50 people at creation
        raise LarkError(400, FIELD_INVALID, "field validation failed: user_id_list")
    members = tuple(str(p) for p in people if p in emulator.users)
    chat = Chat(new_id("oc_"), name[:60], "group", members=members)
    emulator.chats[chat.chat_id] = chat
    paging.created.append(chat.chat_id)
    if uuid:
        paging._uuids[uuid] = chat.chat_id
    return {"code": 0, "msg": "success", "data": _chat_data(chat, emulator)}


def _chat_data(chat: Chat, emulator: LarkEmulator) -> dict[str, Any]:
    return {
        "chat_id": chat.chat_id,
        "name": chat.name,
        "chat_mode": "group",
        "chat_type": "private",
        "owner_id": emulator.bot.open_id,
        "owner_id_type": "open_id",
        "tenant_key": emulator.tenant_key,
        "urgent_setting": "all_members" if chat.urgent_allowed else "only_owner",
    }


async def department_users(
    emulator: LarkEmulator, request: Request, body: dict[str, Any]
) -> dict[str, Any]:
    wanted = request.query_params.get("department_id") or ""
    size = request.query_params.get("page_size", "10")
    start = request.query_params.get("page_token") or "0"
    if not wanted or not size.isdigit() or not start.isdigit():
        raise LarkError(400, FIELD_INVALID, "field validation failed: department_id")
    users = [u for u in emulator.users.values() if wanted in u.departments]
    first, count = int(start), min(max(int(size), 1), 50)
    page = users[first : first + count]
    more = first + count < len(users)
    items = [{**u.ids(), "name": u.name, "department_ids": list(u.departments)} for u in page]
    data = {"items": items, "has_more": more, "page_token": str(first + count) if more else ""}
    return {"code": 0, "msg": "success", "data": data}


async def dissolve(
    emulator: LarkEmulator, request: Request, body: dict[str, Any]
) -> dict[str, Any]:
    chat_id = request.path_params["chat_id"]
    if chat_id not in emulator.paging.created:  # only the groups the bot owns
        raise LarkError(400, NOT_OWNER, "The operator is not the owner of the chat.")
    emulator.chats.pop(chat_id, None)
    emulator.paging.dissolved.append(chat_id)
    return {"code": 0, "msg": "success", "data": {}}


async def pin(emulator: LarkEmulator, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    message = emulator.store.get(str(body.get("message_id") or ""))
    if message is None:
        raise LarkError(400, MESSAGE_GONE, "The message was not found or has been recalled.")
    emulator.paging.pins.append(message.message_id)
    pin = {
        "message_id": message.message_id,
        "chat_id": message.chat_id,
        "operator_id": emulator.bot.open_id,
        "operator_id_type": "open_id",
        "create_time": str(int(time.time() * 1000)),
    }
    return {"code": 0, "msg": "success", "data": {"pin": pin}}


Endpoint = Callable[["LarkEmulator", Request, Any], Awaitable[dict[str, Any]]]
Handler = Callable[[Request, Any], Awaitable[dict[str, Any]]]


def bound(emulator: LarkEmulator, endpoint: Endpoint) -> Handler:
    """`endpoint` as a REST handler of this emulator (for `RestApi._wrap`)."""

    async def answer(request: Request, body: Any) -> dict[str, Any]:
        return await endpoint(emulator, request, body)

    return answer


def routes(emulator: LarkEmulator, wrap: Callable[[Handler], Any]) -> list[BaseRoute]:
    """The routes of this module (the REST side mounts them before its catch-all)."""
    return [
        Route(
            "/open-apis/im/v1/messages/{message_id}/{kind}",
            wrap(bound(emulator, urgent)),
            methods=["PATCH"],
        ),
        Route("/open-apis/im/v1/chats", wrap(bound(emulator, create_chat)), methods=["POST"]),
        Route(
            "/open-apis/im/v1/chats/{chat_id}", wrap(bound(emulator, dissolve)), methods=["DELETE"]
        ),
        Route("/open-apis/im/v1/pins", wrap(bound(emulator, pin)), methods=["POST"]),
        Route(
            "/open-apis/contact/v3/users/find_by_department",
            wrap(bound(emulator, department_users)),
            methods=["GET"],
        ),
    ]
