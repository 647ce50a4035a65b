"""Alertmanager webhook payloads (version 4), and the alert-group shape Grafana reuses.

Alertmanager posts one notification per alert group::

    {"version": "4", "status": "firing", "receiver": "lark", "groupKey": "{}:{alertname=\\"X\\"}",
     "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...},
     "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "2024-05-01T02:00:00.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://prometheus:9090/graph?g0.expr=…", "fingerprint": "…"}]}

Each element of `alerts` becomes one `ParsedAlert` (at most `MAX_ALERTS`); its own `status`
wins over the group's. Alertmanager's own `fingerprint` stays in `raw`; ours is computed from the
identifying labels so every source shares one scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workflows.intake.alert import AlertParseError, ParsedAlert, Status
from workflows.intake.draft import AlertDraft
from workflows.intake.timestamps import parse_timestamp

MAX_ALERTS = 500

Extras = Callable[[Mapping[str, Any], dict[str, Any]], None]

_FIRING = frozenset({"firing", "alerting", "problem", "triggered", "active", "no_data"})
_RESOLVED = frozenset({"resolved", "ok", "recovered", "inactive", "normal"})


def status_of(value: object) -> Status | None:
    """`firing`/`resolved` for the status words sources use, None when unknown."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower().replace(" ", "_")
    if word in _FIRING:
        return "firing"
    if word in _RESOLVED:
        return "resolved"
    return None


def parse_alertmanager(payload: dict[str, Any]) -> list[ParsedAlert]:
    """Parse an Alertmanager webhook (version 4) notification into one alert per element.

    Raises `AlertParseError` when the payload is not an object, has no `alerts` list, or no
    element carries labels or annotations.

    Example::

        alerts = parse_alertmanager(json.loads(body))
        [(a.title, a.status, a.severity) for a in alerts]
        # [('NodeFilesystemAlmostFull', 'firing', 'critical')]
    """
    return parse_alert_group(payload, source="alertmanager")


def parse_alert_group(
    payload: object, *, source: str, extras: Extras | None = None
) -> list[ParsedAlert]:
    """Parse an Alertmanager-shaped group (`alerts[]` of label/annotation items)."""
    if not isinstance(payload, Mapping):
        raise AlertParseError(f"{source} payload is not a JSON object")
    items = payload.get("alerts")
    if not isinstance(items, list):
        raise AlertParseError(f"{source} payload has no alerts list")
    if not items:
        raise AlertParseError(f"{source} payload has an empty alerts list")
    group_status = status_of(payload.get("status"))
    alerts: list[ParsedAlert] = []
    reasons: list[str] = []
    for index, item in enumerate(items[:MAX_ALERTS]):
        draft = _draft(item, group_status, source, extras)
        if isinstance(draft, str):
            reasons.append(f"alerts[{index}] {draft}")
        else:
            alerts.append(draft.finish())
    if not alerts:
        raise AlertParseError(f"no usable alert in the {source} payload: {reasons[0]}")
    return alerts


def _draft(
    item: object, group_status: Status | None, source: str, extras: Extras | None
) -> AlertDraft | str:
    if not isinstance(item, Mapping):
        return "is not an object"
    labels = item.get("labels")
    labels = labels if isinstance(labels, Mapping) else {}
    annotations_in = item.get("annotations")
    annotations: dict[str, Any] = (
        dict(annotations_in) if isinstance(annotations_in, Mapping) else {}
    )
    if not labels and not annotations:
        return "has neither labels nor annotations"
    if extras is not None:
        extras(item, annotations)
    return AlertDraft(
        source=source,
        status=status_of(item.get("status")) or group_status or "firing",
        title=labels.get("alertname") or "",
        labels=labels,
        annotations=annotations,
        starts_at=parse_timestamp(item.get("startsAt")),
        ends_at=parse_timestamp(item.get("endsAt")),
        generator_url=item.get("generatorURL"),
        raw=item,
    )
