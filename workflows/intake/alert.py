"""The parsed alert every intake parser returns, and the one error they raise.

A `ParsedAlert` is plain, bounded, inert data: every string has had control characters removed
and is capped, datetimes are aware UTC, `raw` is a size-capped JSON-safe copy of the original
item. Nothing in it is ever interpreted (no shell, no template, no markup) by intake.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

Severity = Literal["critical", "warning", "info"]
Status = Literal["firing", "resolved"]

TITLE_LIMIT = 200
SUMMARY_LIMIT = 2000


class AlertParseError(ValueError):
    """Nothing usable was found in a payload or message; the message says why."""


@dataclass(frozen=True)
class ParsedAlert:
    """One alert, normalised from any supported source.

    `fingerprint` identifies the alert across repeats and across firing/resolved
    notifications (see `workflows.intake.fingerprint`); dedupe keys on it.

    Example::

        alerts = parse_alertmanager(payload)
        alerts[0].status, alerts[0].severity, alerts[0].fingerprint
        # ('firing', 'critical', '5f0c2b7e9a1d3c44')
    """

    source: str  # "alertmanager" | "grafana" | "prometheusalert" | "generic" | "text"
    status: Status
    title: str  # <= 200 chars, single line, control characters stripped
    severity: Severity
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None  # aware, UTC
    ends_at: datetime | None  # aware, UTC; only for resolved alerts
    fingerprint: str  # 16 lowercase hex characters
    service: str | None
    summary: str  # <= 2000 chars
    generator_url: str | None  # http(s) only
    raw: dict[str, Any]  # the original item, JSON-safe, <= 16 KiB serialised
    # False for a chat message the bot could not read: an alert of its first line and its text
    understood: bool = True

    def as_json(self) -> dict[str, Any]:
        """The alert as JSON (times as ISO 8601): what the inbox keeps of a webhook delivery,
        so the payload is parsed once, at the door."""
        # a shallow copy (no `asdict`: it deep-copies `raw`, the most costly part of an alert
        # storm's intake); the result is only ever serialised
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("starts_at", "ends_at"):
            moment = data[key]
            data[key] = moment.isoformat() if moment is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParsedAlert:
        """The alert `as_json` kept (ValueError/TypeError/KeyError when it is not one)."""
        fields = dict(data)
        for key in ("starts_at", "ends_at"):
            moment = fields.get(key)
            fields[key] = datetime.fromisoformat(moment) if moment is not None else None
        return cls(**fields)
