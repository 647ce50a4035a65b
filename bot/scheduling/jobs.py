"""What a scheduled job does, and how the chat hears of it.

A job's `action` (stored with the schedule) is one of:

- `{"type": "reminder"}`: post the task as a reminder;
- `{"type": "checks", "steps": [{"plugin", "params"}, …]}`: run diagnostic plugins (each judged
  by policy: fences and quotas hold for jobs too) and post their results;
- `{"type": "fix", "plugin", "params"}`: a remediation — never run by the clock alone: each
  fire posts the same approval card as `/run`, always needing a person;
- `{"type": "incident_report", "hours": 24}`: a summary of the chat's incidents (jobs made before
  report sentences became the hygiene report);
- `{"type": "hygiene_report", "days": 7}`: the alert-hygiene report card with its suggestions
  (the `advisor:` section keeps one such system job per configured chat; `post_report` posts it);
- `{"type": "agent"}` (only with a model): the model investigates the task with the read-only
  diagnostic tools, under policy, and its findings are posted.

- `{"type": "reminder", "mention": [open_id, …]}`: a text message reminding of the task, with
  @-mentions of the people named (the asker of 提醒我…).

The action is chosen from the task text when the job is created, in one place:
`bot.scheduling.kinds.job_for` (a task it cannot map makes no job). A failed run is retried
(`retries`, default 1, after `retry_delay` seconds) and then posted with a short analysis: the
error pattern, the likely cause and a suggestion.

With job memory (`workflows.memory.jobs`), before a job runs its history is recalled — the
failure streak and past runs of the job or its targets that found something — and shown on the
run's card (an agent job's model also gets it); every finished run is remembered; a failure's
analysis cites similar past failures, when they recovered and a similar incident's fix. A model,
when configured, words the history in a sentence; without one the card lists it.

Usage::

    runner = JobRunner(settings, db, api, operations, signing_key)
    await runner.run(schedule_row, run_row, late=False)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.lark.api import LarkApi, idempotency_key
from bot.operations import OperationsDesk
from bot.scheduling.history import Outcome, keep, recall
from cards.incident import status_name
from cards.markup import calls, said
from cards.schedules import FailureKind, FailureView, RunMemoryView, RunView, run_card
from cards.texts import Texts, texts
from plugins.contract import AlertContext, PluginContext
from plugins.execution import execute
from plugins.runbooks import finding_of
from storage import reports, schedules
from storage.database import Database
from storage.models import Schedule, ScheduleRun
from workflows.llm.agent import DiagnosisAgent
from workflows.memory.jobs import JobHistory, JobMemory, targets_of


def describe_action(action: Mapping[str, Any], say: Texts) -> str:
    """The action in words, for the confirmation card."""
    kind = action.get("type")
    if kind == "checks":
        names = ", ".join(str(step.get("plugin")) for step in action.get("steps") or [])
        return say("schedule.action.checks", plugins=names)
    if kind in ("plugin", "fix"):
        return say("schedule.action.plugin", plugin=str(action.get("plugin")))
    if kind == "incident_report":
        return say("schedule.action.report", hours=action.get("hours", 24))
    if kind == "hygiene_report":
        return say("report.job_action", days=action.get("days", 7))
    if kind == "agent":
        return say("schedule.action.agent")
    if action.get("mention"):
        return say("schedule.action.remind_asker")
    return say("schedule.action.reminder")


@dataclass
class Result:
    ok: bool
    summary: str
    lines: tuple[str, ...] = ()
    output: str = ""
    card_posted: bool = False
    # per line, the plugin's finding ({"code", "values", "plugin", "ok"}, {} when none), for
    # the card to word in the chat's language; `lines` stay the plugins' own (history, rules)
    findings: tuple[Mapping[str, Any], ...] = ()
    # the summary as a code with values (`schedule.outcome.<code>`), when the run itself could
    # not be done; `summary` stays the stored line (history, rules)
    outcome: Mapping[str, Any] | None = None


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        api: LarkApi,
        operations: OperationsDesk,
        *,
        post_fix: Any = None,
        post_report: Any = None,
        agent: DiagnosisAgent | None = None,
        memory: JobMemory | None = None,
        retries: int = 1,
        retry_delay: float = 30.0,
    ) -> None:
        self.settings = settings
        self.db = db
        self.api = api
        self.operations = operations
        self.post_fix = post_fix  # async (schedule, action, fire_time): posts an approval card
        # async (schedule, days, fire time) -> None: posts the hygiene report
        self.post_report = post_report
        self.agent = agent  # the model's read-only agent, when a model is configured
        self.memory = memory  # job memory: every run kept, history recalled before the next
        self.retries = retries
        self.retry_delay = retry_delay
        self.say = texts(settings.language)

    async def run(self, schedule: Schedule, run: ScheduleRun, late: bool) -> None:
        action = dict(schedule.action or {})
        if action.get("type", "reminder") == "reminder":
            await self._remind(schedule, run, action, late)
            return
        targets = targets_of(action, schedule.task)
        history = await self._history(schedule, targets)
        attempts = 1 + max(0, int(action.get("retries", self.retries)))
        result = Result(False, "not run")
        for attempt in range(attempts):
            result = await self._perform(schedule, action, history, run.fire_time)
            if result.ok or result.card_posted:
                break
            if attempt + 1 < attempts:
                await asyncio.sleep(float(action.get("retry_delay", self.retry_delay)))
        detail = str(((result.outcome or {}).get("values") or {}).get("detail", ""))
        await schedules.finish_run(
            self.db,
            run.id,
            ok=result.ok,
            output="\n".join([result.summary, *result.lines, *([detail] if detail else [])])[:8000],
            error=None if result.ok else result.summary[:500],
        )
        if result.card_posted:
            return
        memory = await self._remember(schedule, run, result, targets, history)
        view = RunView(
            schedule_id=schedule.id,
            task=schedule.task,
            fire_time=run.fire_time,
            ok=result.ok,
            summary=result.summary,
            outcome=result.outcome,
            lines=result.lines,
            findings=result.findings,
            output=result.output,
            late=late,
            # a run that could not be done says why itself (its outcome), with no guesswork
            analysis=None
            if result.ok or result.outcome
            else analyse(result.summary, *result.lines),
            memory=memory,
        )
        card = run_card(view, schedule.timezone, self.say)
        key = idempotency_key(f"schedule:{schedule.id}", "run", run.fire_time.isoformat())
        await self.api.send_card(schedule.chat_id, card, uuid=key)

    async def _remind(
        self, schedule: Schedule, run: ScheduleRun, action: Mapping[str, Any], late: bool
    ) -> None:
        """A reminder is a text message that @-mentions the people it names (the asker of
        提醒我…), so Lark notifies them."""
        people = [str(p) for p in action.get("mention") or [] if str(p).startswith("ou_")]
        words = self.say("schedule.reminder", task=said(schedule.task, 500))
        if late:
            words += " " + self.say("schedule.reminder_late", time=_local(run.fire_time, schedule))
        mentions = calls(people)
        key = idempotency_key(f"schedule:{schedule.id}", "remind", run.fire_time.isoformat())
        await self.api.send_text(schedule.chat_id, f"{mentions} {words}".strip(), uuid=key)
        await schedules.finish_run(self.db, run.id, ok=True, output=words[:8000], error=None)

    async def _history(self, schedule: Schedule, targets: list[str]) -> JobHistory | None:
        return await recall(self.memory, schedule, targets)

    async def _remember(
        self,
        schedule: Schedule,
        run: ScheduleRun,
        result: Result,
        targets: list[str],
        history: JobHistory | None,
    ) -> RunMemoryView | None:
        return await keep(
            self.memory,
            schedule,
            run,
            Outcome(result.ok, result.summary, result.lines),
            targets,
            history,
            agent=self.agent,
            language=self.settings.language,
        )

    async def _perform(
        self,
        schedule: Schedule,
        action: Mapping[str, Any],
        history: JobHistory | None = None,
        fire_time: datetime | None = None,
    ) -> Result:
        kind = action.get("type")
        if kind == "checks":
            return await self._checks(action)
        if kind in ("plugin", "fix"):
            plugin = self.operations.toolkit.registry.get(str(action.get("plugin")))
            if plugin is not None and plugin.spec.category == "diagnostic":
                step = {"plugin": plugin.spec.name, "params": action.get("params") or {}}
                return await self._checks({"steps": [step]})
            if self.post_fix is not None:
                await self.post_fix(schedule, action, fire_time)
                return Result(True, self.say("schedule.fix_posted"), card_posted=True)
            return self._undone("no_approval_path")
        if kind == "incident_report":
            return await self._report(schedule.chat_id, int(action.get("hours", 24)))
        if kind == "hygiene_report" and self.post_report is not None:
            await self.post_report(schedule, int(action.get("days", 7)), fire_time)
            return Result(True, self.say("report.job_posted"), card_posted=True)
        if kind == "agent" and self.agent is not None:
            return await self._investigate(schedule.task, history)
        return self._undone("cannot_run")

    async def _investigate(self, task: str, history: JobHistory | None = None) -> Result:
        """The model looks into the task with the read-only diagnostic tools (under policy),
        told what the job's past runs found."""
        assert self.agent is not None
        question = AlertContext(task[:300], "info", {}, {}, None)
        similar = []
        if history is not None:
            if history.streak:
                similar.append(f"the last {history.streak} run(s) of this job failed")
            similar += [
                f"{p.fire_time:%Y-%m-%d %H:%M} {', '.join(p.targets)}: {p.text}"
                for p in history.seen
            ]
        outcome = await self.agent.diagnose(
            question, incident_id=None, run_id=None, timeline=[], similar=similar
        )
        if outcome.findings is None:
            # the agent's reason is technical detail (the card shows it as code, beside words)
            return self._undone("model_no_answer", detail=outcome.reason[:300])
        found = outcome.findings
        lines = tuple(
            [f"{h.cause} ({round(h.confidence * 100)}%)" for h in found.hypotheses]
            + [e.text for e in found.evidence]
            + [f"→ {check}" for check in found.next_checks]
        )
        return Result(True, found.summary, lines)

    def _undone(self, code: str, detail: str = "") -> Result:
        """A run that could not be done: its summary in the chat's words (stored, and shown on
        /job), the card words `schedule.outcome.<code>` with the technical `detail` as code."""
        summary = self.say(f"schedule.outcome.{code}", detail="").strip()
        return Result(False, summary, outcome={"code": code, "values": {"detail": detail}})

    async def _checks(self, action: Mapping[str, Any]) -> Result:
        toolkit = self.operations.toolkit
        lines, outputs, ok = [], [], True
        findings: list[Mapping[str, Any]] = []
        for step in action.get("steps") or []:
            name, params = str(step.get("plugin")), dict(step.get("params") or {})
            plugin = toolkit.registry.get(name)
            if plugin is None or plugin.spec.category != "diagnostic":
                ok = False
                lines.append(f"{name}: not a diagnostic plugin")
                findings.append({"code": "not_diagnostic", "values": {}, "plugin": name})
                continue
            decision = toolkit.policy.evaluate(plugin.spec, params, alert=None)
            if decision.kind != "auto":
                ok = False
                lines.append(f"{name}: {decision.reason}")
                findings.append({})
                continue
            result = await execute(toolkit.registry, name, PluginContext(), params)
            ok = ok and result.ok
            lines.append(("✅ " if result.ok else "❌ ") + f"{name}: {result.summary}")
            findings.append({**finding_of(result), "plugin": name, "ok": result.ok})
            if result.output:
                outputs.append(result.output[:1000])
        summary = self.say("schedule.checks_ok" if ok else "schedule.checks_failed")
        output = "\n".join(outputs)[:2000]
        return Result(ok, summary, tuple(lines), output, findings=tuple(findings))

    async def _report(self, chat_id: str, hours: int) -> Result:
        since = datetime.now(UTC) - timedelta(hours=hours)
        digest = await reports.chat_digest(self.db, chat_id, since)
        total = sum(count for _, count in digest.by_status)
        worded = [(status_name(status, self.say), count) for status, count in digest.by_status]
        by_status = ", ".join(f"{name} {count}" for name, count in worded) or "—"
        lines = tuple(f"×{count} {title}" for title, count in digest.noisiest)
        summary = self.say("schedule.report", hours=hours, total=total, statuses=by_status)
        return Result(True, summary, lines)


