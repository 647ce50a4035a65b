"""Per-fingerprint facts of a report window: how much each alert fired and how it repeated.

One statement for a chat and a window `[since, until)` (definitions in `storage.reports`): each
incident of the chat opened before `until` is compared with the previous incident of its
fingerprint (a window function), then incidents opened in the window are aggregated per
fingerprint and joined (full outer) with the alerts received in the window, the newest
incident's title and labels, and the fingerprint's own dedupe window.

Usage::

    rows = (await session.execute(fingerprints_query(chat_id, since, until))).all()
    facts = [fingerprint_facts(row) for row in rows]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on

from storage.models import Alert, Approval, DedupeOverride, Incident

MAX_FINGERPRINTS = 200


@dataclass(frozen=True)
class FingerprintFacts:
    """One alert (fingerprint) in the window; `storage.reports` defines each number."""

    fingerprint: str
    alertname: str
    service: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    alerts: int = 0
    firing: int = 0
    incidents: int = 0
    handled: int = 0
    auto_resolved: int = 0
    median_auto_resolve: float | None = None
    median_open: float | None = None
    flaps: int = 0
    stale_repeats: int = 0
    longest_stale_gap: float | None = None
    dedupe_minutes: int | None = None  # its own dedupe window, when one is set


def seconds(later: Any, earlier: Any) -> ColumnElement[Any]:
    """`later - earlier` in seconds, in SQL."""
    return func.extract("epoch", later - earlier)


def percentile(fraction: float, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """The continuous percentile of `value` (NULLs ignored), in SQL."""
    return func.percentile_cont(fraction).within_group(value)


def number(value: Any) -> float | None:
    return None if value is None else float(value)


def fingerprint_facts(row: Any) -> FingerprintFacts:
    labels = {str(k): str(v) for k, v in dict(row.labels or {}).items()}
    return FingerprintFacts(
        fingerprint=str(row.fingerprint),
        alertname=labels.get("alertname") or str(row.title or row.fingerprint),
        service=row.service,
        labels=labels,
        alerts=int(row.alerts),
        firing=int(row.firing),
        incidents=int(row.incidents),
        handled=int(row.handled),
        auto_resolved=int(row.auto_resolved),
        median_auto_resolve=number(row.median_auto),
        median_open=number(row.median_open),
        flaps=int(row.flaps),
        stale_repeats=int(row.stale),
        longest_stale_gap=number(row.stale_gap),
        dedupe_minutes=row.dedupe_minutes,
    )


def fingerprints_query(chat_id: str, since: datetime, until: datetime) -> Any:
    """One row per fingerprint seen in the window, noisiest first."""
    i = Incident

    def previous(column: Any) -> Any:
        return func.lag(column).over(partition_by=i.fingerprint, order_by=(i.created_at, i.id))

    handled = or_(
        i.acknowledged_at.is_not(None),
        and_(i.resolved_by.is_not(None), i.resolved_by != "alert"),
        exists().where(Approval.incident_id == i.id, Approval.status.in_(("approved", "rejected"))),
    )
    seq = (
        select(
            i.id,
            i.fingerprint,
            i.title,
            i.service,
            i.labels,
            i.created_at,
            i.resolved_at,
            i.resolved_by,
            handled.label("handled"),
            previous(i.id).label("prev_id"),
            previous(i.resolved_at).label("prev_resolved"),
            previous(i.last_seen_at).label("prev_seen"),
        )
        .where(i.chat_id == chat_id, i.created_at < until)
        .cte("seq")
    )
    s = seq.c
    lifetime = seconds(s.resolved_at, s.created_at)
    by_alert = s.resolved_by == "alert"
    flap = and_(s.prev_resolved.is_not(None), s.prev_resolved <= s.created_at)
    stale = and_(
        s.prev_id.is_not(None), or_(s.prev_resolved.is_(None), s.prev_resolved > s.created_at)
    )
    opened = (
        select(
            s.fingerprint,
            func.count().label("incidents"),
            func.count().filter(s.handled).label("handled"),
            func.count().filter(by_alert).label("auto_resolved"),
            percentile(0.5, case((by_alert, lifetime))).label("median_auto"),
            percentile(0.5, lifetime).label("median_open"),
            func.count().filter(flap).label("flaps"),
            func.count().filter(stale).label("stale"),
            func.max(case((stale, seconds(s.created_at, s.prev_seen)))).label("stale_gap"),
        )
        .where(s.created_at >= since)
        .group_by(s.fingerprint)
        .subquery()
    )
    received = (
        select(
            Alert.fingerprint,
            func.count().label("alerts"),
            func.count().filter(Alert.status == "firing").label("firing"),
        )
        .join(i, i.id == Alert.incident_id)
        .where(i.chat_id == chat_id, Alert.received_at >= since, Alert.received_at < until)
        .group_by(Alert.fingerprint)
        .subquery()
    )
    newest = (
        select(s.fingerprint, s.title, s.service, s.labels)
        .ext(distinct_on(s.fingerprint))
        .order_by(s.fingerprint, s.id.desc())
        .subquery()
    )
    key = func.coalesce(opened.c.fingerprint, received.c.fingerprint)
    both = (
        select(
            key.label("fingerprint"),
            func.coalesce(received.c.alerts, 0).label("alerts"),
            func.coalesce(received.c.firing, 0).label("firing"),
            func.coalesce(opened.c.incidents, 0).label("incidents"),
            func.coalesce(opened.c.handled, 0).label("handled"),
            func.coalesce(opened.c.auto_resolved, 0).label("auto_resolved"),
            opened.c.median_auto,
            opened.c.median_open,
            func.coalesce(opened.c.flaps, 0).label("flaps"),
            func.coalesce(opened.c.stale, 0).label("stale"),
            opened.c.stale_gap,
        )
        .select_from(opened)
        .join(received, opened.c.fingerprint == received.c.fingerprint, full=True)
        .subquery()
    )
    return (
        select(
            both,
            newest.c.title,
            newest.c.service,
            newest.c.labels,
            DedupeOverride.minutes.label("dedupe_minutes"),
        )
        .outerjoin(newest, newest.c.fingerprint == both.c.fingerprint)
        .outerjoin(DedupeOverride, DedupeOverride.fingerprint == both.c.fingerprint)
        .order_by(both.c.alerts.desc(), both.c.incidents.desc(), both.c.fingerprint)
        .limit(MAX_FINGERPRINTS)
    )
