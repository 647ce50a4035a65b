"""Alert webhooks: `POST /webhooks/alertmanager`, `/webhooks/grafana`, `/webhooks/generic`.

Each request needs `Authorization: Bearer <LARKOPS_WEBHOOK_TOKEN>` (when unset, a random token
is generated and kept in `$LARKOPS_HOME/webhook.token`). The payload is parsed at once (a bad
one gets a 400 saying why), committed to the durable inbox and answered `202`; triage happens
in the inbox workers. An identical delivery (Alertmanager retries) is a duplicate and starts
nothing. Alerts go to the chat named by `?chat=`, else `incidents.sources.<source>` in the
configuration, else `LARKOPS_ALERT_CHAT_ID`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
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
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
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
        try:
            alerts = parser(payload)
        except AlertParseError as exc:
            return _error(400, f"no usable alert: {exc}")
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
        if row is None:
            return JSONResponse({"status": "duplicate", "alerts": len(alerts)})
        self.wake()
        return JSONResponse({"status": "accepted", "alerts": len(alerts)}, status_code=202)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
