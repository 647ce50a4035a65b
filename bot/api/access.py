"""Who is calling the REST API, what they may do, and how fast: the one place the API decides.

A request carries an API key (`Authorization: Bearer lko_…` or `X-API-Key`) or the console's
session cookie. A key acts as its owner; a session as the person who signed in. Either way the
roles are the person's own in the chat concerned (`bot.roles`, exactly as in the chat): the
incident's, the gate's, the job's or the silence's chat, or — for what belongs to no chat —
`LARKOPS_ALERT_CHAT_ID` (global grants and the default when unset). Never more.

- nothing, an unknown, forged or revoked key, an expired session → 401
- a session's state-changing request without its CSRF token (`X-CSRF-Token`) → 403
- a role that does not admit the request → 403 naming the least role that would
- too many requests → 429 with `Retry-After`: a token bucket per client address (before the
  caller is known, so guessing keys is slow too; behind `LARKOPS_TRUSTED_PROXIES` the address
  they forward, `bot.api.proxies`) and one per key or signed-in person, shared by every
  replica through the coordination backend

A key is read from the database once and then known in this process until it is revoked
(`bot.api.keyring`): a request costs no query for its key, a revoked key fails at once.

Every change is recorded in the audit timeline by `Caller.audit`, with the person as the actor
and `via` naming the key (`key:<prefix>`) or `console`.
"""

from __future__ import annotations

import asyncio
import hmac
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from bot.api.keyring import Keyring
from bot.api.proxies import Proxies
from bot.logs import current_trace_id, get_logger
from bot.roles import AccessControl, Role, admits
from cards.texts import Texts, texts
from storage import console_sessions, incidents
from storage.coordination import CoordinationError

if TYPE_CHECKING:
    from bot.context import Services
    from bot.lark.runtime import LarkTarget
    from storage.changes import ChangeFeed

log = get_logger(__name__)
SESSION_COOKIE = "larkops_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiError(HTTPException):
    """An answer other than success: a status, a code, words for people (and a role)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        needs: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers)
        self.code = code
        self.message = message
        self.needs = needs

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.needs is not None:
            data["needs"] = self.needs
        return data


@dataclass
class Backend:
    """What the API reaches: the bot's services once started, and the change feed."""

    services: Callable[[], Services | None]
    feed: ChangeFeed | None = None
    target: LarkTarget | None = None  # the Lark app (the console signs in with it)
    keyring: Keyring = field(default_factory=Keyring)  # the keys this process has checked
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Work that follows an answer (a resumed run); kept until done, drained at stop."""

        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("api.later_failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, patience: float = 10.0) -> None:
        """At stop: the work that follows answers ends, the keyring stops listening."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=patience)
        await self.keyring.stop()


def backend_of(request: Request) -> Backend:
    found: Backend = request.app.state.backend
    return found


def running(request: Request) -> Services:
    services = backend_of(request).services()
    if services is None:
        say = texts("zh")
        raise ApiError(503, "starting", say("api.starting"), headers={"Retry-After": "2"})
    return services


@dataclass
class Caller:
    """The person behind a request, and how they came (a key or the console)."""

    open_id: str
    via: str  # "key:<prefix>" or "console"
    services: Services
    trace_id: str | None = None
    csrf: str | None = None  # the session's token (console only)

    @property
    def say(self) -> Texts:
        return texts(self.services.settings.language)

    @property
    def key(self) -> str:
        return self.via.removeprefix("key:") if self.via.startswith("key:") else ""

    def chat(self, chat_id: str | None) -> str:
        """The chat whose roles apply: the object's, else the alert chat."""
        return chat_id or self.services.settings.alert_chat_id or ""

    async def roles(self, chat_id: str | None) -> frozenset[str]:
        control = AccessControl(self.services.settings, self.services.api)
        found = await control.resolve(self.open_id, self.chat(chat_id))
        return found.roles

    async def need(self, role: Role, chat_id: str | None) -> frozenset[str]:
        """The caller's roles in the chat; 403 naming `role` when they do not admit it."""
        held = await self.roles(chat_id)
        if not admits(held, (role,)):
            words = self.say(f"role.{role}")
            raise ApiError(403, "forbidden", self.say("api.forbidden", role=words), needs=role)
        return held

    async def audit(
        self, incident_id: int | None, kind: str, message: str = "", **data: object
    ) -> None:
        await incidents.record_event(
            self.services.db,
            incident_id,
            kind,
            actor=self.open_id,
            message=message,
            data={"via": self.via, **data},
            trace_id=self.trace_id,
        )


async def _limit(services: Services, bucket: str, rate: float, burst: int) -> None:
    try:
        wait = await services.coordination.take(bucket, rate, burst)
    except CoordinationError:
        return  # the limits are a guard, not a dependency: an outage does not stop the API
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        say = texts(services.settings.language)
        raise ApiError(
            429,
            "rate_limited",
            say("api.rate_limited", seconds=seconds),
            headers={"Retry-After": str(seconds)},
        )


# declared so that the OpenAPI document says how to authenticate (each route takes one of them)
_BEARER = HTTPBearer(auto_error=False, description="an API key: `lko_…`")
_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same key")
_COOKIE = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="the console's session (CSRF: X-CSRF-Token)"
)


async def caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    header: Annotated[str | None, Depends(_HEADER)],
    cookie: Annotated[str | None, Depends(_COOKIE)],
) -> Caller:
    """The dependency every route takes: authenticated, rate-limited, CSRF-checked."""
    services, backend = running(request), backend_of(request)
    settings = services.settings
    config, say = settings.api, texts(settings.language)
    address = Proxies.of(tuple(settings.trusted_proxies)).client(request)
    await _limit(services, f"api:ip:{address}", config.ip_rate, config.ip_burst)
    trace = current_trace_id()
    key = bearer.credentials.strip() if bearer is not None else header
    if key is not None:
        holder = await backend.keyring.holder(services.db, key, backend.feed)
        if holder is None:
            raise ApiError(
                401, "bad_key", say("api.bad_key"), headers={"WWW-Authenticate": "Bearer"}
            )
        await _limit(services, f"api:key:{holder.prefix}", config.key_rate, config.key_burst)
        return Caller(holder.owner, f"key:{holder.prefix}", services, trace)
    token = cookie
    if not token:
        raise ApiError(
            401,
            "unauthenticated",
            say("api.unauthenticated"),
            headers={"WWW-Authenticate": "Bearer"},
        )
    session = await console_sessions.find(services.db, token)
    if session is None:
        raise ApiError(401, "bad_session", say("api.bad_session"))
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, session.csrf):
            raise ApiError(403, "csrf", say("api.csrf"))
    await _limit(services, f"api:user:{session.open_id}", config.key_rate, config.key_burst)
    return Caller(session.open_id, "console", services, trace, csrf=session.csrf)
