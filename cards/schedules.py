"""Cards of scheduled jobs: the confirmation (Confirm / Edit / Cancel), the edit form, a job's
details, the job list, a run's result (with a failure analysis), and missed runs.

Pure functions: views in, Card JSON 2.0 out; times are shown in the schedule's own zone.

Usage::

    confirm_card(view, say, confirm_value=..., edit_value=..., cancel_value=...)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cards.basics import button, card, markdown, text
from cards.incident import more, people
from cards.markup import fenced, fit, inline, prose
from cards.texts import Texts

MAX_JOBS = 30
_WHEN = "%Y-%m-%d %H:%M %Z"


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as the chat sees it."""

    id: int
    task: str
    rule: str  # the rule in words, in the chat's language
    timezone: str
    next_runs: tuple[datetime, ...]
    action: str  # what it does, in words
    status: str
    created_by: str
    last_run: datetime | None = None
    last_result: str | None = None  # succeeded | failed | missed | running
    source_text: str = ""
    calendar_gaps: tuple[int, ...] = ()  # years China's working-day calendar does not cover
    by_model: bool = False  # the model read the time (the rules could not)
    pending_hours: int = 24  # how long a draft waits for its confirmation


@dataclass(frozen=True)
class ChoiceView:
    """One answer a question offers: the rule in words, its first run, the signed value."""

    rule: str
    first: datetime | None
    timezone: str
    value: dict[str, Any]


@dataclass(frozen=True)
class RunView:
    """One run of a job and what came of it."""

    schedule_id: int
    task: str
    fire_time: datetime
    ok: bool
    summary: str
    lines: tuple[str, ...] = ()
    output: str = ""
    late: bool = False
    analysis: tuple[str, str, str] | None = None  # (error pattern, likely cause, suggestion)


