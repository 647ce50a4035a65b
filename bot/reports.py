"""The alert-hygiene report desk: facts → rule suggestions → card, and applying a suggestion.

Used by `/report` and by the weekly job. The numbers come from `storage.reports`, the
suggestions from `workflows.hygiene` (rules only); with a model configured it words a short
summary (`workflows.llm.summary`), never the suggestions. Each suggestion's button carries its
exact parameters, signed; applying needs an approver of the chat (the chat's incident
approvers and the admins; anyone when none is configured) and leaves an audit event.

- `silence`: a silence row, exactly like `/silence` (so triage drops matching alerts);
- `dedupe`: the fingerprint's own dedupe window (`dedupe_overrides`, consulted by triage);
- `runbook`, `threshold`: the bot cannot change configuration files or Prometheus rules from
  the chat: "applying" posts the ready-to-paste YAML and records that it was posted.

Usage::

    desk = ReportDesk(settings, db, signing_key, coordination, book=book, guard=g, scrub=s)
    card = await desk.report("oc_1", hours=168)
    done = await desk.confirm(payload, Clicker("oc_1", "ou_1", roles), trace_id)

Whether a click on the report's buttons counts is decided here too (`admit`, `confirm`): from
the report's own chat, by an approver of it, before the confirmation expires, once. A refused
click is audited (`click.refused`) and raises `ReportRefused` with its code.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.incidents.silencing import Silencing
from bot.roles import decider, gate_policy
from cards.actions import ActionPayload, pack
from cards.report import JobRow, NoisyRow, ReportView, SuggestionRow, report_card
from cards.texts import texts
from plugins.contract import AlertContext
from plugins.runbooks import RunbookBook
from storage import advice
from storage.coordination import Coordination
from storage.database import Database
from storage.incidents import record_event
from storage.redaction import Redactor
from storage.reports import FingerprintFacts, HygieneFacts, hygiene_facts
from workflows.hygiene import Suggestion, flapping, runbook_yaml, suggest, threshold_yaml
from workflows.llm.guard import ModelGuard
from workflows.llm.prompt import Scrubber
from workflows.llm.summary import word_report
from workflows.silences import parse_duration, parse_matcher

CONFIRM_TTL = timedelta(hours=1)
DONE_TTL = 2 * 24 * 3600.0  # seconds a confirmation's nonce is remembered (it expires sooner)

# why a click on the report's buttons is refused, and the reason its audit event gives
Refusal = Literal["forged", "not_approver", "expired", "done_already"]
_AUDITED: dict[Refusal, str] = {
    "forged": "forged chat",
    "not_approver": "not an approver",
    "expired": "expired",
    "done_already": "already applied",
}


class ReportRefused(Exception):
    """A click on the report's buttons that counts for nothing: from another chat, by
    someone who may not approve there, too late, or a second Confirm."""

    def __init__(self, code: Refusal) -> None:
        super().__init__(_AUDITED[code])
        self.code = code


@dataclass(frozen=True)
class Clicker:
    """Who clicked, where: the chat of the card, the person and their roles in it."""

    chat_id: str
    user: str
    roles: frozenset[str]


class ReportButton(ActionPayload):
    chat_id: str
    hours: int


class ReportSuggestion(ReportButton):
    kind: str
    fingerprint: str
    alertname: str
    reason: str
    weight: int
    params: dict[str, str | int]


class ReportSuggest(ReportSuggestion, action="report.suggest"):
    """Open the suggestion's confirmation card."""


class ReportConfirm(ReportSuggestion, action="report.confirm"):
    """Apply it (once: `nonce`), before `exp`."""

    nonce: str
    exp: int


class ReportCancel(ReportButton, action="report.cancel"):
    """Back to the report."""


@dataclass(frozen=True)
class Applied:
    """What applying did: the silence made (id, end), or nothing but the audit."""

    silence_id: int | None = None
    until: datetime | None = None
    # a silence that needs another approver (of every alert, or over 24 h): its request card,
    # shown in place of the suggestion, whose buttons the other approver clicks
    request: dict[str, Any] | None = None


