"""A postmortem draft as a Feishu document (docx blocks), in the chat's language.

title = postmortem_title(found, say)
blocks = postmortem_blocks(found, say, zone)   # children of the document's root block
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from cards.actions import ActionPayload, pack
from cards.basics import button, card, markdown
from cards.incident import finding, reported, severity_name
from cards.lists import event_text, kind_name
from cards.markup import clock, inline, mention, unmarked
from cards.report import span
from cards.texts import Texts
from cards.views import ActionCode, ActionSubject, PostmortemView, TasksView

_TIME = "%m-%d %H:%M:%S"
MAX_ENTRIES = 200  # timeline entries in one document (the API takes 50 blocks a call)


def _run(content: str) -> dict[str, Any]:
    return {"text_run": {"content": content[:2000]}}


def _person(open_id: str) -> dict[str, Any]:
    return {"mention_user": {"user_id": open_id}}


def _block(kind: str, *elements: dict[str, Any]) -> dict[str, Any]:
    codes = {"text": 2, "heading1": 3, "heading2": 4, "bullet": 12}
    return {"block_type": codes[kind], kind: {"elements": list(elements)}}


def _who(actor: str | None, say: Texts) -> dict[str, Any]:
    if actor and actor.startswith("ou_"):
        return _person(actor)
    key = f"card.actor.{actor}"
    return _run(say(key) if actor and say.has(key) else actor or say("pm.unknown"))


def postmortem_title(found: PostmortemView, say: Texts) -> str:
    return say("pm.title", id=found.incident_id, title=found.title[:100])


def postmortem_blocks(found: PostmortemView, say: Texts, zone: ZoneInfo) -> list[dict[str, Any]]:
    """The document: summary, impact and times, timeline, diagnosis, fix, similar incidents,
    action items."""
    mttr = found.mttr.total_seconds() if found.mttr else None
    mtta = found.mtta.total_seconds() if found.mtta else None
    end = clock(found.resolved, zone, _TIME) if found.resolved else say("pm.ongoing")
    blocks = [
        _block("text", _run(say("pm.draft_note"))),
        _block("heading2", _run(say("pm.summary_heading"))),
        _block(
            "text",
            _run(
                say(
                    "pm.summary",
                    severity=severity_name(found.severity, say),
                    title=found.title[:200],
                    service=found.service or "—",
                    alerts=found.alerts,
                )
            ),
        ),
        *(
            [_block("text", _run(found.worded[:1000])), _block("text", _run(say("pm.model_note")))]
            if found.worded
            else []
        ),
        _block(
            "bullet",
            _run(
                say(
                    "pm.window",
                    start=clock(found.opened, zone, _TIME),
                    end=end,
                    duration=span(mttr, say),
                )
            ),
        ),
        _block("bullet", _run(say("pm.mtta", value=span(mtta, say)))),
        _block("bullet", _run(say("pm.mttr", value=span(mttr, say)))),
        _block("bullet", _run(say("pm.acked_by")), _who(found.acknowledged_by, say)),
        _block("bullet", _run(say("pm.resolved_by")), _who(found.resolved_by, say)),
        _block("heading2", _run(say("pm.timeline_heading"))),
    ]
    for entry in found.timeline[:MAX_ENTRIES]:
        line = say("pm.entry", time=clock(entry.at, zone, _TIME), kind=kind_name(entry.kind, say))
        worded = event_text(entry.kind, entry.message, entry.data, say)[:300]
        message = f" {worded}" if worded else ""
        blocks.append(_block("bullet", _run(line), _who(entry.actor, say), _run(message)))
    blocks.append(_block("heading2", _run(say("pm.diagnosis_heading"))))
    codes = found.codes
    summary = finding(codes.get("summary"), say)
    diagnosis = unmarked(summary) if summary else found.diagnosis[:1500]
    blocks.append(_block("text", _run(diagnosis or say("pm.no_diagnosis"))))
    causes = list(codes.get("hypotheses") or [])
    for n, (cause, confidence) in enumerate(found.hypotheses[:5]):
        cause_found = finding(causes[n], say) if n < len(causes) else None
        text = say(
            "pm.hypothesis",
            cause=unmarked(cause_found) if cause_found else cause[:300],
            confidence=round(confidence * 100),
        )
        blocks.append(_block("bullet", _run(text)))
    evidence = list(codes.get("evidence") or [])
    for n, (source, text) in enumerate(found.evidence[:10]):
        line = unmarked(reported(evidence[n] if n < len(evidence) else None, text[:300], say))
        blocks.append(_block("bullet", _run(say("pm.evidence", source=source, text=line))))
    blocks.append(_block("heading2", _run(say("pm.fix_heading"))))
    if found.fix is not None:
        result = unmarked(reported(found.fix_finding, found.fix[1], say))
        blocks.append(_block("text", _run(say("pm.fix", plugin=found.fix[0], summary=result))))
    else:
        blocks.append(_block("text", _run(say("pm.no_fix"))))
    if found.verified is not None:
        blocks.append(
            _block("text", _run(say("pm.verified_ok" if found.verified else "pm.verified_failed")))
        )
    if found.note:
        blocks.append(_block("text", _run(say("pm.note", note=found.note[:500]))))
    blocks.append(_block("heading2", _run(say("pm.similar_heading"))))
    for number, title, fix in found.similar[:5]:
        text = say("pm.similar", id=number, title=title[:120], fix=fix[:200] or "—")
        blocks.append(_block("bullet", _run(text)))
    if not found.similar:
        blocks.append(_block("text", _run(say("pm.no_similar"))))
    blocks.append(_block("heading2", _run(say("pm.actions_heading"))))
    for code, subject in found.actions:
        blocks.append(_block("bullet", _run(action_text(code, subject, say))))
    if not found.actions:
        blocks.append(_block("text", _run(say("pm.no_actions"))))
    return blocks


class TasksConfirm(ActionPayload, action="postmortem.tasks"):
    """An approver confirms a postmortem's action items: they become Feishu tasks."""

    incident_id: int


def tasks_value(incident_id: int, key: bytes) -> dict[str, Any]:
    return pack(TasksConfirm(incident_id=incident_id), key)


def action_text(code: ActionCode, subject: ActionSubject, say: Texts) -> str:
    """An action item in plain words (a check the diagnosis gave as a code, worded)."""
    if isinstance(subject, Mapping):
        worded = finding(subject, say)
        shown = unmarked(worded) if worded else str(subject.get("text", ""))
    else:
        shown = subject
    return say(f"pm.action.{code}", subject=shown[:200])


def tasks_card(view: TasksView, say: Texts, confirm: dict[str, Any] | None) -> dict[str, Any]:
    """The action items, who will own them, and the confirm button (until confirmed)."""
    lines = [f"- {inline(action_text(code, subject, say), 300)}" for code, subject in view.actions]
    owner = mention(view.owner) if view.owner else say("oncall.nobody")
    elements: list[dict[str, Any]] = [
        markdown("\n".join([say("pm.tasks.intro", owner=owner), *lines[:10]]))
    ]
    if view.by is not None:
        elements.append(markdown(say("pm.tasks.made", count=view.made, person=mention(view.by))))
    elif confirm is not None:
        elements.append(button(say("pm.tasks.confirm"), confirm, kind="primary"))
        elements.append(markdown(say("pm.tasks.who"), size="notation"))
    title = say("pm.tasks.title", id=view.incident_id, title=inline(view.title, 100))
    return card(title, elements, template="green" if view.by else "blue")
