"""Access control of the REST side: tenant tokens, card tokens, rate limits, injected faults."""

from __future__ import annotations

import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

# Lark codes (HTTP status in comments) the emulator answers with.
TOKEN_MISSING = 99991661  # 400: no / malformed Authorization header
TOKEN_INVALID = 99991663  # 400: unknown, expired or revoked tenant_access_token
APP_RATE_LIMITED = 99991400  # 429: per-app request rate (with x-ogw-ratelimit-* headers)
CHAT_RATE_LIMITED = 230020  # 400: per-chat send rate (and per-message update rate)
MESSAGE_UPDATE_LIMIT = 5  # updates of one message per second
CARD_TOKEN_INVALID = 200740  # 400: card update token unknown, expired or used up

CARD_TOKEN_TTL = 30 * 60.0
CARD_TOKEN_USES = 2
WINDOW = 1.0


class LarkError(Exception):
    """An error answer in Lark's shape: HTTP status plus {"code","msg"} (and headers)."""

    def __init__(
        self, status: int, code: int, msg: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers or {}


@dataclass
class Fault:
    """An injected error for the next `remaining` requests whose path starts with `prefix`."""

    prefix: str
    status: int
    code: int
    remaining: int
    msg: str
    headers: dict[str, str] = field(default_factory=dict)
    until: float | None = None  # time.monotonic() deadline of a timed fault (any count)


@dataclass
class _CardToken:
    message_id: str
    expires: float
    uses: int = 0


class Guard:
    """Issues and checks tokens, applies sliding one-second rate windows and faults."""

    def __init__(self, *, token_ttl: int, chat_rate_limit: int, app_rate_limit: int) -> None:
        self.token_ttl = token_ttl
        self.chat_rate_limit = chat_rate_limit
        self.app_rate_limit = app_rate_limit
        self._tokens: dict[str, float] = {}
        self._card_tokens: dict[str, _CardToken] = {}
        self._faults: list[Fault] = []
        self._holds: list[tuple[str, float]] = []  # (path prefix, seconds) of slow answers
        self.holding = 0  # requests being held now
        self._app_window: deque[float] = deque()
        self._chat_windows: dict[str, deque[float]] = {}
        self._message_windows: dict[str, deque[float]] = {}

    def issue_token(self) -> str:
        """A new tenant_access_token valid for `token_ttl` seconds."""
        token = f"t-{secrets.token_hex(20)}"
        self._tokens[token] = time.monotonic() + self.token_ttl
        return token

    def revoke_tokens(self) -> None:
        """Invalidate every tenant token issued so far."""
        self._tokens.clear()

    def check_token(self, authorization: str | None) -> None:
        """Raise LarkError unless the header carries a live tenant token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise LarkError(
                400,
                TOKEN_MISSING,
                "Missing access token for authorization. Please make a request with token "
                "attached.",
            )
        expires = self._tokens.get(token.strip())
        if expires is None or expires < time.monotonic():
            raise LarkError(
                400,
                TOKEN_INVALID,
                "Invalid access token for authorization. Please make a request with token "
                "attached.",
            )

    def issue_card_token(self, message_id: str) -> str:
        """A `c-` token for delayed card updates of `message_id` (30 min, 2 uses)."""
        token = f"c-{secrets.token_hex(20)}"
        self._card_tokens[token] = _CardToken(message_id, time.monotonic() + CARD_TOKEN_TTL)
        return token

    def use_card_token(self, token: str) -> str:
        """The message id the token updates; raises LarkError when invalid or used up."""
        entry = self._card_tokens.get(token)
        if entry is None or entry.expires < time.monotonic() or entry.uses >= CARD_TOKEN_USES:
            raise LarkError(400, CARD_TOKEN_INVALID, "card token is invalid, expired or used up")
        entry.uses += 1
        return entry.message_id

    def fail_next(
        self,
        path_prefix: str,
        *,
        status: int,
        code: int,
        count: int = 1,
        headers: dict[str, str] | None = None,
        msg: str = "",
        seconds: float | None = None,
    ) -> None:
        """Answer the next `count` requests under `path_prefix` with this error — or, with
        `seconds`, every such request for that long (an outage rather than a hiccup).

        A 429 without explicit headers gets x-ogw-ratelimit-limit / -reset like Lark's gateway.
        """
        extra = dict(headers or {})
        if status == 429:
            extra.setdefault("x-ogw-ratelimit-limit", str(self.app_rate_limit))
            extra.setdefault("x-ogw-ratelimit-reset", "1")
        text = msg or ("request trigger frequency limit" if status == 429 else "internal error")
        until = time.monotonic() + seconds if seconds is not None else None
        self._faults.append(Fault(path_prefix, status, code, count, text, extra, until))

    def clear_faults(self) -> None:
        """End every injected fault (an outage is over)."""
        self._faults.clear()
        self._holds.clear()

    def hold_next(self, path_prefix: str, seconds: float) -> None:
        """Hold the next request under `path_prefix` for `seconds` after it has arrived, before
        it takes effect (a slow answer, as Lark's are under load)."""
        self._holds.append((path_prefix, seconds))

    def take_hold(self, path: str) -> float:
        """How long to hold this request (consuming the first matching hold), 0 for none."""
        for index, (prefix, seconds) in enumerate(self._holds):
            if path.startswith(prefix):
                del self._holds[index]
                return seconds
        return 0.0

    def take_fault(self, path: str) -> None:
        """Raise the first pending fault matching `path` (consuming one of its count)."""
        now = time.monotonic()
        self._faults = [f for f in self._faults if f.until is None or f.until > now]
        for fault in self._faults:
            if not path.startswith(fault.prefix):
                continue
            if fault.until is not None:
                raise LarkError(fault.status, fault.code, fault.msg, fault.headers)
            if fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                raise LarkError(fault.status, fault.code, fault.msg, fault.headers)

    def hit_app(self) -> None:
        """Count one request against the per-app limit; raise a 429 when over it."""
        now = time.monotonic()
        wait = _hit(self._app_window, self.app_rate_limit, now)
        if wait is not None:
            raise LarkError(
                429,
                APP_RATE_LIMITED,
                "request trigger frequency limit",
                {
                    "x-ogw-ratelimit-limit": str(self.app_rate_limit),
                    "x-ogw-ratelimit-reset": str(max(1, math.ceil(wait))),
                },
            )

    def hit_chat(self, chat_id: str) -> None:
        """Count one message sent into `chat_id`; raise 230020 when over the per-chat limit."""
        window = self._chat_windows.setdefault(chat_id, deque())
        if _hit(window, self.chat_rate_limit, time.monotonic()) is not None:
            raise LarkError(400, CHAT_RATE_LIMITED, "This operation triggers the frequency limit.")

    def hit_message(self, message_id: str) -> None:
        """Count one update of a message; raise 230020 above `MESSAGE_UPDATE_LIMIT` a second
        (Lark limits how often one message can be edited)."""
        window = self._message_windows.setdefault(message_id, deque())
        if _hit(window, MESSAGE_UPDATE_LIMIT, time.monotonic()) is not None:
            raise LarkError(400, CHAT_RATE_LIMITED, "This operation triggers the frequency limit.")


def _hit(window: deque[float], limit: int, now: float) -> float | None:
    """Record a hit unless `limit` hits already happened in the last second; else the wait."""
    while window and window[0] <= now - WINDOW:
        window.popleft()
    if len(window) >= limit:
        return window[0] + WINDOW - now
    window.append(now)
    return None
