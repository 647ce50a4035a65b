"""Alert intake: parse alerts from webhooks and from alert bots' chat messages.

Every parser returns `list[ParsedAlert]` (clean, capped, inert data with a dedupe fingerprint)
and raises only `AlertParseError` (a `ValueError`) when nothing usable is found.

- `parse_alertmanager(payload)`: Alertmanager webhook, version 4;
- `parse_grafana(payload)`: Grafana unified alerting and legacy alert webhooks;
- `parse_generic(payload)`: our documented JSON shape (see `workflows.intake.generic`), or a
  Feishu custom bot's body;
- `parse_feishu(payload)`: a Feishu/Lark custom bot's body (`msg_type` text, post or
  interactive), read as the same message in a group would be (`workflows.intake.feishu`);
- `parse_chat_message(message_type, text, card)`: Alertmanager/Grafana texts, PrometheusAlert,
  Nightingale, WatchAlert, alertmanager-bot and alertmanager-webhook-feishu templates, alert
  cards and plain text posted in a Lark group;
- `fallback_alert(message_type, text, title)`: the alert of a message nothing could be read
  from (`understood=False`).

Fingerprints and the volatile labels they ignore: `workflows.intake.fingerprint`.

Usage::

    parser = WEBHOOK_PARSERS["alertmanager"]
    for alert in parser(json.loads(body)):
        print(alert.fingerprint, alert.status, alert.title)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workflows.intake.alert import AlertParseError, ParsedAlert, Severity, Status
from workflows.intake.alertmanager import parse_alertmanager
from workflows.intake.chat import fallback_alert, parse_chat_message
from workflows.intake.feishu import parse_feishu
from workflows.intake.fingerprint import VOLATILE_LABELS
from workflows.intake.generic import parse_generic
from workflows.intake.grafana import parse_grafana
from workflows.intake.severity import normalise_severity

WebhookParser = Callable[[dict[str, Any]], list[ParsedAlert]]

WEBHOOK_PARSERS: dict[str, WebhookParser] = {
    "alertmanager": parse_alertmanager,
    "grafana": parse_grafana,
    "generic": parse_generic,
    "feishu": parse_feishu,
}

__all__ = [
    "VOLATILE_LABELS",
    "WEBHOOK_PARSERS",
    "AlertParseError",
    "ParsedAlert",
    "Severity",
    "Status",
    "WebhookParser",
    "fallback_alert",
    "normalise_severity",
    "parse_alertmanager",
    "parse_chat_message",
    "parse_feishu",
    "parse_generic",
    "parse_grafana",
]
