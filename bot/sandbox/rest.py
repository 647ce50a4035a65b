"""The REST side: long-connection endpoint, tokens, bot info, messages, card updates, and the
membership lookups roles use (a user's departments, a group's members). Urgent notices, groups,
pins and department members are in `bot.sandbox.paging`, documents and tasks in
`bot.sandbox.documents` (their routes are mounted here).

Every request is recorded in `emulator.calls`; errors come back Lark-shaped, {"code","msg"}
with the HTTP status Lark uses (see `guard.py` for the codes).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.sandbox import documents, paging, signin
from bot.sandbox.cardcheck import TOO_LONG, card_problem
from bot.sandbox.envelopes import content_text, new_id
from bot.sandbox.gateway import WS_PATH
from bot.sandbox.guard import LarkError
from bot.sandbox.messagecheck import content_problem, mentioned
from bot.sandbox.model import Chat
from bot.sandbox.record import ApiCall, Duplicate, Message, now_ms

if TYPE_CHECKING:
    from bot.sandbox.emulator import LarkEmulator

FIELD_INVALID = 99992402  # 400: missing/invalid parameter
BAD_CONTENT = 230001  # 400: content is not valid JSON of the msg_type's shape
INVALID_PARAMETER = "Your request contains an invalid request parameter."  # 230001's msg
NOT_IN_CHAT = 230002  # 400: unknown chat / the bot is not in it
MESSAGE_GONE = 230011  # 400: message not found (or recalled)
NOT_SENDER = 230012  # 400: "Bot is NOT the sender of the message." (the im-v1 urgent and
# read_users pages; the patch page lists no code for another sender's card: inferred)
TOO_OLD = 230031  # 400: a card is updated only within 14 days of its sending
# im-v1 message patch ("更新应用发送的消息卡片", 使用限制 and error table): "仅支持更新 14 天内
# 发送的消息", 230031 "Message can only be modified within 14 days after sending."; 230011
# "The message is recalled." for a recalled one (reply answers the same: 仅支持更新未撤回的卡片)
UPDATE_WINDOW_MS = 14 * 24 * 3600 * 1000
APP_ID_INVALID = 10003  # 400: token request for another app
USER_UNKNOWN = 41050  # 400: the user is not in the app's contact scope (or does not exist)
SECRET_INVALID = 10014  # 400 (token) / 200 (ws endpoint): app secret invalid
UUID_TTL = 3600.0
MSG_TYPES = ("text", "post", "interactive")
# bytes of `content` Feishu takes (im-v1 message create: text 150 KB, post and card 30 KB; a
# card's limit is judged by `cardcheck`), answered 230025 above
CONTENT_LIMITS = {"text": 150 * 1024, "post": 30 * 1024}

Handler = Callable[[Request, Any], Awaitable[dict[str, Any]]]


def _secretless(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: "***" if k in ("app_secret", "AppSecret") else v for k, v in body.items()}
    return body


class RestApi:
    """Starlette routes answering like open.feishu.cn does."""

    def __init__(self, emulator: LarkEmulator) -> None:
        self.emulator = emulator
        self._uuids: dict[str, tuple[str, float]] = {}

    def routes(self) -> list[BaseRoute]:
        """The REST routes (mount them at the application root)."""
        msg = "/open-apis/im/v1/messages"
        every = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return [
            Route("/callback/ws/endpoint", self._wrap(self.ws_endpoint, False), methods=["POST"]),
            Route(
                "/open-apis/auth/v3/tenant_access_token/internal",
                self._wrap(self.tenant_token, False),
                methods=["POST"],
            ),
            Route(
                "/open-apis/auth/v3/app_access_token/internal",
                self._wrap(self.app_token, False),
                methods=["POST"],
            ),
            Route("/open-apis/bot/v3/info", self._wrap(self.bot_info), methods=["GET"]),
            Route(msg, self._wrap(self.create_message), methods=["POST"]),
            Route(msg + "/{message_id}/reply", self._wrap(self.reply_message), methods=["POST"]),
            Route(msg + "/{message_id}", self._wrap(self.get_message), methods=["GET"]),
            Route(msg + "/{message_id}", self._wrap(self.patch_message), methods=["PATCH"]),
            Route(
                "/open-apis/interactive/v1/card/update",
                self._wrap(self.card_update),
                methods=["POST"],
            ),
            # paging, groups, documents, tasks (before /users/{user_id}: find_by_department)
            *paging.routes(self.emulator, self._wrap),
            *documents.routes(self.emulator, self._wrap),
            *signin.routes(self.emulator),  # Feishu sign-in (OAuth) for the console
            Route(
                "/open-apis/contact/v3/users/{user_id}", self._wrap(self.get_user), methods=["GET"]
            ),
            Route(
                "/open-apis/im/v1/chats/{chat_id}/members",
                self._wrap(self.chat_members),
                methods=["GET"],
            ),
            Route("/open-apis/{rest:path}", self._wrap(self.not_found), methods=every),
        ]

    def _wrap(
        self, handler: Handler, auth: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            path = request.url.path
            guard = self.emulator.guard
            status, headers = 200, {}
            hold = guard.take_hold(path)
            if hold:
                guard.holding += 1
                try:
                    await asyncio.sleep(hold)
                finally:
                    guard.holding -= 1
            try:
                guard.take_fault(path)
                if path.startswith("/open-apis/"):
                    guard.hit_app()
                if auth:
                    guard.check_token(request.headers.get("authorization"))
                if raw and not isinstance(body, dict):
                    raise LarkError(400, FIELD_INVALID, "request body is not a JSON object")
                payload = await handler(request, body or {})
            except LarkError as exc:
                status, headers = exc.status, exc.headers
                payload = {"code": exc.code, "msg": exc.msg}
            code = payload.get("code")
            self.emulator.calls.append(
                ApiCall(
                    request.method,
                    path,
                    dict(request.query_params),
                    _secretless(body),
                    status,
                    code if isinstance(code, int) else None,
                    time.time(),
                )
            )
            return _lark_response(payload, status, headers)

        return endpoint

    async def ws_endpoint(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /callback/ws/endpoint`: hand out a WebSocket URL plus the ClientConfig."""
        emu = self.emulator
        if body.get("AppID") != emu.app_id or body.get("AppSecret") != emu.app_secret:
            return {"code": SECRET_INVALID, "msg": "app id or app secret invalid", "data": None}
        device_id, service_id = emu.gateway.open_ticket()
        scheme = "wss" if request.url.scheme in ("https", "wss") else "ws"
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        url = f"{scheme}://{host}{WS_PATH}?device_id={device_id}&service_id={service_id}"
        config = emu.client_config.to_json()
        return {"code": 0, "msg": "ok", "data": {"URL": url, "ClientConfig": config}}

    def _check_app(self, body: dict[str, Any]) -> None:
        if body.get("app_id") != self.emulator.app_id:
            raise LarkError(400, APP_ID_INVALID, "invalid param: app_id")
        if body.get("app_secret") != self.emulator.app_secret:
            raise LarkError(400, SECRET_INVALID, "app secret invalid")

    async def tenant_token(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`POST .../tenant_access_token/internal`."""
        self._check_app(body)
        token = self.emulator.guard.issue_token()
        expire = self.emulator.guard.token_ttl
        return {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": expire}

    async def app_token(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`POST .../app_access_token/internal` (also returns a tenant token, as Lark does)."""
        self._check_app(body)
        token = self.emulator.guard.issue_token()
        expire = self.emulator.guard.token_ttl
        return {
            "code": 0,
            "msg": "ok",
            "app_access_token": token,
            "tenant_access_token": token,
            "expire": expire,
        }

    async def bot_info(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`GET /open-apis/bot/v3/info`."""
        bot = self.emulator.bot
        info = {
            "activate_status": 2,
            "app_name": bot.name,
            "avatar_url": "",
            "ip_white_list": [],
            "open_id": bot.open_id,
        }
        return {"code": 0, "msg": "ok", "bot": info}

    async def create_message(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /open-apis/im/v1/messages?receive_id_type=chat_id|open_id`."""
        id_type = request.query_params.get("receive_id_type")
        receive_id = body.get("receive_id")
        if id_type not in ("chat_id", "open_id") or not isinstance(receive_id, str):
            raise LarkError(400, FIELD_INVALID, "field validation failed: receive_id(_type)")
        chat = self.emulator.find_chat(receive_id, by_open_id=id_type == "open_id")
        if chat is None:
            raise LarkError(400, NOT_IN_CHAT, "Bot/User can NOT be out of the chat.")
        return self._store(request, body, chat, None, False)

    async def reply_message(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /open-apis/im/v1/messages/{message_id}/reply`."""
        parent = self._live(self._message(request))
        chat = self.emulator.chats[parent.chat_id]
        return self._store(request, body, chat, parent, bool(body.get("reply_in_thread")))

    def _message(self, request: Request) -> Message:
        message = self.emulator.store.get(request.path_params["message_id"])
        if message is None:
            raise LarkError(400, MESSAGE_GONE, "The message was not found or has been recalled.")
        return message

    def _store(
        self,
        request: Request,
        body: dict[str, Any],
        chat: Chat,
        parent: Message | None,
        in_thread: bool,
    ) -> dict[str, Any]:
        emu = self.emulator
        uuid = body.get("uuid")
        if isinstance(uuid, str) and uuid:
            seen = self._uuids.get(uuid)
            previous = emu.store.get(seen[0]) if seen and seen[1] > time.time() else None
            if previous is not None:
                emu.duplicates.append(
                    Duplicate(uuid, previous.message_id, request.url.path, time.time())
                )
                return {"code": 0, "msg": "success", "data": previous.to_lark(*emu.identity)}
        msg_type, content = body.get("msg_type"), body.get("content")
        if msg_type not in MSG_TYPES:
            raise LarkError(400, FIELD_INVALID, "field validation failed: msg_type")
        parsed = _parse_content(content)
        assert isinstance(content, str)
        if msg_type == "interactive":
            self._check_card(parsed)
        elif len(content.encode()) > CONTENT_LIMITS[msg_type]:
            raise LarkError(400, TOO_LONG, "The length of the message content reaches its limit.")
        wrong = content_problem(msg_type, parsed)
        if wrong:
            raise LarkError(400, BAD_CONTENT, f"{INVALID_PARAMETER} ErrorValue: {wrong}")
        emu.guard.hit_chat(chat.chat_id)
        message = Message(
            seq=emu.store.next_seq(),
            message_id=new_id("om_"),
            chat_id=chat.chat_id,
            sender_id=emu.bot.open_id,
            sender_name=emu.bot.name,
            sender_type="bot",
            msg_type=msg_type,
            content=content,
            text=content_text(msg_type, parsed),
            uuid=uuid if isinstance(uuid, str) and uuid else None,
            notified=mentioned(msg_type, parsed, emu.people(union=True)),
        )
        if msg_type == "interactive":
            message.card, message.card_history = parsed, [parsed]
            message.card_times = [time.monotonic()]
        if parent is not None:
            message.parent_id = parent.message_id
            message.root_id = parent.root_id or parent.message_id
            message.thread_id = parent.thread_id
            if in_thread and not parent.thread_id:
                parent.thread_id = message.thread_id = new_id("omt_", 8)
        emu.store.add(message)
        if message.uuid:
            self._uuids[message.uuid] = (message.message_id, time.time() + UUID_TTL)
        return {"code": 0, "msg": "success", "data": message.to_lark(*emu.identity)}

    def remember(self, message: Message) -> None:
        """A kept message's `uuid` (a restarted sandbox) refuses a resend for the rest of its
        hour, as Lark's does."""
        expires = message.created_at / 1000 + UUID_TTL
        if message.uuid and expires > time.time():
            self._uuids[message.uuid] = (message.message_id, expires)

    @staticmethod
    def _live(message: Message) -> Message:
        """`message`, unless it was recalled (230011: nothing is done to a recalled one)."""
        if message.recalled:
            raise LarkError(400, MESSAGE_GONE, "The message is recalled.")
        return message

    async def get_message(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`GET /open-apis/im/v1/messages/{message_id}`; with
        `card_msg_content_type=user_card_content` a card comes as its sender wrote it."""
        message = self._message(request)
        item = message.to_lark(*self.emulator.identity)
        wanted = request.query_params.get("card_msg_content_type")
        if wanted == "user_card_content" and message.card is not None:
            item["body"] = {"content": json.dumps(message.card, ensure_ascii=False)}
        return {"code": 0, "msg": "success", "data": {"items": [item]}}

    async def patch_message(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`PATCH /open-apis/im/v1/messages/{message_id}`: replace a bot card."""
        message = self._live(self._message(request))
        if message.sender_id != self.emulator.bot.open_id:  # a person's, or another app's
            raise LarkError(400, NOT_SENDER, "Bot is NOT the sender of the message.")
        if message.msg_type != "interactive":  # "仅支持更新消息卡片": a parameter error
            raise LarkError(400, BAD_CONTENT, INVALID_PARAMETER)
        if now_ms() - message.created_at > UPDATE_WINDOW_MS:
            raise LarkError(
                400, TOO_OLD, "Message can only be modified within 14 days after sending."
            )
        self.emulator.guard.hit_message(message.message_id)
        card = _parse_content(body.get("content"))
        self._check_card(card)
        if not (shared(message.card) and shared(card)):
            raise LarkError(400, BAD_CONTENT, f"{INVALID_PARAMETER} ErrorValue: update_multi")
        message.set_card(card)
        self.emulator.store.touch()
        return {"code": 0, "msg": "success", "data": {}}

    async def card_update(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /open-apis/interactive/v1/card/update`: delayed update with a `c-` token."""
        token, card = body.get("token"), body.get("card")
        if not isinstance(token, str) or not isinstance(card, dict):
            raise LarkError(400, FIELD_INVALID, "field validation failed: token, card")
        message = self.emulator.store.get(self.emulator.guard.use_card_token(token))
        if message is None:
            raise LarkError(400, MESSAGE_GONE, "The message was not found or has been recalled.")
        self._live(message)
        shown = {k: v for k, v in card.items() if k != "open_ids"}
        self._check_card(shown)
        message.set_card(shown)
        self.emulator.store.touch()
        return {"code": 0, "msg": "ok"}

    def _check_card(self, card: dict[str, Any]) -> None:
        """Refuse a card real Feishu would refuse (`bot.sandbox.cardcheck`), as it does: the
        people it may mention are the tenant's users (by open_id or user_id) and the bot."""
        problem = card_problem(card, self.emulator.people())
        if problem is not None:
            raise LarkError(400, problem.code, problem.response())

    async def get_user(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`GET /open-apis/contact/v3/users/{user_id}?user_id_type=open_id|user_id|union_id`."""
        id_type = request.query_params.get("user_id_type", "open_id")
        if id_type not in ("open_id", "user_id", "union_id"):
            raise LarkError(400, FIELD_INVALID, "field validation failed: user_id_type")
        wanted = request.path_params["user_id"]
        user = next((u for u in self.emulator.users.values() if u.ids()[id_type] == wanted), None)
        if user is None:
            raise LarkError(400, USER_UNKNOWN, "no user authority error")
        found = {**user.ids(), "name": user.name, "department_ids": list(user.departments)}
        return {"code": 0, "msg": "success", "data": {"user": found}}

    async def chat_members(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`GET /open-apis/im/v1/chats/{chat_id}/members`: the people of a chat, paged."""
        emu = self.emulator
        chat = emu.chats.get(request.path_params["chat_id"])
        if chat is None:
            raise LarkError(400, NOT_IN_CHAT, "Bot/User can NOT be out of the chat.")
        id_type = request.query_params.get("member_id_type", "open_id")
        size = request.query_params.get("page_size", "20")
        start = request.query_params.get("page_token") or "0"
        if id_type not in ("open_id", "user_id", "union_id") or not size.isdigit():
            raise LarkError(400, FIELD_INVALID, "field validation failed: member_id_type")
        if not start.isdigit():
            raise LarkError(400, FIELD_INVALID, "field validation failed: page_token")
        if chat.chat_type == "p2p":
            people = [chat.peer]
        else:
            people = list(chat.members if chat.members is not None else emu.users)
        users = [emu.users[p] for p in people if p in emu.users]
        first, count = int(start), min(max(int(size), 1), 100)
        page = users[first : first + count]
        more = first + count < len(users)
        items = [
            {
                "member_id_type": id_type,
                "member_id": u.ids()[id_type],
                "name": u.name,
                "tenant_key": emu.tenant_key,
            }
            for u in page
        ]
        data = {
            "items": items,
            "page_token": str(first + count) if more else "",
            "has_more": more,
            "member_total": len(users),
        }
        return {"code": 0, "msg": "success", "data": data}

    async def not_found(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """Any other `/open-apis/...` path."""
        raise LarkError(404, 404, "404 page not found")


def _lark_response(payload: dict[str, Any], status: int, headers: dict[str, str]) -> Response:
    """A JSON response whose header names are cased like Lark's gateway sends them (the SDK's
    generic `Client.request` looks up "Content-Type" case-sensitively)."""
    response = JSONResponse(payload, status_code=status, headers=headers)
    response.raw_headers = [
        (b"Content-Type" if name == b"content-type" else name, value)
        for name, value in response.raw_headers
    ]
    response.raw_headers.append((b"X-Tt-Logid", new_id("", 16).encode()))
    return response


def shared(card: dict[str, Any] | None) -> bool:
    """A shared card (`config.update_multi` true; a 2.0 card is one unless it says false),
    the only kind `PATCH` updates: "更新前后卡片的 config 属性中，均显式声明 update_multi:true"
    (im-v1 patch, 注意事项; the code, 230001, is inferred: the page lists none for it)."""
    config = card.get("config") if isinstance(card, dict) else None
    flag = config.get("update_multi") if isinstance(config, dict) else None
    return flag is True or (flag is None and isinstance(card, dict) and card.get("schema") == "2.0")


def _parse_content(content: Any) -> dict[str, Any]:
    """A message `content` string as a JSON object; 230001 otherwise."""
    try:
        parsed = json.loads(content) if isinstance(content, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise LarkError(400, BAD_CONTENT, "invalid message content")
    return parsed
