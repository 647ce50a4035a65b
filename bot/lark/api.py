"""The outbound Lark client: the official REST endpoints under `LARK_DOMAIN`.

It speaks HTTP through one pooled `httpx.AsyncClient` rather than `lark_oapi`'s transport: the
SDK's async transport builds a new HTTP client (and TLS context) for every call, about 37 ms of
CPU each here, which capped replies near 24/s and pushed card answers past a second under load.
The long connection still uses the official SDK (`bot.lark.connection`).

- The tenant token is cached, refreshed ahead of expiry, and refreshed at once when Lark says it
  is invalid (the call is then repeated once).
- 5xx and rate-limit answers (HTTP 429 / code 99991400, honouring `x-ogw-ratelimit-reset`;
  code 230020) are retried with backoff; other 4xx raise `LarkApiError` at once.
- Sends and replies wait for a shared token bucket (per chat and per app, across replicas via
  the coordination backend), so Lark's limits are not exceeded; above them they queue in order
  (`bot.lark.outbox`: one chat's messages one after another, the app's calls in arrival order,
  a rate-limit refusal retried for up to a minute), and the queue's length is a gauge. A
  `background` card patch (a refresh nobody waits for) takes the app's turn after the others.
- Every send carries the caller's idempotency `uuid`.
- A card Feishu refuses for mentioning someone who is no user of the tenant is sent again with
  that person as a word (`bot.lark.strangers`); a card it refuses for anything else it holds
  goes as its words in plain text, with a warning naming Lark's code (`bot.lark.refusals`).
- Urgent notices, groups, pins, documents and tasks come from `bot.lark.collaboration`; the
  exceptions live in `bot.lark.errors` (and are importable from here as before).
- Membership lookups for roles (a user's departments, a group's members) are cached in process
  for ten minutes; a refusal (no contact permission, unknown user) for one minute.

Usage::

    api = LarkApi(app_id, app_secret, "https://open.feishu.cn", coordination)
    message_id = await api.send_text("oc_1", "hello", uuid=idempotency_key("evt", "reply"))
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from bot.lark.collaboration import Collaboration
from bot.lark.errors import LarkApiError as LarkApiError
from bot.lark.errors import LarkRetryable as LarkRetryable
from bot.lark.outbox import RATE_LIMITED_PATIENCE, Outbox
from bot.lark.refusals import despite_refusal
from bot.lark.strangers import despite_strangers
from bot.logs import get_logger
from storage import tracing
from storage.coordination import Coordination

log = get_logger(__name__)

TOKEN_ERRORS = frozenset({99991661, 99991663, 99991664, 99991665, 99991668, 99991677})
APP_RATE_LIMITED = 99991400
RATE_LIMIT_CODES = frozenset({APP_RATE_LIMITED, 230020})
# Lark allows 5 messages/s into one chat and 50 calls/s per app, counted over any second.
# A bucket of one token spaces grants at least 1/rate apart (a bigger burst would allow
# burst + rate in one second), and pacing at 90% of the limit leaves ~110 ms for the jitter
# between a grant and the request reaching Lark (replicas, token refreshes, a busy loop).
CHAT_RATE, CHAT_BURST = 4.5, 1  # messages into one chat
APP_RATE, APP_BURST = 45.0, 1  # calls by the app
DIRECTORY_TTL = 600.0  # seconds a department or group membership answer is reused
REFUSED_TTL = 60.0  # seconds a refused lookup (no permission, unknown user) is not asked again
MEMBER_PAGES = 50  # of 100 members: groups beyond 5,000 members are cut there

CALLS = Counter("larkops_lark_api_calls_total", "Lark REST calls", ["endpoint", "outcome"])
CALL_SECONDS = Histogram("larkops_lark_api_seconds", "Lark REST call latency", ["endpoint"])
THROTTLED = Counter("larkops_lark_throttled_seconds_total", "Seconds spent waiting for buckets")


@dataclass(frozen=True)
class BotInfo:
    open_id: str
    name: str


def idempotency_key(*parts: str) -> str:
    """A stable Lark `uuid` (≤ 50 chars) for "the reply to this event", "the card for that"."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