# what a failed run's error looks like -> its kind; the chat words each kind's pattern, likely
# cause and suggestion from `schedule.analysis.<kind>.*` (cards/texts)
PATTERNS: tuple[tuple[re.Pattern[str], FailureKind], ...] = (
    (re.compile(r"timed? ?out|超时", re.I), "timeout"),
    (re.compile(r"refused|ECONNREFUSED|connection failed", re.I), "refused"),
    (re.compile(r"name (or service )?not known|NXDOMAIN|could not resolve|nodename", re.I), "dns"),
    (re.compile(r"permission|denied|forbidden|403|401", re.I), "permission"),
    (re.compile(r"\b5\d\d\b|status 5", re.I), "server_error"),
    (
        re.compile(r"outside|quota|refused by policy|not in the allow-list|fence", re.I),
        "policy",
    ),
    (re.compile(r"invalid parameters|does not match", re.I), "invalid_params"),
)


def _local(moment: datetime, schedule: Schedule) -> str:
    return moment.astimezone(ZoneInfo(schedule.timezone)).strftime("%Y-%m-%d %H:%M")


def analyse(*texts_: str) -> FailureView:
    """What kind of failure a failed run's words show, by rules (`unknown` with the error's
    first line when none is recognised)."""
    joined = "\n".join(texts_)
    for pattern, kind in PATTERNS:
        if pattern.search(joined):
            return FailureView(kind)
    first = joined.strip().splitlines()[0] if joined.strip() else ""
    return FailureView("unknown", first[:120])
