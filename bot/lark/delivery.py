"""Lark's HTTP event delivery: the event and card-callback request URLs, beside the long connection.

Some tenants cannot use the long connection (store apps, private deployments, a proxy that
blocks WebSocket). With `LARK_EVENT_DELIVERY=http` Lark POSTs events to `/lark/events` and card
callbacks to `/lark/card` (each path takes both). Any failure answers 4xx and changes nothing:

1. the body is a JSON object of at most 1 MiB, read no further (400, 413);
2. with `LARK_ENCRYPT_KEY`, a request signed in `X-Lark-Signature` (the hex SHA-256 of
   `X-Lark-Request-Timestamp + X-Lark-Request-Nonce + Encrypt Key + body`) must match (401) and
   be no older, nor newer, than `LARK_EVENT_MAX_AGE_SECONDS` (401: a replay); then
   `{"encrypt": …}` is decrypted: AES-256-CBC, the key the SHA-256 of the Encrypt Key, the IV
   the first 16 bytes, PKCS#7 padding (400). An unsigned request may only be the console's
   url_verification, and every way one fails answers the same 401 (no padding oracle);
3. with `LARK_VERIFICATION_TOKEN`, the token (`header.token`, or a url_verification's `token`)
   must match (401);
4. a `url_verification` is answered `{"challenge": …}` (as the `lark_oapi` dispatcher does,
   before the signature is required);
5. the event is a schema 2.0 envelope with an event id and type (400).

Then it goes to the durable inbox exactly as a long-connection event does (`Inbox.accept`): a
message is committed before the 200 (a failed commit answers 500 and Lark retries), a card
action is answered within Lark's 3 seconds with its toast and card. HTTP delivery needs a
verification token or an Encrypt Key (`bot.config`); with only a token, anyone who learns it
can forge events, so set the Encrypt Key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from Crypto.Cipher import AES
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import Settings
from bot.lark.events import MalformedEvent, parse_envelope
from bot.lark.inbox import Inbox
from bot.logs import get_logger

log = get_logger(__name__)

MAX_BODY = 1024 * 1024
TIMESTAMP = "x-lark-request-timestamp"
NONCE = "x-lark-request-nonce"
SIGNATURE = "x-lark-signature"
_BLOCK = 16


class Refused(Exception):
    """A request that changes nothing: its HTTP status and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_UNSIGNED = Refused(401, "unsigned request")


@dataclass(frozen=True)
class Credentials:
    """What checks a request: the app's Encrypt Key and verification token ("" when unset),
    and how old a signed request may be."""

    encrypt_key: str = ""
    verification_token: str = ""
    max_age: float = 300.0


def decrypt(encrypted: str, encrypt_key: str) -> bytes:
    """The plaintext of Lark's `encrypt` field (raises `Refused` 400 when it is not one)."""
    try:
        data = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, "encrypt is not base64") from None
    if len(data) < 2 * _BLOCK or len(data) % _BLOCK:
        raise Refused(400, "encrypt has the wrong length")
    key = hashlib.sha256(encrypt_key.encode()).digest()
    plain = AES.new(key, AES.MODE_CBC, data[:_BLOCK]).decrypt(data[_BLOCK:])
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise Refused(400, "encrypt does not decrypt with this Encrypt Key")
    return plain[:-pad]


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """`X-Lark-Signature` of a request: hex SHA-256 of timestamp + nonce + key + body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


@dataclass(frozen=True)
class Opened:
    """A checked request: an event for the inbox, or a url_verification's challenge."""

    event: dict[str, Any] | None = None
    challenge: str = ""


