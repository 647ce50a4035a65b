"""Cards of the plugin commands: the catalogue, one plugin, a chat-requested run, runbooks, policy.

Pure functions: views in, Card JSON 2.0 out. Plugin output and parameters are hostile text and go
through `cards.markup` like everything else.

Usage::

    plugins_card([PluginRow(...)], say)
    action_card(ActionView(...), say, zone, approve_value=..., reject_value=...)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cards.basics import button, card, markdown, more
from cards.incident import command_line, people, reported
from cards.markup import clock, code, fenced, fit, inline
from cards.texts import Texts

RISKS = ("low", "medium", "high", "critical")
RISK_TEMPLATE = {"low": "green", "medium": "yellow", "high": "orange", "critical": "red"}
MAX_PLUGINS = 40
MAX_PARAMS = 20


@dataclass(frozen=True)
class PluginRow:
    """One plugin of the catalogue."""

    name: str
    title: str
    category: str
    risk: str
    enabled: bool = True


@dataclass(frozen=True)
class ParamRow:
    """One parameter of a plugin, from its JSON schema."""

    name: str
    type: str
    required: bool
    default: str
    description: str


@dataclass(frozen=True)
class PluginDetail:
    """Everything `/plugin <name>` shows."""

    row: PluginRow
    description: str
    timeout: float
    idempotent: bool
    supports_dry_run: bool
    params: tuple[ParamRow, ...]
    example: str


@dataclass(frozen=True)
class ActionView:
    """A chat-requested plugin run: who asked, what the policy said, what happened."""

    id: int
    plugin: str
    category: str
    params: Mapping[str, Any]
    requester: str
    risk: str
    decision: str  # auto | approve | refuse
    reason: str
    status: str  # pending running succeeded failed rejected expired refused
    required: int = 0
    approvers: tuple[str, ...] = ()  # who approved so far / decided
    decided_by: tuple[str, ...] = ()
    expires_at: datetime | None = None
    summary: str = ""
    evidence: tuple[str, ...] = ()
    output: str = ""
    dry_run: bool = False
    finished_at: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    interrupted: bool = False  # a crash cut the run short: outcome unknown, not run again
    call: tuple[str, ...] = ()  # the exact argv the fix runs, when it runs a command line
    detail: str = ""  # the technical detail of a refusal (shown as code)
    finding: Mapping[str, Any] = field(default_factory=dict)  # the summary as {"code", "values"}


def risk_name(risk: str, say: Texts) -> str:
    return say(f"card.risk.{risk}") if risk in RISKS else inline(risk, 20)


def plugins_card(rows: Sequence[PluginRow], say: Texts) -> dict[str, Any]:
    """The catalogue, diagnostics first."""
    elements = []
    for category in ("diagnostic", "remediation"):
        lines = [
            say(
                "plugins.row",
                name=inline(row.name, 48),
                title=inline(row.title, 80),
                risk=risk_name(row.risk, say),
            )
            + ("" if row.enabled else say("plugins.disabled_mark"))
            for row in rows
            if row.category == category
        ]
        if not lines:
            continue
        shown = lines[:MAX_PLUGINS]
        shown += more(len(lines), MAX_PLUGINS, say)
        heading = f"**{say(f'plugins.category.{category}')}**"
        elements.append(markdown("\n".join([heading, *shown])))
    if not elements:
        elements.append(markdown(say("plugins.none")))
    elements.append(markdown(say("plugins.hint"), size="notation"))
    return fit(card(say("plugins.title"), elements))


def plugin_card(detail: PluginDetail, say: Texts) -> dict[str, Any]:
    """One plugin: what it does, its risk and limits, its parameters and an example."""
    row = detail.row
    facts = [
        inline(detail.description, 400),
        say("plugin.facts.category", category=say(f"plugins.category.{row.category}")),
        say("plugin.facts.risk", risk=risk_name(row.risk, say)),
        say(
            "plugin.facts.limits",
            timeout=f"{detail.timeout:g}",
            idempotent=say("yes" if detail.idempotent else "no"),
            dry_run=say("yes" if detail.supports_dry_run else "no"),
        ),
    ]
    if not row.enabled:
        facts.append(say("plugin.facts.disabled"))
    elements = [markdown("\n".join(facts))]
    lines = []
    for param in detail.params[:MAX_PARAMS]:
        mark = (
            say("plugin.param.required")
            if param.required
            else say("plugin.param.default", default=inline(param.default, 60))
        )
        lines.append(
            f"- `{inline(param.name, 40)}` ({inline(param.type, 60)}, {mark})"
            + (f": {inline(param.description, 160)}" if param.description else "")
        )
    lines += more(len(detail.params), MAX_PARAMS, say)
    heading = f"**{say('plugin.params')}**"
    elements.append(markdown("\n".join([heading, *(lines or [say("plugin.no_params")])])))
    elements.append(markdown(say("plugin.example", example=inline(detail.example, 300))))
    title = say("plugin.title", name=inline(row.name, 48), title=inline(row.title, 80))
    return fit(card(title, elements, template=RISK_TEMPLATE.get(row.risk, "blue")))


def action_card(
    view: ActionView,
    say: Texts,
    zone: ZoneInfo,
    *,
    approve_value: dict[str, Any] | None = None,
    reject_value: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `/run` request and its fate; pending requests carry Approve / Reject buttons."""
    params = json.dumps(dict(view.params), ensure_ascii=False, sort_keys=True, default=str)
    head = [
        say("action.facts.requester", person=people((view.requester,))),
        say("action.facts.risk", risk=risk_name(view.risk, say)),
        say("action.facts.decision", decision=say(f"card.decision.{view.decision}"))
        + (f" — {inline(view.reason, 300)}" if view.reason else "")
        + (f" {code(view.detail, 300)}" if view.detail else ""),
    ]
    shown = command_line(view.call, view.params, say) if view.call else fenced(params, 1500, 20)
    elements = [markdown("\n".join(head)), markdown(shown)]
    if view.status == "pending":
        lines = [say("action.pending", required=view.required)]
        if view.approvers:
            lines.append(say("card.gate.approved_so_far", people=people(view.approvers)))
        elements.append(markdown("\n".join(lines)))
        elements += _buttons(say, approve_value, reject_value)
        if view.expires_at is not None:
            expires = clock(view.expires_at, zone, "%H:%M")
            elements.append(markdown(say("card.gate.expires", time=expires), size="notation"))
    elif view.status in ("rejected", "expired", "refused", "running"):
        who = people(view.decided_by) if view.decided_by else "—"
        elements.append(markdown(say(f"action.status.{view.status}", people=who)))
    else:
        elements += _result(view, say, zone)
    template = {
        "succeeded": "green",
        "failed": "red",
        "refused": "grey",
        "rejected": "grey",
        "expired": "grey",
    }.get(view.status, RISK_TEMPLATE.get(view.risk, "blue"))
    title = say("action.title", id=view.id, plugin=inline(view.plugin, 48))
    return fit(card(title, elements, template=template))


