"""Grafana alert webhooks: unified alerting (Grafana 8+) and the legacy dashboard alerts.

Unified alerting posts the Alertmanager group shape with extra fields::

    {"receiver": "lark", "status": "firing", "orgId": 1, "version": "1", "state": "alerting",
     "title": "[FIRING:1] HighCPU infra", "message": "…", "groupKey": "…", "externalURL": "…",
     "alerts": [{…Alertmanager item…, "silenceURL": "…", "dashboardURL": "…", "panelURL": "…",
                 "imageURL": "…", "values": {"B": 91.5, "C": 1},
                 "valueString": "[ var='B' labels={instance=db-1} value=91.5 ]"}]}

The extras become annotations (`silence_url`, `dashboard_url`, `panel_url`, `image_url`,
`values`, `value_string`), never labels, so changing values never change the fingerprint.

Legacy alerting (Grafana <= 10) posts one rule::

    {"title": "[Alerting] CPU alert", "ruleId": 1, "ruleName": "CPU alert",
     "state": "alerting" | "ok" | "no_data" | "pending" | "paused", "message": "…",
     "ruleUrl": "http://grafana/d/…", "imageUrl": "…", "tags": {…},
     "evalMatches": [{"metric": "cpu", "value": 91.5, "tags": {…}}], "orgId": 1, …}

It becomes one alert labelled `alertname` (the rule name), `rule_id` and the rule's tags;
`alerting` and `no_data` fire, `ok` resolves, `pending`/`paused` are not alerts (AlertParseError).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflows.intake.alert import AlertParseError, ParsedAlert
from workflows.intake.alertmanager import parse_alert_group, status_of
from workflows.intake.draft import AlertDraft, http_url
from workflows.intake.text import as_text

MAX_EVAL_MATCHES = 20
_URL_EXTRAS = (
    ("silenceURL", "silence_url"),
    ("dashboardURL", "dashboard_url"),
    ("panelURL", "panel_url"),
    ("imageURL", "image_url"),
)
_LEGACY_KEYS = ("ruleName", "ruleId", "evalMatches", "ruleUrl")
_STATE_PREFIXES = ("[alerting]", "[ok]", "[no data]", "[pending]", "[paused]")


def parse_grafana(payload: dict[str, Any]) -> list[ParsedAlert]:
    """Parse a Grafana webhook, unified (has `alerts`) or legacy (has `ruleName`/`state`).

    Example::

        parse_grafana({"ruleName": "CPU alert", "ruleId": 7, "state": "ok"})[0].status
        # 'resolved'
    """
    if not isinstance(payload, Mapping):
        raise AlertParseError("grafana payload is not a JSON object")
    if "alerts" in payload:
        return parse_alert_group(payload, source="grafana", extras=_unified_extras)
    if any(key in payload for key in _LEGACY_KEYS) or "state" in payload:
        return [_legacy(payload)]
    raise AlertParseError("grafana payload has neither alerts (unified) nor ruleName (legacy)")


def _unified_extras(item: Mapping[str, Any], annotations: dict[str, Any]) -> None:
    for field, name in _URL_EXTRAS:
        url = http_url(item.get(field))
        if url and name not in annotations:
            annotations[name] = url
    values = item.get("values")
    if isinstance(values, Mapping) and values and "values" not in annotations:
        pairs = list(values.items())[:20]
        annotations["values"] = ", ".join(
            f"{as_text(key, 64)}={as_text(value, 64)}" for key, value in pairs
        )
    value_string = item.get("valueString")
    if value_string and "value_string" not in annotations:
        annotations["value_string"] = value_string


def _legacy(payload: Mapping[str, Any]) -> ParsedAlert:
    state = as_text(payload.get("state"), 32).strip().lower()
    status = status_of(state)
    if status is None:
        raise AlertParseError(f"legacy grafana state {state[:32]!r} is not an alert to act on")
    rule = payload.get("ruleName") or _strip_state(as_text(payload.get("title"), 400))
    if not rule:
        raise AlertParseError("legacy grafana payload has no ruleName or title")
    tags = payload.get("tags")
    labels: dict[str, Any] = dict(tags) if isinstance(tags, Mapping) else {}
    labels["alertname"] = rule
    if payload.get("ruleId") is not None:
        labels["rule_id"] = payload.get("ruleId")
    annotations: dict[str, Any] = {}
    if payload.get("message"):
        annotations["message"] = payload.get("message")
    if state == "no_data":
        annotations["state"] = "no_data"
    matches = _eval_matches(payload.get("evalMatches"))
    if matches:
        annotations["eval_matches"] = matches
    image = http_url(payload.get("imageUrl"))
    if image:
        annotations["image_url"] = image
    return AlertDraft(
        source="grafana",
        status=status,
        title=rule,
        labels=labels,
        annotations=annotations,
        generator_url=payload.get("ruleUrl"),
        raw=payload,
    ).finish()


def _strip_state(title: str) -> str:
    text = title.strip()
    for prefix in _STATE_PREFIXES:
        if text.lower().startswith(prefix):
            return text[len(prefix) :].strip()
    return text


def _eval_matches(value: object) -> str:
    if not isinstance(value, list):
        return ""
    parts = []
    for match in value[:MAX_EVAL_MATCHES]:
        if isinstance(match, Mapping):
            metric = as_text(match.get("metric"), 200) or "value"
            parts.append(f"{metric}={as_text(match.get('value'), 64)}")
    return "; ".join(parts)
