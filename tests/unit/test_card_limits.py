"""Every card the bot can send, filled with what alerts, plugins, models and people really put
in one (`tests.support.hostile`: 10,000-character texts of mentions of strangers and everyone,
HTML, links, markdown tables, fences, emoji; hundreds of labels, results and rows), in both
languages, is one real Feishu accepts (`bot.sandbox.cardcheck`: no stranger mentioned, at most
200 elements and 5 tables, the JSON 2.0 structure, under 30 KB), mentions nobody (none of the
text is an open_id: an `<at` would be injected), and where text or a list had to be cut the
card shows the cut (…) rather than dropping it silently."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.sandbox.cardcheck import card_problem
from cards.basics import ping_card
from cards.chat import AnswerView, SuggestionView, answer_card, suggestion_card
from cards.council import ask_card
from cards.incident import incident_card
from cards.lists import (
    incidents_card,
    silence_request_card,
    silences_card,
    similar_card,
    storm_card,
    timeline_card,
)
from cards.markup import ELLIPSIS, mention
from cards.operations import (
    ActionView,
    PluginDetail,
    PluginRow,
    RunbookRow,
    action_card,
    plugin_card,
    plugins_card,
    policy_card,
    policy_check_card,
    runbooks_card,
)
from cards.paging import oncall_card, swap_card
from cards.postmortem import tasks_card
from cards.report import ReportView, SuggestionRow, applied_card, report_card
from cards.report import confirm_card as suggestion_confirm_card
from cards.roles import RolesView, roles_card
from cards.schedules import (
    AbilitiesView,
    ChoiceView,
    RunView,
    ScheduleView,
    TrendView,
    choice_card,
    confirm_card,
    edit_form_card,
    expired_choice_card,
    interrupted_card,
    job_card,
    jobs_card,
    missed_card,
    run_card,
    unable_card,
)
from cards.status import StatusView, status_card
from cards.texts import Texts, texts
from cards.views import (
    CouncilView,
    IncidentRow,
    IncidentView,
    OncallView,
    PendingSilenceView,
    SeenBefore,
    SilenceRequestView,
    SilenceView,
    StormView,
    SwapView,
    TasksView,
    TimelineEntry,
)
from tests.support.hostile import EMPTY, HOSTILE, HUGE, MOMENT, Filling

ZONE = ZoneInfo("Asia/Shanghai")
VALUE = {"action": "approve", "run_id": "r-1", "v": 1, "sig": "s" * 32}
BUTTONS = {"approve_value": VALUE, "reject_value": VALUE}
SIGNED = {f"{name}_value": VALUE for name in ("approve", "reject", "ack", "room")}  # signed
JOB = {
    "timezone": "Asia/Shanghai",
    "status": "pending",
    "last_result": "failed",
}  # codes and a zone, not text

UNCUT = {"ping"}  # cards of the bot's own words only
Render = Callable[[Texts, Filling], dict[str, Any]]

CARDS: dict[str, Render] = {
    "ping": lambda say, fill: ping_card(  # the bot's own figures; only who measured is text
        say("ping.title"),
        [say("ping.database", ms=10**9)] * 4,
        say("ping.refresh"),
        VALUE,
        say("ping.measured_by", name=mention(fill.text), time="09:30:00"),
    ),
    "answer": lambda say, fill: answer_card(fill(AnswerView), say),
    "suggestion": lambda say, fill: suggestion_card(
        fill(SuggestionView, kind="job", change="pause", outcome=""),
        say,
        zone=ZONE,
        confirm_value=VALUE,
        cancel_value=VALUE,
    ),
    "suggestion-done": lambda say, fill: suggestion_card(  # its outcome is the bot's own line
        fill(SuggestionView, outcome=say("chat.confirm.done", who=mention(fill.text))),
        say,
        zone=ZONE,
    ),
    "ask": lambda say, fill: ask_card(
        fill.text, [fill.text] * fill.many, fill(CouncilView), say, seconds=1e9, summary=fill.text
    ),
    "ask-waiting": lambda say, fill: ask_card(
        fill.text, [fill.text] * fill.many, None, say, seconds=1e9
    ),
    "incident": lambda say, fill: incident_card(fill(IncidentView, **SIGNED), say, ZONE),
    "storm": lambda say, fill: storm_card(fill(StormView), say, ZONE),
    "timeline": lambda say, fill: timeline_card(
        fill(IncidentView), fill(tuple[TimelineEntry, ...]), say, ZONE
    ),
    "incidents": lambda say, fill: incidents_card(
        fill(tuple[IncidentRow, ...]), fill.text, say, ZONE
    ),
    "silences": lambda say, fill: silences_card(
        fill(tuple[SilenceView, ...]),
        say,
        ZONE,
        ends={n: VALUE for n in range(fill.many)},
        pending=fill(tuple[PendingSilenceView, ...]),
    ),
    "silence-request": lambda say, fill: silence_request_card(
        fill(SilenceRequestView, why=("everything", "long"), status="pending"),
        say,
        ZONE,
        BUTTONS,
    ),
    "similar": lambda say, fill: similar_card(1, fill(tuple[SeenBefore, ...]), say),
    "plugins": lambda say, fill: plugins_card(
        fill(tuple[PluginRow, ...], category="diagnostic"), say
    ),
    "plugin": lambda say, fill: plugin_card(fill(PluginDetail, category="remediation"), say),
    "action": lambda say, fill: action_card(
        fill(ActionView, category="remediation", decision="approve", status="pending"),
        say,
        ZONE,
        approve_value=VALUE,
        reject_value=VALUE,
    ),
    "runbooks": lambda say, fill: runbooks_card(fill(tuple[RunbookRow, ...]), say),
    "policy": lambda say, fill: policy_card([(fill.text, fill.text)] * fill.many, say),
    "policy-check": lambda say, fill: policy_check_card(
        fill.text,
        {fill.key(n): fill.text for n in range(fill.many)},
        fill.text,
        [(fill.text, fill.text)] * fill.many,
        say,
        fill.text,
    ),
    "swap": lambda say, fill: swap_card(fill(SwapView), say, ZONE, (VALUE, VALUE)),
    "oncall": lambda say, fill: oncall_card(fill(tuple[OncallView, ...]), say, ZONE),
    "tasks": lambda say, fill: tasks_card(fill(TasksView), say, VALUE),
    "report": lambda say, fill: report_card(
        fill(ReportView, kind="runbook", value=VALUE), say, ZONE
    ),
    "report-confirm": lambda say, fill: suggestion_confirm_card(
        fill(SuggestionRow, kind="threshold"), say, confirm_value=VALUE, cancel_value=VALUE
    ),
    "report-applied": lambda say, fill: applied_card(
        fill(SuggestionRow, kind="runbook"), say, ZONE, person=fill.text, silence_id=1, until=MOMENT
    ),
    "roles": lambda say, fill: roles_card(fill(RolesView, role="approver"), say),
    "schedule-confirm": lambda say, fill: confirm_card(
        fill(ScheduleView, **JOB), say, confirm_value=VALUE, edit_value=VALUE, cancel_value=VALUE
    ),
    "schedule-choice": lambda say, fill: choice_card(
        fill.text, fill(tuple[ChoiceView, ...], value=VALUE, **JOB), say, expires_hours=10**6
    ),
    "schedule-choice-expired": lambda say, fill: expired_choice_card(fill.text, 10**6, say),
    "schedule-unable": lambda say, fill: unable_card(fill(AbilitiesView), say),
    "schedule-edit": lambda say, fill: edit_form_card(
        fill(ScheduleView, **JOB), say, submit_value=VALUE
    ),
    "job": lambda say, fill: job_card(
        fill(ScheduleView, **JOB),
        say,
        fill(tuple[RunView, ...], **JOB),
        fill(tuple[TrendView, ...]),
    ),
    "jobs": lambda say, fill: jobs_card(fill(tuple[ScheduleView, ...], **JOB), say),
    "run": lambda say, fill: run_card(fill(RunView, **JOB), "Asia/Shanghai", say),
    "missed": lambda say, fill: missed_card(fill(ScheduleView, **JOB), 10**6, True, say),
    "interrupted": lambda say, fill: interrupted_card(
        fill(ScheduleView, **JOB), MOMENT, "too_late", say
    ),
    "status": lambda say, fill: status_card(fill(StatusView), say),
}


@pytest.mark.parametrize("filling", [HOSTILE, EMPTY, HUGE], ids=lambda f: f.name)
@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(CARDS))
def test_every_card_full_of_hostile_text_is_one_feishu_accepts(
    name: str, language: str, filling: Filling
) -> None:
    card = CARDS[name](texts(language), filling)
    assert card_problem(card) is None
    sent = json.dumps(card, ensure_ascii=False)
    assert "<at " not in sent  # no text became a mention, not even of everyone
    assert "</font>" not in sent  # nor closed the bot's own colouring
    if name not in UNCUT and filling is not EMPTY:
        assert ELLIPSIS in sent  # what was cut says so