def _result(view: ActionView, say: Texts, zone: ZoneInfo) -> list[dict[str, Any]]:
    key = "card.execution.ok" if view.status == "succeeded" else "card.execution.failed"
    summary = (
        say("action.interrupted") if view.interrupted else reported(view.finding, view.summary, say)
    )
    lines = [say(key, plugin=f"`{inline(view.plugin, 60)}`"), summary]
    if view.decided_by:
        lines.append(say("action.approved_by", people=people(view.decided_by)))
    elements = [markdown("\n".join(line for line in lines if line))]
    if view.evidence:
        bullets = [f"- {code(line, 300)}" for line in view.evidence[:12]]
        bullets += more(len(view.evidence), 12, say)
        elements.append(markdown("\n".join(bullets)))
    if view.output.strip():
        elements.append(markdown(fenced(view.output, 2500, 40)))
    notes = []
    if view.dry_run:
        notes.append(say("card.dry_run"))
    if view.finished_at is not None:
        notes.append(say("card.execution.finished", time=clock(view.finished_at, zone)))
    if notes:
        elements.append(markdown(" · ".join(notes), size="notation"))
    return elements


def _buttons(
    say: Texts, approve: dict[str, Any] | None, reject: dict[str, Any] | None
) -> list[dict[str, Any]]:
    pairs = [
        (say("card.gate.approve"), approve, "primary"),
        (say("card.gate.reject"), reject, "danger"),
    ]
    columns = [
        {"tag": "column", "width": "auto", "elements": [button(label, dict(value), kind=kind)]}
        for label, value, kind in pairs
        if value is not None
    ]
    return [{"tag": "column_set", "flex_mode": "none", "columns": columns}] if columns else []