class LarkApi(Collaboration):
    """REST calls the bot makes. Safe to share between tasks."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        domain: str,
        coordination: Coordination,
        *,
        max_attempts: int = 5,
        timeout: float = 10.0,
    ) -> None:
        self.app_id = app_id
        self._secret = app_secret
        self._domain = domain.rstrip("/")
        self._coordination = coordination
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self._domain,
            timeout=timeout,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            headers={"User-Agent": "larkops"},
        )
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self.outbox = Outbox()  # the order of sends, and how many wait
        # membership lookups (bot.roles): key -> (monotonic expiry, answer or Lark's refusal)
        self.directory_ttl = DIRECTORY_TTL
        self._directory: dict[tuple[str, str], tuple[float, frozenset[str] | LarkApiError]] = {}

    async def close(self) -> None:
        await self._http.aclose()

    # tokens -----------------------------------------------------------------------------

    async def _tenant_token(self, *, force: bool = False) -> str:
        async with self._token_lock:
            if not force and self._token and time.monotonic() < self._token_expires:
                return self._token
            body = await self._retrying(
                "auth.tenant_token",
                "POST",
                "/open-apis/auth/v3/tenant_access_token/internal",
                body={"app_id": self.app_id, "app_secret": self._secret},
                authorised=False,
            )
            token, expire = body.get("tenant_access_token"), body.get("expire")
            if not isinstance(token, str) or not isinstance(expire, int):
                raise LarkApiError("auth.tenant_token", 200, -1, "no token in the answer")
            # refresh a tenth of the lifetime early (at most five minutes)
            self._token = token
            self._token_expires = time.monotonic() + expire - min(300.0, expire * 0.1)
            return token

    # one call ---------------------------------------------------------------------------

    async def _once(
        self,
        endpoint: str,
        method: str,
        uri: str,
        *,
        body: dict[str, Any] | None,
        queries: list[tuple[str, str]],
        token: str | None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One HTTP exchange; `token` None for the endpoints that take none."""
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method, uri, params=dict(queries), json=body, headers=headers
            )
        except httpx.HTTPError as exc:  # connection refused, timeouts: transient
            CALLS.labels(endpoint, "network").inc()
            raise LarkRetryable(endpoint, 0, -1, f"{type(exc).__name__}: {exc}", None) from exc
        finally:
            CALL_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return response.status_code, data, {k.lower(): v for k, v in response.headers.items()}

    def _classify(
        self, endpoint: str, status: int, data: dict[str, Any], headers: dict[str, str]
    ) -> None:
        code = data.get("code")
        code = code if isinstance(code, int) else (0 if 200 <= status < 300 else -1)
        msg = str(data.get("msg") or "")
        if status < 300 and code == 0:
            CALLS.labels(endpoint, "ok").inc()
            return
        if status == 429 or code in RATE_LIMIT_CODES:
            CALLS.labels(endpoint, "rate_limited").inc()
            reset = headers.get("x-ogw-ratelimit-reset")
            retry_after = float(reset) if reset and reset.replace(".", "", 1).isdigit() else None
            if status == 429 or code == APP_RATE_LIMITED:  # the app's limit: everybody waits
                self.outbox.pause(retry_after or 1.0)
            raise LarkRetryable(endpoint, status, code, msg or "rate limited", retry_after)
        if status >= 500:
            CALLS.labels(endpoint, "server_error").inc()
            raise LarkRetryable(endpoint, status, code, msg or "server error", None)
        CALLS.labels(endpoint, "refused").inc()
        raise LarkApiError(endpoint, status, code, msg or "refused")

    async def _retrying(
        self,
        endpoint: str,
        method: str,
        uri: str,
        *,
        body: dict[str, Any] | None = None,
        queries: list[tuple[str, str]] | None = None,
        authorised: bool = True,
        chat_id: str | None = None,
        attempts: int | None = None,
        background: bool = False,
    ) -> dict[str, Any]:
        if chat_id is None:
            return await self._attempts(
                endpoint, method, uri, body, queries or [], authorised, None, attempts, background
            )
        async with self.outbox.turn(chat_id):  # a message: after the chat's earlier ones
            return await self._attempts(
                endpoint, method, uri, body, queries or [], authorised, chat_id, attempts
            )

    async def _attempts(
        self,
        endpoint: str,
        method: str,
        uri: str,
        body: dict[str, Any] | None,
        queries: list[tuple[str, str]],
        authorised: bool,
        chat_id: str | None,
        attempts: int | None,
        background: bool = False,
    ) -> dict[str, Any]:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(LarkRetryable),
            stop=_stop_after(attempts or self._max_attempts),
            wait=_backoff,
            reraise=True,
        )
        with tracing.span(
            f"lark {endpoint}", {"http.method": method}, kind=SpanKind.CLIENT
        ) as current:
            async for attempt in retrying:
                with attempt:
                    current.set_attribute("lark.attempts", attempt.retry_state.attempt_number)
                    if authorised:
                        await self._throttle(chat_id, background)
                    return await self._authorised_call(
                        endpoint, method, uri, body, queries, authorised
                    )
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _authorised_call(
        self,
        endpoint: str,
        method: str,
        uri: str,
        body: dict[str, Any] | None,
        queries: list[tuple[str, str]],
        authorised: bool,
    ) -> dict[str, Any]:
        token = await self._tenant_token() if authorised else None
        status, data, headers = await self._once(
            endpoint, method, uri, body=body, queries=queries, token=token
        )
        if authorised and data.get("code") in TOKEN_ERRORS:
            log.info("lark.token_refused", endpoint=endpoint, code=data.get("code"))
            token = await self._tenant_token(force=True)
            status, data, headers = await self._once(
                endpoint, method, uri, body=body, queries=queries, token=token
            )
        self._classify(endpoint, status, data, headers)
        return data

    async def _throttle(self, chat_id: str | None, background: bool = False) -> None:
        waited = 0.0
        if chat_id:  # the chat's bucket first: the app's turn is not held while it refills
            waited += await self._coordination.throttle(
                f"lark:chat:{chat_id}", CHAT_RATE, CHAT_BURST
            )
        waited += await self.outbox.grant(
            lambda: self._coordination.throttle(f"lark:app:{self.app_id}", APP_RATE, APP_BURST),
            background=background,
        )
        if waited:
            THROTTLED.inc(waited)

    # the endpoints the bot uses ---------------------------------------------------------

    async def bot_info(self) -> BotInfo:
        data = await self._retrying("bot.info", "GET", "/open-apis/bot/v3/info")
        bot = data.get("bot") if isinstance(data.get("bot"), dict) else {}
        open_id = str((bot or {}).get("open_id") or "")
        if not open_id:
            raise LarkApiError("bot.info", 200, -1, "the answer has no bot.open_id")
        return BotInfo(open_id=open_id, name=str((bot or {}).get("app_name") or ""))

    async def send(self, chat_id: str, msg_type: str, content: dict[str, Any], *, uuid: str) -> str:
        """Send to a chat; returns the message id (the same one for a repeated `uuid`)."""
        return await self._create("chat_id", chat_id, msg_type, content, uuid)

    async def reply(
        self,
        message_id: str,
        msg_type: str,
        content: dict[str, Any],
        *,
        uuid: str,
        chat_id: str,
        in_thread: bool = False,
    ) -> str:
        """Reply to a message (in its thread when asked); returns the new message id."""

        async def once(kind: str, sent: dict[str, Any]) -> str:
            data = await self._retrying(
                "im.message.reply",
                "POST",
                f"/open-apis/im/v1/messages/{message_id}/reply",
                body={
                    "msg_type": kind,
                    "content": json.dumps(sent, ensure_ascii=False),
                    "reply_in_thread": in_thread,
                    "uuid": uuid,
                },
                chat_id=chat_id,
            )
            return _message_id(data, "im.message.reply")

        return await despite_refusal(msg_type, content, once)

    async def send_text(self, chat_id: str, text: str, *, uuid: str) -> str:
        return await self.send(chat_id, "text", {"text": text}, uuid=uuid)

    async def send_card(self, chat_id: str, card: dict[str, Any], *, uuid: str) -> str:
        return await self.send(chat_id, "interactive", card, uuid=uuid)

    async def patch_card(
        self, message_id: str, card: dict[str, Any], *, background: bool = False
    ) -> None:
        """Replace the card of an interactive message the bot sent; a `background` patch (a
        refresh nobody waits for) waits for the app's turn until no other call does."""

        async def once(sent: dict[str, Any]) -> None:
            await self._retrying(
                "im.message.patch",
                "PATCH",
                f"/open-apis/im/v1/messages/{message_id}",
                body={"content": json.dumps(sent, ensure_ascii=False)},
                background=background,
            )

        await despite_strangers("interactive", card, once)

    async def send_direct(
        self, open_id: str, msg_type: str, content: dict[str, Any], *, uuid: str
    ) -> str:
        """Send to a person (the bot's one-to-one chat with them); returns the message id."""
        return await self._create("open_id", open_id, msg_type, content, uuid)

    async def _create(
        self, id_type: str, receive_id: str, msg_type: str, content: dict[str, Any], uuid: str
    ) -> str:
        """`im.message.create` to a chat or a person (its own turn in the outbox, by id)."""

        async def once(kind: str, sent: dict[str, Any]) -> str:
            data = await self._retrying(
                "im.message.create",
                "POST",
                "/open-apis/im/v1/messages",
                queries=[("receive_id_type", id_type)],
                body={
                    "receive_id": receive_id,
                    "msg_type": kind,
                    "content": json.dumps(sent, ensure_ascii=False),
                    "uuid": uuid,
                },
                chat_id=receive_id,
            )
            return _message_id(data, "im.message.create")

        return await despite_refusal(msg_type, content, once)

    # membership, for roles (bot.roles) ----------------------------------------------------

    async def user_departments(self, open_id: str) -> frozenset[str]:
        """The open_department_ids of a user's departments (contact API), cached."""

        async def ask() -> frozenset[str]:
            data = await self._retrying(
                "contact.user.get",
                "GET",
                f"/open-apis/contact/v3/users/{quote(open_id, safe='')}",
                queries=[("user_id_type", "open_id"), ("department_id_type", "open_department_id")],
                attempts=2,
            )
            inner = data.get("data") if isinstance(data.get("data"), dict) else {}
            user = (inner or {}).get("user")
            found = user.get("department_ids") if isinstance(user, dict) else None
            return frozenset(str(d) for d in found or () if isinstance(d, str))

        return await self._remembered(("departments", open_id), ask)

    async def chat_members(self, chat_id: str) -> frozenset[str]:
        """The open_ids of a group's members (people, not bots), cached."""

        async def ask() -> frozenset[str]:
            members: set[str] = set()
            token = ""
            for _ in range(MEMBER_PAGES):
                queries = [("member_id_type", "open_id"), ("page_size", "100")]
                data = await self._retrying(
                    "im.chat.members.get",
                    "GET",
                    f"/open-apis/im/v1/chats/{quote(chat_id, safe='')}/members",
                    queries=[*queries, ("page_token", token)] if token else queries,
                    attempts=2,
                )
                inner = data.get("data") if isinstance(data.get("data"), dict) else {}
                for item in (inner or {}).get("items") or ():
                    if isinstance(item, dict) and isinstance(item.get("member_id"), str):
                        members.add(item["member_id"])
                token = str((inner or {}).get("page_token") or "")
                if not (inner or {}).get("has_more") or not token:
                    break
            return frozenset(members)

        return await self._remembered(("members", chat_id), ask)

    async def department_members(self, department_id: str) -> frozenset[str]:
        """The open_ids of a department's direct members (contact API), cached."""

        async def ask() -> frozenset[str]:
            members: set[str] = set()
            token = ""
            for _ in range(MEMBER_PAGES):
                queries = [
                    ("department_id", department_id),
                    ("department_id_type", "open_department_id"),
                    ("user_id_type", "open_id"),
                    ("page_size", "50"),
                ]
                data = await self._retrying(
                    "contact.user.find_by_department",
                    "GET",
                    "/open-apis/contact/v3/users/find_by_department",
                    queries=[*queries, ("page_token", token)] if token else queries,
                    attempts=2,
                )
                inner = data.get("data") if isinstance(data.get("data"), dict) else {}
                for item in (inner or {}).get("items") or ():
                    if isinstance(item, dict) and isinstance(item.get("open_id"), str):
                        members.add(item["open_id"])
                token = str((inner or {}).get("page_token") or "")
                if not (inner or {}).get("has_more") or not token:
                    break
            return frozenset(members)

        return await self._remembered(("department", department_id), ask)

    async def _remembered(
        self, key: tuple[str, str], ask: Callable[[], Awaitable[frozenset[str]]]
    ) -> frozenset[str]:
        now = time.monotonic()
        hit = self._directory.get(key)
        if hit is not None and hit[0] > now:
            if isinstance(hit[1], LarkApiError):
                raise hit[1]
            return hit[1]
        if len(self._directory) > 10_000:
            self._directory.clear()
        try:
            answer = await ask()
        except LarkRetryable:
            raise  # transient: ask again next time
        except LarkApiError as exc:
            self._directory[key] = (now + REFUSED_TTL, exc)
            raise
        self._directory[key] = (time.monotonic() + self.directory_ttl, answer)
        return answer

    async def message_card(self, message_id: str) -> dict[str, Any]:
        """The card of an interactive message as its sender wrote it (JSON 1.0 or 2.0), not
        the degraded render events carry: `GET /open-apis/im/v1/messages/:message_id` with
        `card_msg_content_type=user_card_content` (scope `im:message:readonly`). Raises
        `LarkApiError` when Lark refuses or the answer holds no card."""
        data = await self._retrying(
            "im.message.get",
            "GET",
            f"/open-apis/im/v1/messages/{quote(message_id, safe='')}",
            queries=[("card_msg_content_type", "user_card_content")],
            attempts=2,
        )
        inner = data.get("data") if isinstance(data.get("data"), dict) else {}
        items = (inner or {}).get("items")
        item = items[0] if isinstance(items, list) and items else None
        body = item.get("body") if isinstance(item, dict) else None
        content = body.get("content") if isinstance(body, dict) else None
        try:
            card = json.loads(content) if isinstance(content, str) else None
        except ValueError:
            card = None
        if not isinstance(card, dict):
            raise LarkApiError("im.message.get", 200, -1, "the answer holds no card")
        return card

    async def update_card(self, token: str, card: dict[str, Any]) -> None:
        """Delayed update of a card with the token of a card action (valid 30 min, twice)."""
        await self._retrying(
            "interactive.card.update",
            "POST",
            "/open-apis/interactive/v1/card/update",
            body={"token": token, "card": card},
        )