def open_request(
    body: bytes, headers: dict[str, str], credentials: Credentials, *, now: float | None = None
) -> Opened:
    """The checked event of one request (`headers` lower-cased). Raises `Refused` for anything
    forged, replayed or malformed.

    With an Encrypt Key, a signed request is authenticated before it is decrypted, and an
    unsigned one may only be the console's url_verification: every way an unsigned request
    fails answers the same 401, so nobody without the key learns anything from the answers
    (no padding oracle)."""
    if len(body) > MAX_BODY:
        raise Refused(413, "body over 1 MiB")
    outer = _json_object(body)
    if credentials.encrypt_key:
        event = _authenticated(body, outer, headers, credentials, now)
    elif "encrypt" in outer:
        raise Refused(401, "an encrypted event, and no LARK_ENCRYPT_KEY")
    else:
        event = outer
    if credentials.verification_token:
        _check_token(event, credentials.verification_token)
    if event.get("type") == "url_verification":
        challenge = event.get("challenge")
        if not isinstance(challenge, str) or not challenge or len(challenge) > 512:
            raise Refused(400, "url_verification without a challenge")
        return Opened(challenge=challenge)
    try:
        parse_envelope(event)
    except MalformedEvent as exc:
        raise Refused(400, str(exc)) from None
    return Opened(event=event)


def _authenticated(
    body: bytes,
    outer: dict[str, Any],
    headers: dict[str, str],
    credentials: Credentials,
    now: float | None,
) -> dict[str, Any]:
    signed = all(headers.get(name) for name in (TIMESTAMP, NONCE, SIGNATURE))
    if signed:
        _check_signature(body, headers, credentials, time.time() if now is None else now)
    encrypted = outer.get("encrypt")
    try:
        if not isinstance(encrypted, str):
            raise Refused(400, "no encrypt field")  # Lark encrypts when an Encrypt Key is set
        event = _json_object(decrypt(encrypted, credentials.encrypt_key))
    except Refused as refused:
        raise refused if signed else _UNSIGNED from None
    if not signed and event.get("type") != "url_verification":
        raise _UNSIGNED
    return event


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "body is not JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "body is not a JSON object")
    return data


def _check_token(event: dict[str, Any], expected: str) -> None:
    header = event.get("header")
    token = header.get("token") if isinstance(header, dict) else event.get("token")
    if not isinstance(token, str) or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Refused(401, "wrong verification token")


def _check_signature(
    body: bytes, headers: dict[str, str], credentials: Credentials, now: float
) -> None:
    timestamp, nonce = headers.get(TIMESTAMP, ""), headers.get(NONCE, "")
    given = headers.get(SIGNATURE, "")
    wanted = signature(timestamp, nonce, credentials.encrypt_key, body)
    if not hmac.compare_digest(given.encode(), wanted.encode()):
        raise Refused(401, "wrong signature")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > credentials.max_age:
        raise Refused(401, "request outside the replay window")


@dataclass
class HttpDelivery:
    """The request URLs; `inbox` is None until the runtime has started (then 503, and Lark
    retries)."""

    credentials: Credentials
    inbox: Callable[[], Inbox | None]

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/lark/events", self.receive, methods=["POST"]),
            Route("/lark/card", self.receive, methods=["POST"]),
        ]

    async def receive(self, request: Request) -> Response:
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            body = await _capped_body(request)
            opened = open_request(body, headers, self.credentials)
        except Refused as refused:
            log.warning("lark.http_refused", status=refused.status, reason=refused.reason)
            return JSONResponse({"msg": refused.reason}, status_code=refused.status)
        if opened.event is None:
            return JSONResponse({"challenge": opened.challenge})
        inbox = self.inbox()
        if inbox is None:
            return JSONResponse({"msg": "starting; retry shortly"}, status_code=503)
        try:
            answer = await inbox.accept(opened.event, source="http")
        except Exception:  # not committed: Lark redelivers on a 5xx
            log.exception("lark.http_commit_failed")
            return JSONResponse({"msg": "not recorded; retry"}, status_code=500)
        return JSONResponse(answer if answer is not None else {"msg": "success"})


async def _capped_body(request: Request) -> bytes:
    """The body, read no further than `MAX_BODY` (a bigger one is refused, not buffered)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Refused(413, "body over 1 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def http_delivery(settings: Settings, inbox: Callable[[], Inbox | None]) -> list[BaseRoute]:
    """The request-URL routes for `settings` (`LARK_EVENT_DELIVERY=http`)."""
    credentials = Credentials(
        encrypt_key=settings.lark_encrypt_key.get_secret_value(),
        verification_token=settings.lark_verification_token.get_secret_value(),
        max_age=float(settings.lark_event_max_age_seconds),
    )
    return HttpDelivery(credentials, inbox).routes()
