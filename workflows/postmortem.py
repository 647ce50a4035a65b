"""Postmortem drafts: what happened to a resolved incident, from its audit timeline.

`draft` gathers the facts (impact window, MTTA/MTTR, every timeline entry, the diagnosis and its
evidence, what fixed it, similar past incidents) and the action items, as values and codes:
`cards/postmortem.py` words them into a Feishu document in the chat's language. No model is
needed (a structured template); YAML `postmortems: {enabled: true}` drafts one for every
resolved incident, `/postmortem <id>` drafts it again.

    found = draft(incident, events, diagnosis, executions)
    found.mtta, found.timeline[0].kind, found.actions     # timedelta, "incident.opened", (...)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from cards.views import ActionCode, ActionSubject, PostmortemEntry, PostmortemView

SLOW_ACK = timedelta(minutes=15)


class PostmortemConfig(BaseModel):
    """The YAML `postmortems:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False  # draft one for every resolved incident
    folder_token: str = ""  # the Feishu folder the documents go to ("": the app's space)
    url: str = "https://feishu.cn/docx/{document_id}"  # how the card links a document


def draft(
    incident: Any,
    events: Sequence[Any],
    diagnosis: Any | None,
    executions: Sequence[Any],
) -> PostmortemView:
    """The postmortem of `incident` (a `storage.models.Incident`) from its timeline
    (`IncidentEvent` rows), latest diagnosis and executions."""
    ran = [e for e in executions if e.step == "execute"]
    fix = (ran[-1].plugin, ran[-1].summary or "") if ran else None
    fix_finding = dict((ran[-1].data or {}).get("finding") or {}) if ran else {}
    verified = next(
        (bool(e.data.get("ok")) for e in reversed(events) if e.kind == "workflow.verified"), None
    )
    details = dict(diagnosis.details or {}) if diagnosis is not None else {}
    similar = tuple(
        (int(s.get("incident_id", 0)), str(s.get("title", "")), str(s.get("fix") or ""))
        for s in details.get("similar") or []
        if isinstance(s, dict)
    )
    found = PostmortemView(
        incident_id=incident.id,
        title=incident.title,
        severity=incident.severity,
        service=incident.service,
        opened=incident.created_at,
        resolved=incident.resolved_at,
        acknowledged=incident.acknowledged_at,
        acknowledged_by=incident.acknowledged_by,
        resolved_by=incident.resolved_by,
        note=incident.resolved_note,
        alerts=incident.alert_count,
        timeline=tuple(
            PostmortemEntry(e.created_at, e.kind, e.actor, e.message, dict(e.data or {}))
            for e in events
        ),
        diagnosis=diagnosis.summary if diagnosis is not None else "",
        hypotheses=tuple(
            (str(h[0]), float(h[1]))
            for h in (diagnosis.hypotheses if diagnosis else [])
            if len(h) == 2
        ),
        evidence=tuple(
            (str(e[0]), str(e[1])) for e in (diagnosis.evidence if diagnosis else []) if len(e) == 2
        ),
        fix=fix,
        verified=verified,
        similar=similar,
        actions=(),
        codes=dict(details.get("codes") or {}),
        fix_finding=fix_finding,
    )
    return PostmortemView(**{**found.__dict__, "actions": _actions(found, diagnosis, details)})


def _actions(
    found: PostmortemView, diagnosis: Any | None, details: dict[str, Any]
) -> tuple[tuple[ActionCode, ActionSubject], ...]:
    """What to do so it goes better next time: the diagnosis' open checks, a runbook when none
    matched, a faster acknowledgement when it was slow, a verification when the fix had none."""
    codes = details.get("codes") or {}
    coded = list(codes.get("next_checks") or []) if isinstance(codes, dict) else []
    items: list[tuple[ActionCode, ActionSubject]] = [
        ("check", _check(str(check), coded[n] if n < len(coded) else None))
        for n, check in enumerate((diagnosis.next_checks if diagnosis else [])[:5])
    ]
    summary = codes.get("summary") if isinstance(codes, dict) else None
    if isinstance(summary, dict) and summary.get("code") == "no_runbook":
        items.append(("runbook", found.title))
    if found.mtta is not None and found.mtta > SLOW_ACK:
        items.append(("faster_ack", ""))
    if found.fix is not None and found.verified is None:
        items.append(("verify", found.fix[0]))
    return tuple(items)


def _check(text: str, found: Any) -> ActionSubject:
    """A check to make: its finding code and values when the diagnosis gave one (its own line
    kept under "text"), else its line."""
    if isinstance(found, dict) and found.get("code"):
        return {**found, "text": text}
    return text


def facts_of(found: PostmortemView) -> dict[str, Any]:
    """What a model may word (`workflows.llm.summary.word_postmortem`): the facts only."""
    return {
        "title": found.title,
        "severity": found.severity,
        "service": found.service,
        "alerts": found.alerts,
        "opened": found.opened.isoformat(),
        "resolved": found.resolved.isoformat() if found.resolved else None,
        "minutes_to_acknowledge": round(found.mtta.total_seconds() / 60) if found.mtta else None,
        "minutes_to_resolve": round(found.mttr.total_seconds() / 60) if found.mttr else None,
        "diagnosis": found.diagnosis[:500],
        "fix": {"plugin": found.fix[0], "summary": found.fix[1][:300]} if found.fix else None,
        "verified": found.verified,
        "note": found.note,
        "timeline": [e.kind for e in found.timeline[:60]],
    }