def _message_id(data: dict[str, Any], endpoint: str) -> str:
    inner = data.get("data") if isinstance(data.get("data"), dict) else {}
    message_id = (inner or {}).get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise LarkApiError(endpoint, 200, -1, "the answer has no data.message_id")
    return message_id


_exponential = wait_exponential(multiplier=0.2, max=5.0) + wait_random(0, 0.2)


def _rate_limited(error: BaseException | None) -> bool:
    return isinstance(error, LarkRetryable) and (
        error.status == 429 or error.code in RATE_LIMIT_CODES
    )


def _stop_after(attempts: int) -> Callable[[RetryCallState], bool]:
    """Give up after `attempts` failures; a refusal for the rate is retried for up to
    `RATE_LIMITED_PATIENCE` seconds instead (the message waits its turn, it is not lost)."""

    def stop(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        if _rate_limited(error):
            return (state.seconds_since_start or 0.0) >= RATE_LIMITED_PATIENCE
        return state.attempt_number >= attempts

    return stop


def _backoff(state: RetryCallState) -> float:
    """Lark's own reset hint when it gave one, else exponential backoff with jitter."""
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, LarkRetryable) and error.retry_after is not None:
        return min(max(error.retry_after, 0.05), 30.0)
    return float(_exponential(state))
