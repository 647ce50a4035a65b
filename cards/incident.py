"""The incident card: one card per incident, updated in place as its workflow moves on.

The card always shows the alert (header with severity, title and status; facts; summary) and then
each section the view carries, in workflow order: diagnosis, proposal, approval gate (placed after
the section it decides on), execution, verification, escalation, resolution.

Usage::

    card = incident_card(view, say=texts("zh"), zone=ZoneInfo("Asia/Shanghai"))
    # send with msg_type "interactive"; later states re-render and update the same message
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from cards.basics import button, card, markdown, more, text
from cards.council import council_causes, council_panels
from cards.markup import clock, fenced, fit, inline, mention, prose
from cards.markup import code as markup_code
from cards.paging import paging_section
from cards.texts import Texts
from cards.views import (
    DiagnosisView,
    EscalationView,
    ExecutionView,
    GateView,
    IncidentView,
    ProposalView,
    VerificationView,
)
from storage.statuses import FINAL, IncidentStatus, values

SEVERITIES = ("critical", "warning", "info")
STATUSES = values(IncidentStatus)  # the statuses an incident row may hold, nothing else
RISKS = ("low", "medium", "high", "critical")
DECISIONS = ("auto", "approve", "refuse")
SEVERITY_COLOURS = {"critical": "red", "warning": "orange", "info": "blue"}
_STATUS_COLOURS = {"resolved": "green", "escalated": "red", "suppressed": "grey"}
_FIRST_LABELS = ("instance", "host", "pod", "namespace", "deployment", "job", "cluster", "env")
_SHOWN_ELSEWHERE = frozenset({"alertname", "severity", "service"})
_MAX_LABELS = 6
_MAX_ITEMS = 8
_DAY = "%m-%d %H:%M"

Elements = list[dict[str, Any]]


def severity_name(severity: str, say: Texts) -> str:
    """The reader's word for a severity (an unknown one is shown as it is, made safe)."""
    return say(f"card.severity.{severity}") if severity in SEVERITIES else inline(severity, 32)


def status_name(status: str, say: Texts) -> str:
    """The reader's word for an incident status."""
    return say(f"card.status.{status}") if status in STATUSES else inline(status, 32)


def colour(severity: str, status: str) -> str:
    """Header template: the status when it settles the matter, else the severity."""
    return _STATUS_COLOURS.get(status) or SEVERITY_COLOURS.get(severity, "orange")


def people(open_ids: tuple[str, ...], limit: int = 10) -> str:
    """@-mentions of up to `limit` people, "—" for nobody."""
    shown = " ".join(mention(open_id) for open_id in open_ids[:limit])
    return shown + (f" +{len(open_ids) - limit}" if len(open_ids) > limit else "") or "—"


def incident_card(view: IncidentView, say: Texts, zone: ZoneInfo) -> dict[str, Any]:
    """The whole incident as one Card JSON 2.0 (under 30 KB whatever the alert carried)."""
    elements = _facts(view, say, zone)
    if view.summary.strip():
        elements.append(markdown(prose(view.summary, 1500, 15)))
    if view.gate is not None and view.gate.status == "pending" and view.status in _OVER:
        # the incident ended while its gate waited: nothing to decide, no deadline to show
        view = replace(
            view, gate=replace(view.gate, status="cancelled", approve_value=None, reject_value=None)
        )
    gate = _gate(view.gate, say, zone) if view.gate else []
    sections = [
        _diagnosis(view.diagnosis, say) if view.diagnosis else [],
        gate if view.gate and view.gate.gate == "diagnosis" else [],
        _proposal(view.proposal, say) if view.proposal else [],
        gate if view.gate and view.gate.gate == "proposal" else [],
        _execution(view.execution, say, zone) if view.execution else [],
        _verification(view.verification, say) if view.verification else [],
        _no_runbook(view, say),
        _escalation(view.escalation, say) if view.escalation else [],
        paging_section(view.paging, say, zone) if view.paging else [],
        _resolution(view, say),
    ]
    for section in sections:
        if section:
            elements += [{"tag": "hr"}, *section]
    rejected = view.gate is not None and view.gate.status in ("rejected", "expired")
    template = "grey" if rejected and view.status not in _STATUS_COLOURS else None
    result = card(
        say("card.incident.title", id=view.id, title=inline(view.title, 150)),
        elements,
        template=template or colour(view.severity, view.status),
    )
    subtitle = say(
        "card.incident.subtitle",
        severity=severity_name(view.severity, say),
        status=status_name(view.status, say),
    )
    result["header"]["subtitle"] = text(inline(subtitle, 80))
    return fit(result)


_OVER = frozenset(FINAL)


