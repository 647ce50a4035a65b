"""Cards of scheduled jobs: the confirmation (Confirm / Edit / Cancel), the edit form, a job's
details, the job list, a run's result (with a failure analysis), missed runs and a run cut off
by a replica's death.

Pure functions: views in, Card JSON 2.0 out; times are shown in the schedule's own zone.

Usage::

    confirm_card(view, say, confirm_value=..., edit_value=..., cancel_value=...)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cards.basics import button, card, markdown, more, text
from cards.incident import finding, people
from cards.markup import code, fenced, fit, inline, prose, said
from cards.texts import Texts

MAX_JOBS = 30
MAX_CHOICES = 10  # answers offered as buttons; the rest are counted
_WHEN = "%Y-%m-%d %H:%M %Z"
SPARKS = "▁▂▃▄▅▆▇█"


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
    last_result: str | None = None  # succeeded | failed | missed | running | interrupted
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


# the kinds of error a failed run's analysis recognises (`schedule.analysis.<kind>.*`)
FailureKind = Literal[
    "timeout",
    "refused",
    "dns",
    "permission",
    "server_error",
    "policy",
    "invalid_params",
    "unknown",
]


@dataclass(frozen=True)
class FailureView:
    """A failed run's analysis: the kind of error (its pattern, likely cause and suggestion
    are worded by the catalogue), and for an `unknown` one the error's first line (shown as
    the tool's own words)."""

    kind: FailureKind
    text: str = ""


@dataclass(frozen=True)
class RunView:
    """One run of a job and what came of it."""

    schedule_id: int
    task: str
    fire_time: datetime
    ok: bool
    summary: str
    lines: tuple[str, ...] = ()
    findings: tuple[Mapping[str, Any], ...] = ()  # per line, a plugin's {"code", "values", …}
    output: str = ""
    late: bool = False
    analysis: FailureView | None = None  # a failure's kind of error
    memory: RunMemoryView | None = None  # what the job's past says (job memory)
    # a run that could not be done: {"code", "values"} worded by `schedule.outcome.<code>`
    outcome: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class PastRunView:
    """A remembered run of this or another job, recalled for this one."""

    fire_time: datetime
    text: str
    targets: tuple[str, ...] = ()
    similarity: float = 0.0
    recovered_at: datetime | None = None  # a past failure: when its job next succeeded
    fix: str | None = None  # a past failure: the fix of a similar remembered incident


@dataclass(frozen=True)
class RunMemoryView:
    """A run's context from the job's history. `streak`: failures in a row, this one included
    when it failed; the failures it ended when it succeeded."""

    streak: int = 0
    seen: tuple[PastRunView, ...] = ()
    similar_failures: tuple[PastRunView, ...] = ()
    worded: str = ""  # a model's wording of the history, when one is configured


@dataclass(frozen=True)
class TrendView:
    """One of a job's latest runs, for its trend line."""

    ok: bool
    seconds: float | None = None


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


def choice_card(
    question: str, choices: Sequence[ChoiceView], say: Texts, *, expires_hours: int | None = None
) -> dict[str, Any]:
    """A question whose answers are buttons: a click creates the job it names. Unanswered, it
    expires after `expires_hours` (the card says so)."""
    elements: list[dict[str, Any]] = [markdown(prose(question, 600, 6))]
    for choice in choices[:MAX_CHOICES]:
        first = _when(choice.first, choice.timezone) if choice.first else "—"
        label = say("schedule.choose.option", rule=inline(choice.rule, 80), first=first)
        elements.append(button(label, dict(choice.value), kind="default"))
    elements += [markdown(line) for line in more(len(choices), MAX_CHOICES, say)]
    hint = say("schedule.choose.hint")
    if expires_hours is not None:
        hint += " " + say("schedule.choose.expires", hours=expires_hours)
    elements.append(markdown(hint, size="notation"))
    return fit(card(say("schedule.choose.title"), elements, template="orange"))


def expired_choice_card(sentence: str, hours: int, say: Texts) -> dict[str, Any]:
    """A question nobody answered in time: it says so, and has no buttons left."""
    elements = [
        markdown(say("schedule.facts.source", text=inline(sentence, 300))),
        markdown(say("schedule.choose.expired", hours=hours)),
    ]
    return fit(card(say("schedule.choose.title"), elements, template="grey"))


