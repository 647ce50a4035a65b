"""The generic alert webhook: our own documented JSON shape, for anything that is not
Alertmanager or Grafana (cron jobs, scripts, other monitoring tools).

Body: one alert object, or ``{"alerts": [alert, ...]}`` (at most 500 alerts). An alert::

    {
      "title": "Disk almost full on db-1",   # required: non-empty string (<= 200 chars kept)
      "status": "firing",                    # "firing" (default) or "resolved"
      "severity": "critical",                # critical|warning|info, also P0-P3, 紧急/严重/警告/
                                             # 提示…; unknown or missing -> "warning"
      "labels": {"host": "db-1", "service": "mysql"},   # string -> string; what the alert is
                                                        # about (identity, routing, runbooks)
      "annotations": {"summary": "…", "runbook_url": "…"},   # string -> string; free text
      "summary": "…",                        # optional, same as annotations.summary
      "starts_at": "2024-05-01T10:00:00+08:00",   # ISO 8601; without offset = UTC
      "ends_at": "2024-05-01T10:30:00Z",          # kept for resolved alerts only
      "generator_url": "https://…",         # optional http(s) link back to the source
      "fingerprint": "db-1-disk"             # optional: alerts sharing it are one incident
    }

Fingerprint: without an override, the identifying labels plus the title when `labels` has no
`alertname` (see `workflows.intake.fingerprint`): keep titles stable (no changing numbers in
them) or send your own `fingerprint`. An override of 16 lowercase hex characters is used as is;
any other string is hashed to that form. Non-string label/annotation values are stored as their
JSON text; at most 64 labels and 64 annotations are kept.

Resolve an alert by posting it again with ``"status": "resolved"`` and the same labels (or the
same fingerprint).

A body in a Feishu custom bot's shape (``{"msg_type": "text", "content": {"text": …}}``, post or
interactive; no ``title``) is read as that message (`workflows.intake.feishu`), so a forwarder
that only knows Feishu hooks can post here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflows.intake.alert import AlertParseError, ParsedAlert
from workflows.intake.alertmanager import MAX_ALERTS, status_of
from workflows.intake.draft import AlertDraft
from workflows.intake.feishu import parse_feishu
from workflows.intake.text import clean_line
from workflows.intake.timestamps import parse_timestamp


def parse_generic(payload: dict[str, Any]) -> list[ParsedAlert]:
    """Parse the generic webhook shape (module docstring) into alerts.

    Raises `AlertParseError` when the body is not an object or no alert has a title.

    Example::

        parse_generic({"title": "Disk almost full", "severity": "P1",
                       "labels": {"host": "db-1"}})[0].severity
        # 'critical'
    """
    if not isinstance(payload, Mapping):
        raise AlertParseError("generic payload is not a JSON object")
    if "msg_type" in payload and "title" not in payload and "alerts" not in payload:
        return parse_feishu(dict(payload))  # a forwarder's Feishu custom bot body
    items: object = payload.get("alerts") if "alerts" in payload else [payload]
    if not isinstance(items, list):
        raise AlertParseError("generic payload: alerts is not a list")
    if not items:
        raise AlertParseError("generic payload has an empty alerts list")
    alerts: list[ParsedAlert] = []
    reasons: list[str] = []
    for index, item in enumerate(items[:MAX_ALERTS]):
        draft = _draft(item)
        if isinstance(draft, str):
            reasons.append(f"alert {index}: {draft}" if "alerts" in payload else draft)
        else:
            alerts.append(draft.finish())
    if not alerts:
        raise AlertParseError(f"no usable alert in the generic payload: {reasons[0]}")
    return alerts


def _draft(item: object) -> AlertDraft | str:
    if not isinstance(item, Mapping):
        return "is not an object"
    title = item.get("title")
    if not isinstance(title, str) or not clean_line(title, 200):
        return 'needs a non-empty string "title"'
    annotations_in = item.get("annotations")
    annotations: dict[Any, Any] = (
        dict(annotations_in) if isinstance(annotations_in, Mapping) else {}
    )
    if item.get("summary") and "summary" not in annotations:
        annotations["summary"] = item.get("summary")
    labels = item.get("labels")
    return AlertDraft(
        source="generic",
        status=status_of(item.get("status")) or "firing",
        title=title,
        severity=item.get("severity") or "",
        labels=labels if isinstance(labels, Mapping) else {},
        annotations=annotations,
        starts_at=parse_timestamp(item.get("starts_at")),
        ends_at=parse_timestamp(item.get("ends_at")),
        generator_url=item.get("generator_url"),
        fingerprint=item.get("fingerprint"),
        raw=item,
    )