@dataclass(frozen=True)
class RunbookRow:
    """One runbook: what it matches and which plugins it runs."""

    name: str
    match: Mapping[str, str]
    diagnose: tuple[str, ...]
    propose: str | None
    verify: str | None


def runbooks_card(rows: Sequence[RunbookRow], say: Texts) -> dict[str, Any]:
    """Every runbook, in matching order (the first match wins)."""
    elements = []
    for number, row in enumerate(rows[:MAX_PLUGINS], 1):
        matchers = ", ".join(f"{k}~{v}" for k, v in row.match.items()) or say("runbooks.any")
        lines = [
            f"**{number}. {inline(row.name, 80)}**",
            say("runbooks.match", match=inline(matchers, 300)),
            say("runbooks.diagnose", steps=inline(" → ".join(row.diagnose) or "—", 300)),
            say("runbooks.propose", plugin=inline(row.propose or "—", 80)),
            say("runbooks.verify", plugin=inline(row.verify or "—", 80)),
        ]
        elements.append(markdown("\n".join(lines)))
    if len(rows) > MAX_PLUGINS:
        elements.append(markdown("\n".join(more(len(rows), MAX_PLUGINS, say))))
    if not elements:
        elements.append(markdown(say("runbooks.none")))
    return fit(card(say("runbooks.title"), elements))


def policy_card(lines: Sequence[tuple[str, str]], say: Texts) -> dict[str, Any]:
    """The effective policy: (label, value) pairs, values already worded."""
    body = [f"- **{inline(label, 60)}**: {inline(value, 400)}" for label, value in lines]
    elements = [markdown("\n".join(body)), markdown(say("policy.card.hint"), size="notation")]
    return fit(card(say("policy.card.title"), elements))


def policy_check_card(
    plugin: str,
    params: Mapping[str, Any],
    decision: str,
    lines: Sequence[tuple[str, str]],
    say: Texts,
    detail: str = "",
) -> dict[str, Any]:
    """Why the policy would decide what it decides for one hypothetical run (`detail`: the
    validator's own words, shown as code)."""
    shown = json.dumps(dict(params), ensure_ascii=False, sort_keys=True, default=str)
    body = [f"- **{inline(label, 60)}**: {inline(value, 400)}" for label, value in lines]
    if detail:
        body.append(f"- **{say('policy.check.detail')}**: {code(detail, 400)}")
    elements = [markdown(fenced(shown, 1000, 10)), markdown("\n".join(body))]
    elements.append(markdown(say("policy.check.hypothetical"), size="notation"))
    template = {"auto": "green", "approve": "orange", "refuse": "red"}.get(decision, "blue")
    title = say("policy.check.title", plugin=inline(plugin, 48))
    return fit(card(title, elements, template=template))


def when(moment: datetime | None, zone: ZoneInfo) -> str:
    """A short local time, or a dash."""
    return clock(moment, zone, "%m-%d %H:%M") if moment is not None else "—"