@dataclass(frozen=True)
class AbilitiesView:
    """What a scheduled job can do here, for a task the bot could not map."""

    task: str
    diagnostics: tuple[str, ...] = ()
    runbooks: tuple[str, ...] = ()
    has_model: bool = False


def unable_card(view: AbilitiesView, say: Texts) -> dict[str, Any]:
    """A task the bot cannot do: no job was made; what a job can do instead."""
    lines = [
        say("schedule.unable", task=inline(view.task, 200))
        if view.task
        else say("schedule.unable_no_task"),
        "",
        f"**{say('schedule.abilities.title')}**",
        "- " + say("schedule.abilities.report"),
        "- " + say("schedule.abilities.reminder"),
    ]
    if view.diagnostics:
        shown = ", ".join(inline(name, 40) for name in view.diagnostics[:20])
        lines.append("- " + say("schedule.abilities.checks", plugins=shown))
    lines.append("- " + say("schedule.abilities.url"))
    if view.runbooks:
        shown = ", ".join(inline(name, 60) for name in view.runbooks[:10])
        lines.append("- " + say("schedule.abilities.runbooks", runbooks=shown))
    lines.append("- " + say("schedule.abilities.run"))
    if view.has_model:
        lines.append("- " + say("schedule.abilities.agent"))
    elements = [
        markdown("\n".join(lines)),
        markdown(say("schedule.abilities.hint"), size="notation"),
    ]
    return fit(card(say("schedule.unable_title"), elements, template="orange"))


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
                "default_value": said(view.source_text or view.rule, 200),  # no markdown
            },
            {
                "tag": "input",
                "name": "task",
                "label": text(say("schedule.form.task")),
                "default_value": said(view.task, 200),
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


def job_card(
    view: ScheduleView,
    say: Texts,
    runs: Sequence[RunView],
    trend: Sequence[TrendView] = (),
) -> dict[str, Any]:
    """`/job <id>`: the rule, the next fires, the trend of its latest runs (oldest first) and
    the latest runs."""
    lines = [
        f"**#{view.id}** · {say(f'schedule.status.{view.status}')} · "
        + say("schedule.facts.creator", person=people((view.created_by,))),
        *_facts(view, say, 5),
    ]
    elements = [markdown("\n".join(lines))]
    if trend:
        elements.append(markdown(trend_text(trend, say)))
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
    lines = [_outcome(view.outcome, say) or prose(view.summary, 800, 8)]
    if view.late:
        lines.append(say("schedule.late", time=_when(view.fire_time, zone)))
    elements = [markdown("\n".join(line for line in lines if line))]
    if view.memory is not None:
        remembered = _remembered(view.memory, view, zone, say)
        if remembered:
            elements.append(markdown("\n".join(remembered)))
    if view.lines:
        found = list(view.findings)
        bullets = [
            f"- {_check_line(line, found[n] if n < len(found) else {}, say)}"
            for n, line in enumerate(view.lines[:12])
        ]
        bullets += more(len(view.lines), 12, say)
        elements.append(markdown("\n".join(bullets)))
    if view.analysis is not None:
        kind = view.analysis.kind
        pattern = say(f"schedule.analysis.{kind}.pattern", text=code(view.analysis.text, 200))
        elements.append(
            markdown(
                "\n".join(
                    [
                        f"**{say('schedule.analysis')}**",
                        say("schedule.analysis.pattern", text=pattern),
                        say("schedule.analysis.cause", text=say(f"schedule.analysis.{kind}.cause")),
                        say(
                            "schedule.analysis.suggestion",
                            text=say(f"schedule.analysis.{kind}.suggestion"),
                        ),
                        *_similar_failures(view, zone, say),
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


def interrupted_card(
    view: ScheduleView, fire_time: datetime, reason: str, say: Texts
) -> dict[str, Any]:
    """A run whose replica died mid-run and that was not run again: why not."""
    lines = [
        say(
            "schedule.interrupted",
            task=inline(view.task, 200),
            time=_when(fire_time, view.timezone),
        ),
        say(f"schedule.interrupted.{reason}"),
    ]
    elements = [markdown("\n".join(lines))]
    return fit(card(say("schedule.interrupted_title", id=view.id), elements, template="orange"))


def trend_text(trend: Sequence[TrendView], say: Texts) -> str:
    """A job's latest runs on one line: a ✅/❌ strip and the success rate, then a sparkline
    of how long they ran."""
    strip = "".join("✅" if point.ok else "❌" for point in trend)
    rate = round(100 * sum(point.ok for point in trend) / len(trend))
    lines = [say("job.trend", count=len(trend), strip=strip, rate=rate)]
    known = [point.seconds for point in trend if point.seconds is not None]
    if known:
        low, high = min(known), max(known)
        span = (high - low) or 1.0
        spark = "".join(
            " "
            if point.seconds is None
            else SPARKS[min(len(SPARKS) - 1, int((point.seconds - low) / span * len(SPARKS)))]
            for point in trend
        )
        lines.append(say("job.trend.duration", spark=spark, longest=f"{high:.1f}"))
    return "\n".join(lines)


def ago(moment: datetime, now: datetime, zone: str, say: Texts) -> str:
    """When `moment` was, seen from `now`, in the zone: 今天/昨天/周二/上周二 09:00, or a date."""
    here, then = now.astimezone(ZoneInfo(zone)), moment.astimezone(ZoneInfo(zone))
    time = then.strftime("%H:%M")
    days = (here.date() - then.date()).days
    weekday = say(f"job.weekday.{then.weekday()}")
    if days == 0:
        return say("job.when.today", time=time)
    if days == 1:
        return say("job.when.yesterday", time=time)
    week, last = here.isocalendar()[:2], then.isocalendar()[:2]
    if 0 < days < 7 and week == last:
        return say("job.when.weekday", weekday=weekday, time=time)
    if (
        0 < days < 14
        and (here.date().toordinal() - here.weekday()) - (then.date().toordinal() - then.weekday())
        == 7
    ):
        return say("job.when.last_week", weekday=weekday, time=time)
    return say("job.when.date", date=then.strftime("%Y-%m-%d"), time=time)


def _remembered(memory: RunMemoryView, view: RunView, zone: str, say: Texts) -> list[str]:
    lines: list[str] = []
    if memory.worded:
        lines.append(prose(memory.worded, 500, 4))
    if not view.ok and memory.streak >= 2:
        lines.append(say("job.memory.streak", count=memory.streak))
    if view.ok and memory.streak >= 1:
        lines.append(say("job.memory.recovered", count=memory.streak))
    for seen in memory.seen[:3]:
        targets = ", ".join(inline(t, 60) for t in seen.targets[:3])
        lines.append(
            "- "
            + say(
                "job.memory.seen",
                when=ago(seen.fire_time, view.fire_time, zone, say),
                targets=f" {targets}" if targets else "",
                text=inline(seen.text, 200),
            )
        )
    return [f"**{say('job.memory.heading')}**", *lines] if lines else []


def _similar_failures(view: RunView, zone: str, say: Texts) -> list[str]:
    if view.memory is None or not view.memory.similar_failures:
        return []
    lines = [f"**{say('job.memory.similar')}**"]
    for past in view.memory.similar_failures[:3]:
        outcome = (
            say("job.memory.recovered_at", when=ago(past.recovered_at, view.fire_time, zone, say))
            if past.recovered_at is not None
            else say("job.memory.not_recovered")
        )
        lines.append(
            "- "
            + say(
                "job.memory.failure_line",
                when=ago(past.fire_time, view.fire_time, zone, say),
                similarity=round(past.similarity * 100),
                text=inline(past.text, 200),
                outcome=outcome,
            )
        )
        if past.fix:
            lines.append("  " + say("job.memory.fix", fix=inline(past.fix, 200)))
    return lines


def _outcome(outcome: Mapping[str, Any] | None, say: Texts) -> str | None:
    """Why a run could not be done, in the reader's words (None: not such a run)."""
    if not outcome or not say.has(f"schedule.outcome.{outcome.get('code')}"):
        return None
    values = {str(k): str(v) for k, v in (outcome.get("values") or {}).items()}
    detail = values.get("detail", "")
    # the technical detail (a model's or tool's own words) is shown as code after the words
    values["detail"] = say("schedule.outcome.detail", detail=code(detail, 300)) if detail else ""
    return say(f"schedule.outcome.{outcome.get('code')}", **values)


def _check_line(line: str, found: Mapping[str, Any], say: Texts) -> str:
    """One check of a job's run: the plugin's finding in the reader's words when it came with
    a code, else its own line."""
    worded = finding(found, say) if found else None
    if worded is None:
        return inline(line, 300)
    mark = "✅" if found.get("ok") else "❌"
    return say("schedule.check_line", mark=mark, plugin=code(found.get("plugin"), 60), text=worded)
