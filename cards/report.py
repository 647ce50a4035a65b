"""Cards of the alert-hygiene report: the report, a suggestion's confirmation, what was applied.

Pure functions: views in, Card JSON 2.0 out. Alert names, labels, job errors and the model's
summary are hostile text and go through `cards.markup`.

Usage::

    report_card(ReportView(...), say, zone)               # each suggestion with its button
    confirm_card(row, say, confirm_value=..., cancel_value=...)
    applied_card(row, say, zone, person="ou_1", silence_id=12, until=moment)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cards.basics import button, card, markdown, more
from cards.incident import people
from cards.markup import clock, fenced, fit, inline, prose
from cards.texts import Texts

ROWS = 30  # lines of each table (noisy alerts, flapping, failing jobs): the rest are counted
SUGGESTIONS = 20  # suggestions drawn, each a line and a button: the rest are counted
UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_SHORT = "%m-%d %H:%M"


@dataclass(frozen=True)
class NoisyRow:
    alertname: str
    service: str | None
    alerts: int
    incidents: int


@dataclass(frozen=True)
class JobRow:
    schedule_id: int
    task: str
    failures: int
    last_error: str


@dataclass(frozen=True)
class SuggestionRow:
    """One suggestion: `params` is what applying it does; `value` its signed button value;
    `snippet` the YAML to paste (runbook, threshold)."""

    kind: str  # threshold | silence | dedupe | runbook
    alertname: str
    fingerprint: str
    reason: str
    weight: int
    params: Mapping[str, str | int]
    value: dict[str, Any] = field(default_factory=dict)
    snippet: str = ""


@dataclass(frozen=True)
class ReportView:
    hours: int
    alerts: int = 0
    firing: int = 0
    incidents: int = 0
    mtta: tuple[float | None, float | None, int] = (None, None, 0)  # median, p90, count
    mttr: tuple[float | None, float | None, int] = (None, None, 0)
    approvals_expired: int = 0
    auto_fixes: int = 0
    auto_fix_rate: float | None = None
    noisy: tuple[NoisyRow, ...] = ()
    flapping: tuple[tuple[str, int], ...] = ()  # alertname, flaps
    jobs: tuple[JobRow, ...] = ()
    suggestions: tuple[SuggestionRow, ...] = ()
    summary: str = ""  # the model's wording of the numbers, when a model is configured


def span(seconds: float | None, say: Texts) -> str:
    """A duration in at most two units ("1小时30分钟", "1h 30m"); "—" for none."""
    if seconds is None:
        return "—"
    left, parts = max(round(seconds), 0), []
    for unit, size in UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(say(f"report.unit.{unit}", n=count))
    return say("report.unit.join").join(parts[:2]) or say("report.unit.s", n=0)


def window(hours: int, say: Texts) -> str:
    if hours % 24 == 0:
        return say("report.window_days", n=hours // 24)
    return say("report.window_hours", n=hours)


def _duration(text: str, say: Texts) -> str:
    """ "24h" (a silence's duration as stored) in words."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if len(text) > 1 and text[:-1].isdigit() and text[-1] in units:
        return span(int(text[:-1]) * units[text[-1]], say)
    return inline(text, 20)


def report_card(view: ReportView, say: Texts, zone: ZoneInfo) -> dict[str, Any]:
    """The numbers, then each suggestion with one button."""
    del zone  # the report shows no clock times; the parameter keeps every card call alike
    elements: list[dict[str, Any]] = []
    if view.summary.strip():
        elements.append(markdown(prose(view.summary, 600, 4)))
    elements.append(markdown("\n".join(_numbers(view, say))))
    for title, lines in (
        ("report.noisy_title", [_noisy(row, say) for row in view.noisy]),
        (
            "report.flapping_title",
            [say("report.flapping_row", name=inline(n, 80), flaps=f) for n, f in view.flapping],
        ),
        ("report.jobs_title", [_job(job, say) for job in view.jobs]),
    ):
        if lines:
            shown = [f"**{say(title)}**", *(f"- {x}" for x in lines[:ROWS])]
            elements.append(markdown("\n".join([*shown, *more(len(lines), ROWS, say)])))
    elements.append(markdown(f"**{say('report.suggestions_title')}**"))
    if not view.suggestions:
        elements.append(markdown(say("report.none_suggested")))
    for suggestion in view.suggestions[:SUGGESTIONS]:
        elements.append(markdown(describe(suggestion, say)))
        label = say(f"report.button.{suggestion.kind}", name=inline(suggestion.alertname, 24))
        elements.append(button(label, dict(suggestion.value)))
    elements.extend(markdown(line) for line in more(len(view.suggestions), SUGGESTIONS, say))
    notes = [say("report.hint")] if view.suggestions else []
    if view.summary.strip():
        notes.append(say("report.model_note"))
    if notes:
        elements.append(markdown(" ".join(notes), size="notation"))
    template = "orange" if view.suggestions else "green"
    title = say("report.title", window=window(view.hours, say))
    return fit(card(title, elements, template=template))


def _noisy(row: NoisyRow, say: Texts) -> str:
    service = f" ({inline(row.service, 40)})" if row.service else ""
    name = inline(row.alertname, 80)
    return say(
        "report.noisy_row", name=name, service=service, alerts=row.alerts, incidents=row.incidents
    )


def _job(job: JobRow, say: Texts) -> str:
    return say(
        "report.jobs_row",
        id=job.schedule_id,
        task=inline(job.task, 60),
        failures=job.failures,
        error=inline(job.last_error or "—", 160),
    )


def _numbers(view: ReportView, say: Texts) -> list[str]:
    if not view.alerts and not view.incidents:
        lines = [say("report.quiet")]
    else:
        lines = [
            say("report.volume", alerts=view.alerts, firing=view.firing, incidents=view.incidents)
        ]
    for key, (median, p90, count) in (("report.mtta", view.mtta), ("report.mttr", view.mttr)):
        lines.append(say(key, median=span(median, say), p90=span(p90, say), count=count))
    lines.append(say("report.expired", count=view.approvals_expired))
    if view.auto_fixes:
        rate = "—" if view.auto_fix_rate is None else f"{round(view.auto_fix_rate * 100)}%"
        lines.append(say("report.auto", count=view.auto_fixes, rate=rate))
    else:
        lines.append(say("report.auto_none"))
    return [f"- {line}" for line in lines]


def describe(row: SuggestionRow, say: Texts) -> str:
    """The suggestion in one sentence: what the rule saw and what it would change."""
    name = f"**{inline(row.alertname, 80)}**"
    params = row.params
    if row.kind == "silence":
        duration = _duration(str(params.get("duration", "")), say)
        key = f"report.suggestion.silence.{row.reason}"
        return say(key, name=name, weight=row.weight, duration=duration)
    if row.kind == "dedupe":
        minutes = int(params.get("minutes", 0))
        wanted = span(minutes * 60, say)
        return say("report.suggestion.dedupe", name=name, weight=row.weight, window=wanted)
    if row.kind == "threshold":
        return say(
            "report.suggestion.threshold",
            name=name,
            weight=row.weight,
            duration=f"`for: {inline(str(params.get('for', '')), 10)}`",
        )
    return say("report.suggestion.runbook", name=name, weight=row.weight)


def confirm_card(
    row: SuggestionRow,
    say: Texts,
    *,
    confirm_value: dict[str, Any],
    cancel_value: dict[str, Any],
) -> dict[str, Any]:
    """What exactly applying the suggestion does, with Confirm / Cancel."""
    params = row.params
    if row.kind == "silence":
        what = say(
            "report.confirm.silence",
            matcher=inline(str(params.get("matcher", "")), 300),
            duration=_duration(str(params.get("duration", "")), say),
        )
    elif row.kind == "dedupe":
        what = say(
            "report.confirm.dedupe",
            fingerprint=inline(row.fingerprint, 40),
            window=span(int(params.get("minutes", 0)) * 60, say),
        )
    else:
        what = say(f"report.confirm.{row.kind}")
    elements = [markdown(describe(row, say)), markdown(what)]
    if row.snippet:
        elements.append(markdown(fenced(row.snippet, 2000, 30)))
    elements.append(markdown(say("report.confirm.who"), size="notation"))
    columns = [
        {"tag": "column", "width": "auto", "elements": [button(label, dict(value), kind=kind)]}
        for label, value, kind in (
            (say("report.confirm"), confirm_value, "primary"),
            (say("report.cancel"), cancel_value, "default"),
        )
    ]
    elements.append({"tag": "column_set", "flex_mode": "none", "columns": columns})
    title = say("report.confirm_title", name=inline(row.alertname, 80))
    return fit(card(title, elements, template="orange"))


def applied_card(
    row: SuggestionRow,
    say: Texts,
    zone: ZoneInfo,
    *,
    person: str,
    silence_id: int | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """What was done: the silence or the window applied, or the snippet posted to paste."""
    who = people((person,))
    params = row.params
    if row.kind == "silence":
        done = say(
            "report.applied.silence",
            id=silence_id,
            matcher=inline(str(params.get("matcher", "")), 300),
            until=clock(until, zone, _SHORT) if until is not None else "—",
            person=who,
        )
    elif row.kind == "dedupe":
        done = say(
            "report.applied.dedupe",
            name=inline(row.alertname, 80),
            window=span(int(params.get("minutes", 0)) * 60, say),
            person=who,
        )
    else:
        done = say("report.applied.paste", where=say(f"report.where.{row.kind}"), person=who)
    elements = [markdown(done)]
    if row.snippet:
        elements.append(markdown(fenced(row.snippet, 2000, 30)))
    title = say("report.applied_title", name=inline(row.alertname, 80))
    return fit(card(title, elements, template="green"))