def _no_runbook(view: IncidentView, say: Texts) -> Elements:
    """No runbook matched: no gate, and what people can do instead."""
    codes = view.diagnosis.codes if view.diagnosis is not None else None
    summary = (codes or {}).get("summary")
    unknown = isinstance(summary, Mapping) and summary.get("code") == "no_runbook"
    if not unknown or view.gate is not None or view.status in _OVER:
        return []
    return [markdown(say("card.no_runbook", id=view.id))]


def _fact(label: str, value: str) -> str:
    return f"**{label}** {value}"


def _facts(view: IncidentView, say: Texts, zone: ZoneInfo) -> Elements:
    left = [
        _fact(say("card.fact.service"), inline(view.service, 80) if view.service else "—"),
        _fact(say("card.fact.source"), inline(view.source, 40)),
        _fact(say("card.fact.count"), f"×{max(view.alert_count, 0)}"),
    ]
    right = [
        _fact(say("card.fact.first_seen"), clock(view.first_seen, zone)),
        _fact(say("card.fact.last_seen"), clock(view.last_seen, zone)),
    ]
    elements: Elements = [
        {
            "tag": "column_set",
            "flex_mode": "bisect",
            "columns": [
                {"tag": "column", "width": "weighted", "weight": 1, "elements": [markdown(side)]}
                for side in ("\n".join(left), "\n".join(right))
            ],
        }
    ]
    labels = _key_labels(view.labels)
    if labels:
        shown = " ".join(f"`{inline(k, 40)}={inline(v, 80)}`" for k, v in labels[:_MAX_LABELS])
        hidden = len(labels) - _MAX_LABELS
        suffix = f" +{hidden}" if hidden > 0 else ""
        elements.append(markdown(_fact(say("card.fact.labels"), shown + suffix)))
    return elements


