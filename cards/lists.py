"""Cards that list things: an alert storm, an incident's timeline, incidents, silences.

Usage::

    say, zone = texts("en"), ZoneInfo("Asia/Shanghai")
    incidents_card(rows, title=say("incidents.open_title"), say=say, zone=zone)
    timeline_card(incident_view, entries, say=say, zone=zone)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from cards.basics import button, card, markdown, more
from cards.incident import cause_words, colour, finding, severity_name, status_name
from cards.markup import clock, fit, inline, mention, unmarked
from cards.paging import page_event
from cards.texts import Texts
from cards.views import (
    IncidentRow,
    IncidentView,
    PendingSilenceView,
    SeenBefore,
    SilenceRequestView,
    SilenceView,
    StormView,
    TimelineEntry,
)

MAX_ROWS = 30
MAX_GROUPS = 15
MAX_ENTRIES = 40
_SHORT = "%m-%d %H:%M"
_SECONDS = "%m-%d %H:%M:%S"
_ACTOR_ID = ("ou_", "on_", "u_")


def storm_card(view: StormView, say: Texts, zone: ZoneInfo) -> dict[str, Any]:
    """Many alerts arrived at once: how many, grouped by fingerprint, largest groups first."""
    del zone  # the storm card shows no times; the parameter keeps every card call alike
    summary = say(
        "card.storm.summary",
        total=view.total,
        window=view.window_seconds,
        groups=len(view.groups),
    )
    lines = []
    for fingerprint, title, count in view.groups[:MAX_GROUPS]:
        incident = view.incident_ids.get(fingerprint)
        key = "card.storm.group" if incident is None else "card.storm.group_incident"
        lines.append("- " + say(key, count=count, title=inline(title, 120), id=incident))
    lines += more(len(view.groups), MAX_GROUPS, say)
    elements = [markdown(summary)]
    if lines:
        elements.append(markdown("\n".join(lines)))
    elements.append(markdown(say("card.storm.hint"), size="notation"))
    template = "red" if view.total >= 50 else "orange"
    return fit(card(say("card.storm.title"), elements, template=template))


def timeline_card(
    incident: IncidentView, entries: Sequence[TimelineEntry], say: Texts, zone: ZoneInfo
) -> dict[str, Any]:
    """What happened to one incident, oldest first (the latest entries when there are many)."""
    ordered = sorted(entries, key=lambda entry: entry.at)
    shown = ordered[-MAX_ENTRIES:]
    lines = []
    if len(ordered) > len(shown):
        lines.append(say("card.timeline.omitted", count=len(ordered) - len(shown)))
    for entry in shown:
        line = say(
            "card.timeline.entry",
            time=clock(entry.at, zone, _SECONDS),
            kind=_kind(entry.kind, say),
            actor=_actor(entry.actor, say),
            message=event_words(entry.kind, entry.message, entry.data, say),
        )
        lines.append(f"- {line}")
    content = "\n".join(lines) if lines else say("card.timeline.empty")
    title = say("card.timeline.title", id=incident.id, title=inline(incident.title, 120))
    return fit(
        card(title, [markdown(content)], template=colour(incident.severity, incident.status))
    )


def event_words(kind: str, message: str, data: Mapping[str, Any], say: Texts) -> str:
    """What an audit event says, in the reader's words: its codes and values when it has them
    (a refused click's reason, a decision, a finding, a cause), else its stored message."""
    words = _event_words(kind, data, say)
    return words if words is not None else inline(message, 300)


def event_text(kind: str, message: str, data: Mapping[str, Any], say: Texts) -> str:
    """`event_words` as plain text (a document, the REST API): a mention reads as the
    open_id, escapes as the characters they stand for."""
    return unmarked(event_words(kind, message, data, say))


def _event_words(kind: str, data: Mapping[str, Any], say: Texts) -> str | None:
    if kind == "page.sent":
        return page_event(data, say)
    gate = str(data.get("gate") or "")
    gate_name = say(f"card.gate.name.{gate}") if say.has(f"card.gate.name.{gate}") else ""
    if kind == "click.refused":
        reason = str(data.get("reason") or "")
        key = f"timeline.refused.{reason}"
        if say.has(key):
            return say(key, needs=inline(str(data.get("needs", "")), 60))
        return say("timeline.refused.other", reason=inline(reason, 80)) if reason else None
    if kind == "click.accepted":
        decision = str(data.get("decision") or "")
        key = f"timeline.decision.{decision}"
        return say(key, gate=gate_name) if say.has(key) else None
    if kind == "workflow.diagnosed":
        codes = data.get("codes")
        return finding(codes.get("summary"), say) if isinstance(codes, Mapping) else None
    if kind == "workflow.escalated":
        cause = data.get("cause")
        if isinstance(cause, Mapping) and cause.get("code"):
            values = cause.get("values")
            given = values if isinstance(values, Mapping) else {}
            found = cause.get("finding")
            shown = found if isinstance(found, Mapping) else None
            return cause_words(str(cause["code"]), given, "", say, shown)
        return None
    if kind == "gate.opened" and gate_name:
        return say("timeline.gate_opened", gate=gate_name)
    if kind in ("workflow.executed", "workflow.verified") and "ok" in data:
        key = f"timeline.{kind.split('.')[1]}.{'ok' if data.get('ok') else 'failed'}"
        return say(key, plugin=inline(str(data.get("plugin") or ""), 60))
    if kind in ("workflow.proposed", "workflow.no_proposal"):
        plugin = str(data.get("plugin") or "")
        return say("timeline.proposed", plugin=inline(plugin, 60)) if plugin else ""
    if kind == "policy.decided":
        decided = str(data.get("kind") or "")
        key = f"timeline.policy.{decided}"
        if say.has(key):
            risk = str(data.get("risk") or "")
            named = say(f"card.risk.{risk}") if say.has(f"card.risk.{risk}") else inline(risk, 20)
            return say(key, risk=named)
    return None


def kind_name(kind: str, say: Texts) -> str:
    """An audit kind in the reader's words (the code itself when it is one not worded yet)."""
    key = f"card.timeline.kind.{kind}"
    return say(key) if say.has(key) else inline(kind, 30)


_kind = kind_name


def _actor(actor: str, say: Texts | None = None) -> str:
    """An open_id becomes an @-mention (Lark shows the name); `system`, `alert` and the like
    are words in the reader's language."""
    if actor.startswith(_ACTOR_ID):
        return mention(actor)
    if say is not None and say.has(f"card.actor.{actor}"):
        return say(f"card.actor.{actor}")
    return inline(actor, 40)


def incidents_card(
    rows: Sequence[IncidentRow], title: str, say: Texts, zone: ZoneInfo
) -> dict[str, Any]:
    """A list of incidents under the caller's `title` (already in the reader's language)."""
    lines = [
        "- "
        + say(
            "card.incidents.row",
            id=row.id,
            severity=severity_name(row.severity, say),
            title=inline(row.title, 120),
            count=max(row.alert_count, 0),
            status=status_name(row.status, say),
            time=clock(row.last_seen, zone, _SHORT),
        )
        for row in rows[:MAX_ROWS]
    ]
    lines += more(len(rows), MAX_ROWS, say)
    content = "\n".join(lines) if lines else say("card.incidents.empty")
    worst = next(
        (s for s in ("critical", "warning", "info") if any(r.severity == s for r in rows)), ""
    )
    template = colour(worst, "") if rows else "green"
    return fit(card(inline(title, 120), [markdown(content)], template=template))


def silences_card(
    rows: Sequence[SilenceView],
    say: Texts,
    zone: ZoneInfo,
    ends: Mapping[int, dict[str, Any]] | None = None,
    pending: Sequence[PendingSilenceView] = (),
) -> dict[str, Any]:
    """The active silences: what each one matches, until when, and who made it; `ends`
    (silence id → signed button value) adds a button that ends each one early. `pending`:
    requests awaiting another approver's confirmation, who asked and when each expires."""
    lines = [
        "- "
        + say(
            "card.silences.row",
            id=row.id,
            matcher=f"`{inline(row.matcher, 160)}`",
            until=clock(row.until, zone, _SHORT),
            person=_actor(row.created_by, say),
            caught=row.caught,
        )
        for row in rows[:MAX_ROWS]
    ]
    lines += more(len(rows), MAX_ROWS, say)
    content = "\n".join(lines) if lines else say("card.silences.empty")
    elements: list[dict[str, Any]] = [markdown(content)]
    if pending:
        waiting = [
            "- "
            + say(
                "card.silences.pending_row",
                id=item.id,
                matcher=f"`{inline(item.matcher, 160)}`",
                duration=inline(item.duration, 20),
                person=_actor(item.requested_by, say),
                expires=clock(item.expires_at, zone, _SHORT),
            )
            for item in pending[:MAX_ROWS]
        ]
        waiting += more(len(pending), MAX_ROWS, say)
        elements.append(markdown("\n".join([f"**{say('card.silences.pending')}**", *waiting])))
    buttons = [
        button(say("card.silences.end", id=row.id), dict(ends[row.id]))
        for row in rows[:MAX_ROWS]
        if ends and row.id in ends
    ]
    if buttons:
        elements.append(
            {
                "tag": "column_set",
                "flex_mode": "flow",
                "columns": [{"tag": "column", "width": "auto", "elements": [b]} for b in buttons],
            }
        )
    return fit(card(say("card.silences.title"), elements, template="grey"))


def silence_request_card(
    view: SilenceRequestView,
    say: Texts,
    zone: ZoneInfo,
    buttons: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A silence waiting for another approver (with `buttons`: the gate's signed
    `approve_value` / `reject_value`), or what became of it: in force, rejected, expired."""
    facts = say(
        "card.silence_request.facts",
        matcher=f"`{inline(view.matcher, 160)}`",
        duration=inline(view.duration, 20),
        person=_actor(view.requested_by, say),
    )
    lines = [facts]
    if view.reason:
        lines.append(say("card.silence_request.reason", reason=inline(view.reason, 300)))
    lines += [say(f"card.silence_request.why.{code}") for code in view.why]
    elements: list[dict[str, Any]] = [markdown("\n".join(lines))]
    decided = _actor(view.decided_by, say) if view.decided_by else "—"
    outcome = say(
        f"card.silence_request.{view.status}",
        hours=view.ttl_hours,
        person=decided,
        until=clock(view.until, zone, _SHORT),
    )
    elements.append(markdown(outcome))
    if view.status == "pending" and buttons:
        elements.append(
            {
                "tag": "column_set",
                "flex_mode": "flow",
                "columns": [
                    {"tag": "column", "width": "auto", "elements": [b]}
                    for b in (
                        button(
                            say("card.gate.approve"), dict(buttons["approve_value"]), kind="primary"
                        ),
                        button(
                            say("card.gate.reject"), dict(buttons["reject_value"]), kind="danger"
                        ),
                    )
                ],
            }
        )
    template = {"pending": "orange", "active": "grey", "rejected": "grey", "expired": "grey"}
    title = say(f"card.silence_request.title.{view.status}", id=view.id)
    return fit(card(title, elements, template=template.get(view.status, "grey")))


def _outcome(outcome: str, say: Texts) -> str:
    """How a remembered incident ended (`escalated`, `verified`, `resolved`) in words."""
    key = f"memory.outcome.{outcome}"
    return say(key) if say.has(key) else inline(outcome, 40)


def similar_card(incident_id: int, rows: Sequence[SeenBefore], say: Texts) -> dict[str, Any]:
    """Past incidents and notes like incident `incident_id`, closest first."""
    lines = [
        "- "
        + say(
            "card.diagnosis.seen_line",
            id=row.incident_id,
            title=inline(row.title, 120),
            similarity=round(min(max(row.similarity, 0.0), 1.0) * 100),
            fix=inline(row.fix or say("card.diagnosis.fix_unknown"), 200),
        )
        + (f" · {_outcome(row.outcome, say)}" if row.outcome else "")
        for row in rows[:MAX_ROWS]
    ]
    body = "\n".join(lines) if lines else say("memory.none")
    elements = [markdown(body), markdown(say("memory.hint"), size="notation")]
    return fit(card(say("memory.title", id=incident_id), elements))
