"""Alert webhooks: `POST /webhooks/alertmanager`, `/webhooks/grafana`, `/webhooks/generic`,
`/webhooks/feishu`.

Each request needs `Authorization: Bearer <LARKOPS_WEBHOOK_TOKEN>` (when unset, a random token
is generated and kept in `$LARKOPS_HOME/webhook.token`). `/webhooks/feishu` takes a Feishu custom
bot's body (`msg_type` text/post/interactive), so any forwarder that posts to a Feishu group hook
can post here; such forwarders set no header, so the body may instead be signed as Feishu's
hooks are, with the token as the hook's secret (`timestamp` + `sign`), and is answered as Feishu
answers (200, `code` 0). The payload is parsed at once (a bad one gets a 400 saying why),
committed to the durable inbox and answered `202`; triage happens in the inbox workers. A CI/CD
notice (no alert) is answered `ignored` and kept nowhere. An identical delivery (Alertmanager
retries) is a duplicate and starts nothing. Alerts go to the chat named by `?chat=`, else
`incidents.sources.<source>` in the configuration, else `LARKOPS_ALERT_CHAT_ID`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import Settings
from bot.logs import current_trace_id, get_logger
from storage import inbound
from storage.database import Database
from workflows.intake import WEBHOOK_PARSERS, AlertParseError

log = get_logger(__name__)
MAX_BODY = 5 * 2**20
FEISHU = "feishu"  # Feishu custom bot bodies: bearer token, or Feishu's own signature
SIGN_WINDOW = 3600  # seconds a signed body's timestamp may be off, as Feishu allows


def webhook_token(settings: Settings) -> str:
    configured = settings.webhook_token.get_secret_value()
    if configured:
        return configured
    path = settings.home / "webhook.token"
    try:
        existing = path.read_text(encoding="utf-8").strip()
        if existing:
            return existing
    except OSError:
        pass
    settings.home.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token)
    log.warning("webhook.token_generated", path=str(Path(path).resolve()))
    return token


@dataclass
class WebhookSink:
    """Where accepted deliveries go; `db` and `wake` are set once the app is ready."""

    settings: Settings
    token: str
    db: Database | None = None
    wake: Callable[[], None] = field(default=lambda: None)

    def routes(self) -> list[BaseRoute]:
        return [Route("/webhooks/{source}", self.receive, methods=["POST"])]

    def _chat(self, request: Request, source: str) -> str:
        return (
            request.query_params.get("chat")
            or self.settings.incidents.sources.get(source)
            or self.settings.alert_chat_id
        )

    async def receive(self, request: Request) -> Response:
        source = request.path_params["source"]
        parser = WEBHOOK_PARSERS.get(source)
        if parser is None:
            return _error(404, f"unknown source {source!r}; use {', '.join(WEBHOOK_PARSERS)}")
        given = request.headers.get("authorization", "")
        bearer = hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())
        if not bearer and source != FEISHU:  # a Feishu hook body may be signed instead
            return _error(401, "missing or wrong bearer token")
        if self.db is None:
            return _error(503, "starting; retry shortly")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, f"payload over {MAX_BODY} bytes")
        try:
            payload = json.loads(body)
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(payload, dict):
            return _error(400, "body is not a JSON object")
        if not bearer and not feishu_signed(payload, self.token, time.time()):
            return _error(401, "missing or wrong bearer token or Feishu signature")
        try:
            alerts = parser(payload)
        except AlertParseError as exc:
            return _error(400, f"no usable alert: {exc}")
        if not alerts:  # a CI/CD notice, a report or chat posted by the forwarder: nothing to open
            log.info("webhook.not_an_alert", source=source, reason="notice_or_chat")
            return _answer(source, {"status": "ignored", "reason": "not_an_alert", "alerts": 0})
        chat = self._chat(request, source)
        if not chat:
            return _error(400, "no chat for these alerts: set LARKOPS_ALERT_CHAT_ID or ?chat=")
        digest = hashlib.sha256(b"\x1f".join([source.encode(), chat.encode(), body])).hexdigest()
        row = await inbound.record(
            self.db,
            event_id=f"webhook:{digest[:40]}",
            event_type=f"alert.{source}",
            # the dispatch of the delivery continues the request's trace
            # the alerts as parsed here: the inbox does not parse the body again
            payload={
                "chat_id": chat,
                "alerts": [alert.as_json() for alert in alerts],
                "trace_id": current_trace_id(),
            },
            source="webhook",
        )
        self.wake()  # a duplicate too: `record` may have stored it in a try it saw no answer of
        if row is None:
            return _answer(source, {"status": "duplicate", "alerts": len(alerts)})
        return _answer(source, {"status": "accepted", "alerts": len(alerts)}, 202)


def feishu_signed(payload: dict[str, object], secret: str, now: float) -> bool:
    """Whether a Feishu custom bot body carries the signature Feishu itself checks, with the
    webhook token as the hook's secret: `sign` = base64(HMAC-SHA256 keyed by
    "<timestamp>\\n<secret>" over nothing), `timestamp` (seconds) within an hour of `now`."""
    stamp, sign = payload.get("timestamp"), payload.get("sign")
    if not isinstance(sign, str) or not isinstance(stamp, str | int) or isinstance(stamp, bool):
        return False
    try:
        seconds = int(stamp)
    except ValueError:
        return False
    if abs(now - seconds) > SIGN_WINDOW:
        return False
    key = f"{seconds}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    return hmac.compare_digest(sign.encode(), expected.encode())


def _answer(source: str, body: dict[str, object], status: int = 200) -> Response:
    """A delivery's answer; a Feishu hook body gets what Feishu answers its senders too (200,
    `code` 0), since forwarders check it."""
    if source == FEISHU:
        return JSONResponse({"code": 0, "msg": "success", **body})
    return JSONResponse(body, status_code=status)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