def _when(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime(_WHEN)


def _buttons(pairs: Sequence[tuple[str, dict[str, Any] | None, str]]) -> dict[str, Any]:
    columns = [
        {"tag": "column", "width": "auto", "elements": [button(label, dict(value), kind=kind)]}
        for label, value, kind in pairs
        if value is not None
    ]
    return {"tag": "column_set", "flex_mode": "none", "columns": columns}


def _facts(view: ScheduleView, say: Texts, runs: int) -> list[str]:
    lines = [
        say("schedule.facts.task", task=inline(view.task, 300)),
        say("schedule.facts.rule", rule=inline(view.rule, 200)),
        say("schedule.facts.action", action=inline(view.action, 300)),
        say("schedule.facts.zone", zone=inline(view.timezone, 60)),
    ]
    if view.next_runs:
        shown = ", ".join(_when(t, view.timezone) for t in view.next_runs[:runs])
        lines.append(say("schedule.facts.next", times=shown))
    if view.calendar_gaps:
        years = "、".join(str(y) for y in view.calendar_gaps)
        lines.append(say("schedule.facts.calendar_gap", years=years))
    if view.by_model:
        lines.append(say("schedule.facts.by_model"))
    return lines


def confirm_card(
    view: ScheduleView,
    say: Texts,
    *,
    confirm_value: dict[str, Any] | None,
    edit_value: dict[str, Any] | None,
    cancel_value: dict[str, Any] | None,
) -> dict[str, Any]:
    """The job as understood, before it exists; the buttons decide."""
    elements = [markdown("\n".join(_facts(view, say, 3)))]
    if view.status == "pending":
        elements.append(markdown(say("schedule.confirm.question"), size="notation"))
        elements.append(
            _buttons(
                [
                    (say("schedule.confirm"), confirm_value, "primary"),
                    (say("schedule.edit"), edit_value, "default"),
                    (say("schedule.cancel"), cancel_value, "danger"),
                ]
            )
        )
    else:
        line = say(f"schedule.status_line.{view.status}", id=view.id, hours=view.pending_hours)
        elements.append(markdown(line))
    template = {"pending": "blue", "active": "green"}.get(view.status, "grey")
    return fit(card(say("schedule.confirm.title"), elements, template=template))


def choice_card(question: str, choices: Sequence[ChoiceView], say: Texts) -> dict[str, Any]:
    """A question whose answers are buttons: a click creates the job it names."""
    elements: list[dict[str, Any]] = [markdown(prose(question, 600, 6))]
    for choice in choices:
        first = _when(choice.first, choice.timezone) if choice.first else "—"
        label = say("schedule.choose.option", rule=inline(choice.rule, 80), first=first)
        elements.append(button(label, dict(choice.value), kind="default"))
    elements.append(markdown(say("schedule.choose.hint"), size="notation"))
    return fit(card(say("schedule.choose.title"), elements, template="orange"))


def edit_form_card(
    view: ScheduleView, say: Texts, *, submit_value: dict[str, Any]
) -> dict[str, Any]:
    """A form: a new time expression and task; submitting re-reads it into a new confirmation."""
    form = {
        "tag": "form",
        "name": "schedule_edit",
        "elements": [
            {
                "tag": "input",
                "name": "when",
                "label": text(say("schedule.form.when")),
                "placeholder": text(say("schedule.form.when_hint")),
                "default_value": inline(view.source_text or view.rule, 200),
            },
            {
                "tag": "input",
                "name": "task",
                "label": text(say("schedule.form.task")),
                "default_value": inline(view.task, 200),
            },
            {
                "tag": "button",
                "text": text(say("schedule.form.submit")),
                "type": "primary",
                "form_action_type": "submit",
                "name": "submit",
                "behaviors": [{"type": "callback", "value": submit_value}],
            },
        ],
    }
    return fit(card(say("schedule.form.title"), [form]))


def job_card(view: ScheduleView, say: Texts, runs: Sequence[RunView]) -> dict[str, Any]:
    """`/job <id>`: the rule, the next fires and the latest runs."""
    lines = [
        f"**#{view.id}** · {say(f'schedule.status.{view.status}')} · "
        + say("schedule.facts.creator", person=people((view.created_by,))),
        *_facts(view, say, 5),
    ]
    elements = [markdown("\n".join(lines))]
    if runs:
        rows = [
            say(
                "schedule.run_row",
                time=_when(run.fire_time, view.timezone),
                result=say("schedule.ok") if run.ok else say("schedule.failed"),
                summary=inline(run.summary, 160),
            )
            for run in runs[:10]
        ]
        elements.append(markdown("\n".join([f"**{say('schedule.runs')}**", *rows])))
    return fit(card(say("schedule.job.title", id=view.id), elements))


def jobs_card(views: Sequence[ScheduleView], say: Texts) -> dict[str, Any]:
    """`/jobs`: every live job of the chat with its next run and last result."""
    lines = []
    for view in views[:MAX_JOBS]:
        next_run = _when(view.next_runs[0], view.timezone) if view.next_runs else "—"
        last = say(f"schedule.result.{view.last_result}") if view.last_result else "—"
        lines.append(
            say(
                "schedule.jobs_row",
                id=view.id,
                task=inline(view.task, 80),
                rule=inline(view.rule, 80),
                next=next_run,
                last=last,
                status=say(f"schedule.status.{view.status}"),
            )
        )
    lines += more(len(views), MAX_JOBS, say)
    body = "\n".join(lines) if lines else say("schedule.none")
    elements = [markdown(body), markdown(say("schedule.jobs_hint"), size="notation")]
    return fit(card(say("schedule.jobs_title"), elements))


def run_card(view: RunView, zone: str, say: Texts) -> dict[str, Any]:
    """A run's result; a failure comes with its analysis."""
    head = say(
        "schedule.run_title_ok" if view.ok else "schedule.run_title_failed",
        id=view.schedule_id,
        task=inline(view.task, 120),
    )
    lines = [prose(view.summary, 800, 8)]
    if view.late:
        lines.append(say("schedule.late", time=_when(view.fire_time, zone)))
    elements = [markdown("\n".join(line for line in lines if line))]
    if view.lines:
        bullets = [f"- {inline(line, 300)}" for line in view.lines[:12]]
        bullets += more(len(view.lines), 12, say)
        elements.append(markdown("\n".join(bullets)))
    if view.analysis is not None:
        pattern, cause, suggestion = view.analysis
        elements.append(
            markdown(
                "\n".join(
                    [
                        f"**{say('schedule.analysis')}**",
                        say("schedule.analysis.pattern", text=inline(pattern, 200)),
                        say("schedule.analysis.cause", text=inline(cause, 300)),
                        say("schedule.analysis.suggestion", text=inline(suggestion, 300)),
                    ]
                )
            )
        )
    if view.output.strip():
        elements.append(markdown(fenced(view.output, 2000, 30)))
    return fit(card(head, elements, template="green" if view.ok else "red"))


def missed_card(view: ScheduleView, count: int, ran_late: bool, say: Texts) -> dict[str, Any]:
    """The bot was down when the job should have run."""
    key = "schedule.missed_ran" if ran_late else "schedule.missed_skipped"
    elements = [markdown(say(key, count=count, task=inline(view.task, 200)))]
    return fit(card(say("schedule.missed_title", id=view.id), elements, template="orange"))
