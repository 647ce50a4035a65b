"""The chat side of scheduled jobs: from a sentence to a confirmed job, and its lifecycle.

A message that reads as a schedule (or `/schedule <text>`) becomes a *pending* schedule and a
confirmation card; only Confirm makes it active (and tells the scheduler at once). Edit opens
a form (time expression, task) whose answer becomes a new confirmation; Cancel drops it. A
clarifying question is answered by replying in the thread (mentioning the bot): the reply is read
together with the original sentence. Only the creator or an admin may confirm, change, pause,
resume, run or delete a job.

Usage::

    desk = ScheduleDesk(settings, db, operations, wake=service.wake)
    draft = await desk.draft("oc_1", "ou_1", "每个工作日早上9点检查服务器健康并发到群里")
    view = await desk.confirm(draft.schedule.id, "ou_1")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.lark.api import LarkApi, LarkApiError, idempotency_key
from bot.lark.patcher import GONE
from bot.logs import get_logger
from bot.operations import OperationsDesk
from bot.scheduling.jobs import describe_action
from bot.scheduling.kinds import Abilities, abilities_of, job_for
from cards.schedules import ScheduleView, confirm_card
from cards.texts import Texts, texts
from storage import job_history, schedules
from storage.database import Database
from storage.models import Schedule, ScheduleRun
from storage.statuses import ScheduleStatus
from workflows.llm.guard import ModelGuard
from workflows.llm.prompt import Scrubber
from workflows.schedule.compiler import cron_of, next_runs
from workflows.schedule.holidays import uncovered
from workflows.schedule.parser import ParseResult, parse
from workflows.schedule.spec import Once, Spec, from_json, to_json, workday_calendar
from workflows.schedule.wording import describe

# why a change to a job may not be made ("refused": the task cannot be run as a job)
Refusal = Literal["refused", "not_found", "not_yours", "wrong_state", "passed", "expired"]
log = get_logger(__name__)
# an expired draft's card has no buttons
NO_BUTTONS: dict[str, Any] = {"confirm_value": None, "edit_value": None, "cancel_value": None}


class ScheduleRefused(Exception):
    """A change that may not be made; the message is for the chat (already worded), `code`
    says why."""

    def __init__(self, message: str, code: Refusal = "refused") -> None:
        super().__init__(message)
        self.code: Refusal = code


class DraftExpired(ScheduleRefused):
    """A click on a draft nobody confirmed in time (`LARKOPS_PENDING_TTL_HOURS`)."""

    def __init__(self, message: str, row: Schedule) -> None:
        super().__init__(message, "expired")
        self.row = row


@dataclass(frozen=True)
class Draft:
    """What a sentence became: a pending schedule, a question, or nothing. `unable`: the task
    the bot cannot do (no job was made; the chat is told what it can do)."""

    result: ParseResult
    schedule: Schedule | None = None
    unable: str | None = None


class ScheduleDesk:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        operations: OperationsDesk,
        *,
        wake: Callable[[], None] = lambda: None,
        run_now: Callable[[Schedule], object] | None = None,
        has_model: bool = False,
        guard: ModelGuard | None = None,
        scrub: Scrubber | None = None,
        api: LarkApi | None = None,
    ) -> None:
        self.settings = settings
        self.api = api  # updates the cards of drafts that expire
        self.db = db
        self.operations = operations
        self.wake = wake
        self.run_now = run_now
        self.has_model = has_model
        self.guard = guard
        self.scrub = scrub
        self.say: Texts = texts(settings.language)

    def read(self, text: str, now: datetime | None = None) -> ParseResult:
        """The rules' reading, with the configured working-day calendar."""
        return parse(
            text, now=now, timezone=self.settings.timezone, workdays=self.settings.workdays
        )

    async def understand(self, text: str) -> ParseResult:
        """The rules' reading, or, when they cannot read the text, the model's through the
        guard (accepted only when it compiles to a schedule with a future run)."""
        if self.guard is None or self.scrub is None:
            return self.read(text)
        from workflows.schedule.fallback import parse_guarded

        return await parse_guarded(
            text,
            now=datetime.now(UTC),
            timezone=self.settings.timezone,
            guard=self.guard,
            scrub=self.scrub,
            workdays=self.settings.workdays,
        )

    async def draft(self, chat_id: str, user: str, text: str, *, task: str | None = None) -> Draft:
        """Parse `text`; a scheduled reading becomes a pending schedule awaiting Confirm."""
        result = await self.understand(text)
        chosen = (task or result.task or "").strip()
        if result.status == "clarify" and chosen and self.action(chosen, text, user) is None:
            return Draft(result, unable=chosen)  # no use asking the time of what cannot be done
        if result.status != "scheduled" or result.spec is None:
            return Draft(result)
        if not chosen:
            return Draft(result, unable="")  # a time and nothing to do: say what a job can do
        if self.action(chosen, text, user, result.spec) is None:
            return Draft(result, unable=chosen)
        row = await self._create(chat_id, user, text, result.spec, chosen)
        return Draft(result, row)

    @property
    def abilities(self) -> Abilities:
        """What a job can do here (plugins, runbooks, a model)."""
        return abilities_of(self.operations.toolkit, has_model=self.has_model)

    def action(
        self, task: str, text: str, user: str, spec: Spec | None = None
    ) -> dict[str, Any] | None:
        """The job's action for `task` (`bot.scheduling.kinds.job_for`), None when the bot
        cannot do it."""
        period = None
        if spec is not None:
            upcoming = next_runs(spec, datetime.now(UTC), 2)
            if len(upcoming) == 2:
                period = max(1, round((upcoming[1] - upcoming[0]).total_seconds() / 86400))
        return job_for(task, text, self.abilities, asker=user, period_days=period)

    async def choose(self, chat_id: str, user: str, text: str, spec: Spec, task: str) -> Schedule:
        """A question's option was clicked: the job it names, created and confirmed at once
        (a second click on the same option finds that job instead of making another)."""
        stored = to_json(spec)
        for row in await schedules.live(self.db, chat_id):
            if row.spec == stored and row.source_text == text[:2000] and row.created_by == user:
                return row
        row = await self._create(chat_id, user, text, spec, task)
        return await self.change(row.id, user, "confirm", chat_id)

    async def _create(self, chat_id: str, user: str, text: str, spec: Spec, task: str) -> Schedule:
        chosen_task = task.strip() or text.strip()
        action = self.action(chosen_task, text, user, spec)
        if action is None:
            raise ScheduleRefused(self.say("schedule.unable", task=chosen_task[:200]))
        now = datetime.now(UTC)
        upcoming = next_runs(spec, now, 1)
        return await schedules.create(
            self.db,
            chat_id=chat_id,
            created_by=user,
            source_text=text,
            task=chosen_task,
            timezone=spec.timezone,
            kind=spec.kind,
            spec=to_json(spec),
            cron=cron_of(spec),
            run_at=spec.at if isinstance(spec, Once) else None,
            action=action,
            next_run_at=upcoming[0] if upcoming else None,
        )

    def view(self, row: Schedule, *, runs: int = 5) -> ScheduleView:
        spec = from_json(row.spec)
        language = self.say.language
        upcoming: list[datetime] = []
        now = datetime.now(UTC)
        if row.status in ("pending", "active"):
            upcoming = next_runs(spec, now, runs)
        years = {now.astimezone(ZoneInfo(spec.timezone)).year, *(t.year for t in upcoming)}
        return ScheduleView(
            id=row.id,
            task=row.task,
            rule=describe(spec, language),
            timezone=row.timezone,
            next_runs=tuple(upcoming),
            action=describe_action(row.action or {}, self.say),
            status=row.status,
            created_by=row.created_by,
            last_run=row.last_run_at,
            source_text=row.source_text,
            calendar_gaps=uncovered(workday_calendar(spec), years),
            pending_hours=round(self.settings.pending_ttl_hours),
        )

    def choices(self, result: ParseResult) -> list[tuple[Spec, str, datetime]]:
        """A question's options: (spec, the rule in words, its first run)."""
        now = datetime.now(UTC)
        found = []
        for spec in result.options:
            upcoming = next_runs(spec, now, 1)
            if upcoming:
                found.append((spec, describe(spec, self.say.language), upcoming[0]))
        return found

    async def get(self, schedule_id: int, chat_id: str | None = None) -> Schedule:
        row = await schedules.get(self.db, schedule_id)
        if row is None or row.status == "deleted" or (chat_id and row.chat_id != chat_id):
            raise ScheduleRefused(self.say("schedule.not_found", id=schedule_id), "not_found")
        return row

    def _may_change(self, row: Schedule, user: str, admin: bool) -> None:
        if user != row.created_by and not admin and user not in self.settings.admins:
            raise ScheduleRefused(self.say("schedule.not_yours", id=row.id), "not_yours")

    async def change(
        self, schedule_id: int, user: str, what: str, chat_id: str, *, admin: bool = False
    ) -> Schedule:
        """Confirm, cancel, pause, resume, run (now) or delete; ScheduleRefused says why not.
        `admin`: the user holds the admin role in the chat (bot.roles)."""
        row = await self.get(schedule_id, chat_id)
        self._may_change(row, user, admin)
        await self.refuse_expired(row)
        moves: dict[str, tuple[ScheduleStatus, tuple[ScheduleStatus, ...]]] = {
            "confirm": ("active", ("pending",)),
            "cancel": ("deleted", ("pending",)),
            "pause": ("paused", ("active",)),
            "resume": ("active", ("paused",)),
            "delete": ("deleted", ("active", "paused", "pending")),
        }
        if what == "run":
            if row.status not in ("active", "paused"):
                raise ScheduleRefused(
                    self.say("schedule.wrong_state", id=row.id, status=row.status), "wrong_state"
                )
            if self.run_now is not None:
                self.run_now(row)
            return row
        status, expect = moves[what]
        extra: dict[str, object] = {}
        if what == "confirm":
            spec = from_json(row.spec)
            upcoming = next_runs(spec, datetime.now(UTC), 1)
            if not upcoming:
                raise ScheduleRefused(self.say("schedule.passed", id=row.id), "passed")
            extra = {"confirmed_by": user, "confirmed_at": datetime.now(UTC)}
        if not await schedules.set_status(self.db, row.id, status, expect=expect, **extra):
            status_words = self.say(f"schedule.status.{row.status}")
            words = self.say("schedule.wrong_state", id=row.id, status=status_words)
            raise ScheduleRefused(words, "wrong_state")
        self.wake()
        refreshed = await schedules.get(self.db, row.id)
        assert refreshed is not None
        return refreshed

    @property
    def pending_ttl(self) -> timedelta:
        return timedelta(hours=self.settings.pending_ttl_hours)

    @property
    def pending_hours(self) -> int:
        """The pending time in whole hours, as cards say it."""
        return max(1, round(self.settings.pending_ttl_hours))

    def question_expired(self, asked: float | datetime) -> bool:
        """Whether a clarifying question asked at `asked` (Unix seconds or a time) went
        unanswered past the pending time (`LARKOPS_PENDING_TTL_HOURS`)."""
        when = asked if isinstance(asked, datetime) else datetime.fromtimestamp(asked, UTC)
        return when < datetime.now(UTC) - self.pending_ttl

    async def expire_drafts(self) -> list[int]:
        """Expire the drafts nobody confirmed within the pending time (the sweep); each
        draft's card is updated to say so, without its buttons (not only when clicked)."""
        expired = await schedules.expire_drafts(self.db, self.pending_ttl)
        for schedule_id in expired:
            row = await schedules.get(self.db, schedule_id)
            if self.api is None or row is None or not row.card_message_id:
                continue
            card = confirm_card(self.view(row), self.say, **NO_BUTTONS)
            try:
                await self.api.patch_card(row.card_message_id, card)
            except LarkApiError as exc:
                if exc.code in GONE:  # recalled, or 14 days old: the chat still sees it expired
                    await self._card_again(row, row.card_message_id, card)
                else:  # the card stays stale; a click still says 已过期
                    log.warning("schedule.card_update_failed", schedule=row.id, code=exc.code)
            except Exception as exc:
                log.warning("schedule.card_update_failed", schedule=row.id, error=str(exc)[:200])
        return expired

    async def _card_again(self, row: Schedule, gone: str, card: dict[str, Any]) -> None:
        """Lark will never update the draft's card `gone` again: the card goes to its chat as
        a new message (once, whichever replica: its `uuid` names the card it replaces)."""
        assert self.api is not None
        key = idempotency_key("schedule-card", str(row.id), gone)
        try:
            message_id = await self.api.send_card(row.chat_id, card, uuid=key)
        except LarkApiError as exc:
            log.warning("schedule.card_update_failed", schedule=row.id, code=exc.code)
            return
        await schedules.update_fields(self.db, row.id, card_message_id=message_id)

    async def shown(self, schedule_id: int, message_id: str) -> None:
        """Remember the message that shows a draft's confirmation card."""
        if message_id:
            await schedules.update_fields(self.db, schedule_id, card_message_id=message_id)

    async def refuse_expired(self, row: Schedule) -> None:
        """A draft past its time is expired now (if the sweep has not yet) and refused."""
        stale = row.status == "pending" and row.created_at < datetime.now(UTC) - self.pending_ttl
        if stale:
            await schedules.set_status(self.db, row.id, "expired", expect=("pending",))
        if stale or row.status == "expired":
            current = await schedules.get(self.db, row.id) or row
            raise DraftExpired(self.say("pending.expired"), current)

    async def edit(
        self,
        schedule_id: int,
        user: str,
        chat_id: str,
        when: str,
        task: str,
        *,
        admin: bool = False,
    ) -> Draft:
        """The form's answer: a new pending schedule replaces the old pending one."""
        row = await self.get(schedule_id, chat_id)
        self._may_change(row, user, admin)
        await self.refuse_expired(row)
        draft = await self.draft(chat_id, user, f"{when} {task}".strip(), task=task or None)
        if draft.schedule is not None and row.status == "pending":
            await schedules.set_status(self.db, row.id, "deleted", expect=("pending",))
        return draft

    async def history(self, schedule_id: int) -> tuple[Sequence[ScheduleRun], list[ScheduleRun]]:
        """A job's latest runs (newest first, for `/job <id>`), and its latest finished ones
        (for the trend of how long they took)."""
        runs = await schedules.runs(self.db, schedule_id)
        return runs, await job_history.latest_finished(self.db, schedule_id)

    async def jobs(self, chat_id: str) -> list[ScheduleView]:
        views = []
        for row in await schedules.live(self.db, chat_id):
            view = self.view(row, runs=1)
            last = await schedules.runs(self.db, row.id, limit=1)
            if last:
                view = replace(view, last_result=last[0].status)
            views.append(view)
        return views


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))