def row_of(
    payload: ReportSuggestion, redactor: Redactor, value: dict[str, Any] | None = None
) -> SuggestionRow:
    """The card's view of a suggestion from its (verified) button payload, secrets masked
    (the button keeps the real values)."""
    params = dict(payload.params)
    snippet = ""
    if payload.kind == "runbook":
        snippet = runbook_yaml(str(params.get("key", "alertname")), str(params.get("value", "")))
    elif payload.kind == "threshold":
        snippet = threshold_yaml(payload.alertname, str(params.get("for", "")))
    return SuggestionRow(
        kind=payload.kind,
        alertname=redactor.text(payload.alertname),
        fingerprint=payload.fingerprint,
        reason=payload.reason,
        weight=payload.weight,
        params=redactor.data(params),
        value=value or {},
        snippet=redactor.text(snippet),
    )


def confirm_payload(payload: ReportSuggestion) -> ReportConfirm:
    fields = payload.model_dump()
    expires = int((datetime.now(UTC) + CONFIRM_TTL).timestamp())
    return ReportConfirm(**fields, nonce=uuid.uuid4().hex, exp=expires)


class ReportDesk:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        signing_key: bytes,
        coordination: Coordination,
        *,
        book: RunbookBook | None = None,
        guard: ModelGuard | None = None,
        scrub: Scrubber | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.signing_key = signing_key
        self.coordination = coordination  # remembers the confirmations applied (`confirm`)
        self.silencing = Silencing(settings, db, signing_key)
        self.book = book
        self.guard = guard
        self.redactor = redactor or Redactor(known=settings.secret_values())
        self.scrub = scrub or Scrubber(self.redactor)
        self.say = texts(settings.language)
        self.zone = ZoneInfo(settings.timezone)

    async def facts(self, chat_id: str, hours: int) -> HygieneFacts:
        until = datetime.now(UTC)
        return await hygiene_facts(self.db, chat_id, until - timedelta(hours=hours), until)

    def suggestions(self, facts: HygieneFacts) -> list[Suggestion]:
        covered = self._covered if self.book is not None else None
        window = self.settings.incidents.dedupe_window_minutes
        return suggest(
            facts, self.settings.advisor.rules, dedupe_window_minutes=window, covered=covered
        )

    async def report(self, chat_id: str, hours: int, *, words: bool = True) -> dict[str, Any]:
        """The report card of the chat's last `hours`; `words`: let the model summarise."""
        facts = await self.facts(chat_id, hours)
        found = self.suggestions(facts)
        summary = await self._words(facts, found) if words else None
        return report_card(self.view(facts, found, hours, summary or ""), self.say, self.zone)

    def view(
        self, facts: HygieneFacts, found: list[Suggestion], hours: int, summary: str = ""
    ) -> ReportView:
        hide, rows = self.redactor.text, []
        for suggestion in found:
            payload = ReportSuggest(
                chat_id=facts.chat_id,
                hours=hours,
                kind=suggestion.kind,
                fingerprint=suggestion.fingerprint,
                alertname=suggestion.alertname[:200],
                reason=suggestion.reason,
                weight=suggestion.weight,
                params=dict(suggestion.params),
            )
            rows.append(row_of(payload, self.redactor, pack(payload, self.signing_key)))
        return ReportView(
            hours=hours,
            alerts=facts.alerts,
            firing=facts.firing,
            incidents=facts.incidents,
            mtta=(facts.mtta.median, facts.mtta.p90, facts.mtta.count),
            mttr=(facts.mttr.median, facts.mttr.p90, facts.mttr.count),
            approvals_expired=facts.approvals_expired,
            auto_fixes=facts.auto_fixes,
            auto_fix_rate=facts.auto_fix_rate,
            noisy=tuple(
                NoisyRow(hide(f.alertname), f.service and hide(f.service), f.alerts, f.incidents)
                for f in facts.noisy
            ),
            flapping=tuple(
                (hide(f.alertname), f.flaps) for f in flapping(facts, self.settings.advisor.rules)
            ),
            jobs=tuple(
                JobRow(j.schedule_id, hide(j.task), j.failures, hide(j.last_error))
                for j in facts.failing_jobs
            ),
            suggestions=tuple(rows),
            summary=summary,
        )

    async def admit(self, payload: ReportButton, who: Clicker, trace_id: str | None) -> None:
        """A click on the report's buttons counts when it comes from the report's own chat, by
        an approver of it (the chat's incident approvers and the admins; anyone when none is
        configured); else `ReportRefused`, audited."""
        if payload.chat_id != who.chat_id:
            await self._refuse(payload, "forged", who, trace_id)
        if not gate_policy(self.settings).approves(decider(who.roles, who.user), who.chat_id):
            await self._refuse(payload, "not_approver", who, trace_id)

    async def confirm(
        self, payload: ReportConfirm, who: Clicker, trace_id: str | None, *, message_id: str = ""
    ) -> Applied:
        """A Confirm click: admitted (`admit`), in time, and the first of its card, the
        suggestion is applied (`apply`); else `ReportRefused`, audited. When its parameters do
        not read (ValueError, SilenceError), the card may be confirmed again."""
        await self.admit(payload, who, trace_id)
        if payload.exp < time.time():
            await self._refuse(payload, "expired", who, trace_id)
        key = f"report:{payload.nonce}"
        if not await self.coordination.first_seen(key, DONE_TTL):
            await self._refuse(payload, "done_already", who, trace_id)
        try:
            return await self.apply(payload, who.user, trace_id, message_id=message_id)
        except ValueError:
            await self.coordination.forget(key)
            raise

    async def _refuse(
        self, payload: ReportButton, code: Refusal, who: Clicker, trace_id: str | None
    ) -> None:
        reason = _AUDITED[code]
        await record_event(
            self.db,
            None,
            "click.refused",
            actor=who.user,
            message=reason,
            data={"report": payload.action, "chat_id": payload.chat_id, "reason": reason},
            trace_id=trace_id,
        )
        raise ReportRefused(code)

    async def apply(
        self, payload: ReportConfirm, user: str, trace_id: str | None, *, message_id: str = ""
    ) -> Applied:
        """Apply a confirmed suggestion (`confirm` checked the chat, expiry and permission);
        ValueError (SilenceError) when its parameters do not read. `message_id`: the card
        clicked, which shows a silence request when one needs another approver."""
        params, done = dict(payload.params), Applied()
        if payload.kind == "silence":
            matcher = str(params.get("matcher", ""))
            terms = parse_matcher(matcher)
            duration = parse_duration(str(params.get("duration", "")))
            # the same rule, gate and card as /silence (a broad or long one waits for another
            # approver)
            asked = await self.silencing.ask(
                chat_id=payload.chat_id,
                matcher=matcher,
                terms=terms,
                duration=duration,
                reason=self.say("report.reason"),
                by=user,
            )
            silence = asked.silence
            request = None
            if asked.gate is not None:
                request = self.silencing.card(silence, self.say, asked.gate)
                await self.silencing.shown(silence, message_id)
            done = Applied(silence.id, silence.ends_at, request)
        elif payload.kind == "dedupe":
            minutes = int(params.get("minutes", 0))
            if not 1 <= minutes <= 7 * 24 * 60:
                raise ValueError(f"a dedupe window of {minutes} minutes is out of range")
            await advice.set_dedupe_window(
                self.db,
                payload.fingerprint,
                minutes,
                chat_id=payload.chat_id,
                created_by=user,
                reason=self.say("report.reason"),
            )
        elif payload.kind not in ("runbook", "threshold"):
            raise ValueError(f"unknown suggestion {payload.kind!r}")
        await record_event(
            self.db,
            None,
            "report.applied" if payload.kind in ("silence", "dedupe") else "report.posted",
            actor=user,
            message=f"{payload.kind}: {payload.alertname}",
            data={
                "chat_id": payload.chat_id,
                "kind": payload.kind,
                "fingerprint": payload.fingerprint,
                "params": params,
                "silence_id": done.silence_id,
            },
            trace_id=trace_id,
        )
        return done

    def _covered(self, facts_of: FingerprintFacts) -> bool:
        assert self.book is not None
        alert = AlertContext(facts_of.alertname, "warning", facts_of.labels, {}, facts_of.service)
        return self.book.match(alert) is not None

    async def _words(self, facts: HygieneFacts, found: list[Suggestion]) -> str | None:
        if self.guard is None:
            return None
        document = {
            "window_hours": round((facts.until - facts.since).total_seconds() / 3600),
            "alerts": facts.alerts,
            "incidents": facts.incidents,
            "mtta_median_seconds": facts.mtta.median,
            "mttr_median_seconds": facts.mttr.median,
            "approvals_timed_out": facts.approvals_expired,
            "auto_fixes": facts.auto_fixes,
            "auto_fix_success_rate": facts.auto_fix_rate,
            "noisiest": [{"alert": f.alertname, "alerts": f.alerts} for f in facts.noisy],
            "failing_jobs": [j.task for j in facts.failing_jobs],
            "suggestions": [{"kind": s.kind, "alert": s.alertname} for s in found],
        }
        return await word_report(self.guard, self.scrub, document, language=self.say.language)