def _key_labels(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """Labels worth a glance: the usual locators first, then the rest by name."""
    items = [(str(k), str(v)) for k, v in labels.items() if k not in _SHOWN_ELSEWHERE]
    rank = {name: index for index, name in enumerate(_FIRST_LABELS)}
    return sorted(items, key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def _bullets(title: str, lines: list[str]) -> str:
    return "\n".join([f"**{title}**", *(f"- {line}" for line in lines)])


def reported(found: Mapping[str, Any] | None, summary: str, say: Texts) -> str:
    """A plugin's summary in the reader's words when it came with a code, else its own line
    as a code span (a tool's words, not the bot's)."""
    return finding(found, say) or markup_code(summary, 400)


def finding(code: Any, say: Texts) -> str | None:
    """A finding given as {"code", "values"} in the reader's words; None when not one."""
    if not isinstance(code, Mapping) or not say.has(f"card.finding.{code.get('code')}"):
        return None
    given = {str(k): str(v) for k, v in (code.get("values") or {}).items()}
    if say.language == "zh" and given.get("step_zh"):
        given["step"] = given["step_zh"]
    given.pop("step_zh", None)
    # every value is untrusted text: neutralised, and a tool's own words shown as code
    values = {key: inline(value, 300) for key, value in given.items()}
    if "runbook" in given:
        values["runbook"] = markup_code(given["runbook"], 80)
    if "summary" in given:
        nested = code.get("finding")
        values["summary"] = finding(nested, say) or markup_code(given["summary"], 200)
    if "reason" in given:  # why a step was skipped: from its code, else the tool's words
        values["reason"] = finding(code.get("why"), say) or markup_code(given["reason"], 200)
    if values.get("skipped", "0") != "0":
        values["skipped"] = say("card.finding.skipped", count=values["skipped"])
    else:
        values["skipped"] = ""
    return say(f"card.finding.{code.get('code')}", **values)


def _diagnosis(diagnosis: DiagnosisView, say: Texts) -> Elements:
    codes = diagnosis.codes or {}
    summary = finding(codes.get("summary"), say)
    parts = [
        f"**{say('card.diagnosis.heading', provider=inline(diagnosis.provider, 40))}**",
        summary if summary is not None else prose(diagnosis.summary, 1000, 10),
    ]
    elements: Elements = [markdown("\n".join(part for part in parts if part))]
    if diagnosis.council is not None:
        elements += council_causes(diagnosis.council, say)
    elif diagnosis.hypotheses:
        worded = list(codes.get("hypotheses") or [])
        lines = [
            say(
                "card.diagnosis.hypothesis",
                cause=(finding(worded[n], say) if n < len(worded) else None)
                or inline(h.cause, 200),
                confidence=_percent(h.confidence),
            )
            for n, h in enumerate(diagnosis.hypotheses[:5])
        ]
        lines += more(len(diagnosis.hypotheses), 5, say)
        elements.append(markdown(_bullets(say("card.diagnosis.hypotheses"), lines)))
    if diagnosis.evidence:
        coded = list(codes.get("evidence") or [])
        lines = [
            say(
                "card.diagnosis.evidence_line",
                source=inline(e.source, 60),
                text=reported(coded[n] if n < len(coded) else None, e.text, say),
            )
            for n, e in enumerate(diagnosis.evidence[:_MAX_ITEMS])
        ]
        lines += more(len(diagnosis.evidence), _MAX_ITEMS, say)
        elements.append(markdown(_bullets(say("card.diagnosis.evidence"), lines)))
    if diagnosis.next_checks:
        coded = list(codes.get("next_checks") or [])
        lines = [
            (finding(coded[n], say) if n < len(coded) else None) or inline(check, 200)
            for n, check in enumerate(diagnosis.next_checks[:6])
        ]
        lines += more(len(diagnosis.next_checks), 6, say)
        elements.append(markdown(_bullets(say("card.diagnosis.next_checks"), lines)))
    if diagnosis.seen_before:
        lines = [
            say(
                "card.diagnosis.seen_line",
                id=seen.incident_id,
                title=inline(seen.title, 120),
                similarity=_percent(seen.similarity),
                fix=inline(seen.fix or say("card.diagnosis.fix_unknown"), 160),
            )
            for seen in diagnosis.seen_before[:3]
        ]
        elements.append(markdown(_bullets(say("card.diagnosis.seen_before"), lines)))
    notes = []
    if diagnosis.partial:
        notes.append(say("card.diagnosis.partial"))
    if diagnosis.note:
        notes.append(say("card.diagnosis.note", note=inline(diagnosis.note, 300)))
    if notes:
        elements.append(markdown(" ".join(notes), size="notation"))
    if diagnosis.council is not None:
        elements += council_panels(diagnosis.council, say)
    return elements


def _percent(confidence: float) -> int:
    if not math.isfinite(confidence):
        return 0
    return round(min(max(confidence, 0.0), 1.0) * 100)


def _param(value: Any) -> str:
    if isinstance(value, str):
        return inline(value, 200)
    return inline(json.dumps(value, ensure_ascii=False, default=str), 200)


def _proposal(proposal: ProposalView, say: Texts) -> Elements:
    head = [
        f"**{say('card.proposal.heading')}** {inline(proposal.title, 200)}",
        _fact(say("card.proposal.plugin"), f"`{inline(proposal.plugin, 60)}`"),
        _fact(say("card.proposal.risk"), _risk(proposal.risk, say)),
    ]
    elements: Elements = [markdown("\n".join(head))]
    if proposal.call:
        elements.append(markdown(command_line(proposal.call, proposal.params, say)))
    elif proposal.params:
        items = list(proposal.params.items())
        lines = [f"{inline(k, 40)}: {_param(v)}" for k, v in items[:12]]
        lines += more(len(items), 12, say)
        elements.append(markdown(_bullets(say("card.proposal.params"), lines)))
    if proposal.steps:
        steps = [f"{n}. {inline(step, 300)}" for n, step in enumerate(proposal.steps[:10], 1)]
        steps += more(len(proposal.steps), 10, say)
        elements.append(markdown("\n".join([f"**{say('card.proposal.steps')}**", *steps])))
    decision = proposal.decision if proposal.decision in DECISIONS else "none"
    verdict = say(f"card.decision.{decision}")
    if proposal.reason.strip():
        verdict = f"{verdict} — {inline(proposal.reason, 300)}"
    elements.append(markdown(_fact(say("card.proposal.decision"), verdict)))
    if proposal.dry_run:
        elements.append(markdown(say("card.dry_run"), size="notation"))
    return elements


def command_line(call: tuple[str, ...], params: Mapping[str, Any], say: Texts) -> str:
    """The exact argv a fix runs, as a shell would read it (and the allow-listed template it
    comes from), instead of its parameters."""
    heading = f"**{say('card.proposal.call')}**"
    template = params.get("template")
    if isinstance(template, str) and template:
        heading += f" {markup_code(template, 60)}"
    return f"{heading}\n{fenced(shlex.join(call), 1500, 10)}"


def _risk(risk: str, say: Texts) -> str:
    return say(f"card.risk.{risk}") if risk in RISKS else inline(risk, 20)


def _gate(gate: GateView, say: Texts, zone: ZoneInfo) -> Elements:
    elements: Elements = [markdown(f"**{say(f'card.gate.heading.{gate.gate}')}**")]
    when = clock(gate.decided_at, zone, _DAY) if gate.decided_at else "—"
    if gate.status == "pending":
        lines = [say(f"card.gate.question.{gate.gate}")]
        if gate.required > 1:
            lines.append(say("card.gate.quorum", required=gate.required, count=len(gate.approvers)))
            if gate.approvers:
                lines.append(say("card.gate.approved_so_far", people=people(gate.approvers)))
        elements.append(markdown("\n".join(lines)))
        elements += _buttons(gate, say)
        expires = clock(gate.expires_at, zone, "%H:%M")
        elements.append(markdown(say("card.gate.expires", time=expires), size="notation"))
    elif gate.status == "expired":
        expired = clock(gate.expires_at, zone, _DAY)
        elements.append(markdown(say("card.gate.expired", time=expired)))
    elif gate.status == "cancelled":
        elements.append(markdown(say("card.gate.cancelled")))
    else:
        key = "card.gate.approved" if gate.status == "approved" else "card.gate.rejected"
        elements.append(markdown(say(key, people=people(gate.approvers), time=when)))
    return elements


def _buttons(gate: GateView, say: Texts) -> Elements:
    pairs = [
        (say("card.gate.approve"), gate.approve_value, "primary"),
        (say("card.gate.reject"), gate.reject_value, "danger"),
    ]
    columns = [
        {"tag": "column", "width": "auto", "elements": [button(label, dict(value), kind=kind)]}
        for label, value, kind in pairs
        if value is not None
    ]
    return [{"tag": "column_set", "flex_mode": "none", "columns": columns}] if columns else []


def _execution(execution: ExecutionView, say: Texts, zone: ZoneInfo) -> Elements:
    key = "card.execution.ok" if execution.ok else "card.execution.failed"
    lines = [
        f"**{say('card.execution.heading')}**",
        say(key, plugin=f"`{inline(execution.plugin, 60)}`"),
        reported(execution.finding, execution.summary, say),
    ]
    elements: Elements = [markdown("\n".join(line for line in lines if line))]
    if execution.output.strip():
        elements.append(markdown(fenced(execution.output, 2500, 40)))
    notes = []
    if execution.dry_run:
        notes.append(say("card.dry_run"))
    if execution.finished_at:
        notes.append(say("card.execution.finished", time=clock(execution.finished_at, zone)))
    if notes:
        elements.append(markdown(" · ".join(notes), size="notation"))
    return elements


def _verification(verification: VerificationView, say: Texts) -> Elements:
    key = "card.verification.ok" if verification.ok else "card.verification.failed"
    summary = reported(verification.finding, verification.summary, say)
    return [markdown(f"**{say('card.verification.heading')}**\n{say(key, summary=summary)}")]


def escalation_cause(escalation: EscalationView, say: Texts) -> str:
    """Why people are needed, in the reader's words (the stored sentence for an old row)."""
    return cause_words(
        escalation.cause, escalation.values, escalation.reason, say, escalation.finding
    )


def cause_words(
    cause: str | None,
    given: Mapping[str, str],
    fallback: str,
    say: Texts,
    found: Mapping[str, Any] | None = None,
) -> str:
    """An escalation cause code with its values in the reader's words (`fallback`, the stored
    sentence, when the code is missing or unknown; `found`, the failed result's finding code,
    words its summary)."""
    key = f"card.escalation.cause.{cause}"
    if not cause or not say.has(key):
        return inline(fallback, 400)
    values = {str(k): str(v) for k, v in given.items()}
    if "gate" in values:
        gate = values["gate"]
        values["gate"] = (
            say(f"card.gate.name.{gate}") if say.has(f"card.gate.name.{gate}") else gate
        )
    if "by" in values:
        ids = tuple(part.strip() for part in values["by"].split(",") if part.strip())
        someone = ids in ((), ("someone",))
        values["by"] = say("card.actor.someone") if someone else people(ids)
    for name in ("reason", "steps", "run"):
        if name in values:
            values[name] = inline(values[name], 300)
    if "summary" in values:  # a plugin's result: its finding in words, else its own line
        values["summary"] = reported(found, values["summary"], say)
    return say(key, **values)


def _escalation(escalation: EscalationView, say: Texts) -> Elements:
    lines = [
        f"**{say('card.escalation.heading')}**",
        say("card.escalation.reason", reason=escalation_cause(escalation, say)),
    ]
    if escalation.nobody_on_call:
        lines.append(say("card.escalation.nobody_on_call"))
    if escalation.mentions:
        lines.append(say("card.escalation.mentions", people=people(escalation.mentions)))
    return [markdown("\n".join(lines))]


def _resolution(view: IncidentView, say: Texts) -> Elements:
    if view.status != "resolved" and not (view.resolved_note or view.resolved_by):
        return []
    lines = [f"**{say('card.resolved.heading')}**"]
    if view.resolved_by == "alert":
        lines.append(say("card.resolved.by_alert"))
    elif view.resolved_by:
        lines.append(say("card.resolved.by", person=mention(view.resolved_by)))
    if view.resolved_note and view.resolved_note.strip():
        lines.append(say("card.resolved.note", note=prose(view.resolved_note, 500, 5)))
    if view.postmortem_url and view.postmortem_url.startswith("https://"):
        lines.append(say("card.resolved.postmortem", url=view.postmortem_url))
    return [markdown("\n".join(lines))]
