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
from tests.support.hostile import EVIL, MOMENT, TEXT, hostile

ZONE = ZoneInfo("Asia/Shanghai")
VALUE = {"action": "approve", "run_id": "r-1", "v": 1, "sig": "s" * 32}
BUTTONS = {"approve_value": VALUE, "reject_value": VALUE}
MANY = 300
SIGNED = {f"{name}_value": VALUE for name in ("approve", "reject", "ack", "room")}  # signed
JOB = {
    "timezone": "Asia/Shanghai",
    "status": "pending",
    "last_result": "failed",
}  # codes and a zone, not text

UNCUT = {"ping"}  # cards of the bot's own words only
Render = Callable[[Texts], dict[str, Any]]

CARDS: dict[str, Render] = {
    "ping": lambda say: ping_card(  # the bot's own figures; only who measured is text
        say("ping.title"),
        [say("ping.database", ms=10**9)] * 4,
        say("ping.refresh"),
        VALUE,
        say("ping.measured_by", name=mention(TEXT), time="09:30:00"),
    ),
    "answer": lambda say: answer_card(hostile(AnswerView), say),
    "suggestion": lambda say: suggestion_card(
        hostile(SuggestionView, kind="job", change="pause", outcome=""),
        say,
        zone=ZONE,
        confirm_value=VALUE,
        cancel_value=VALUE,
    ),
    "suggestion-done": lambda say: suggestion_card(  # its outcome is the bot's own line
        hostile(SuggestionView, outcome=say("chat.confirm.done", who=mention(TEXT))),
        say,
        zone=ZONE,
    ),
    "ask": lambda say: ask_card(
        TEXT, [TEXT] * MANY, hostile(CouncilView), say, seconds=1e9, summary=TEXT
    ),
    "ask-waiting": lambda say: ask_card(TEXT, [TEXT] * MANY, None, say, seconds=1e9),
    "incident": lambda say: incident_card(hostile(IncidentView, **SIGNED), say, ZONE),
    "storm": lambda say: storm_card(hostile(StormView), say, ZONE),
    "timeline": lambda say: timeline_card(
        hostile(IncidentView), hostile(tuple[TimelineEntry, ...]), say, ZONE
    ),
    "incidents": lambda say: incidents_card(hostile(tuple[IncidentRow, ...]), TEXT, say, ZONE),
    "silences": lambda say: silences_card(
        hostile(tuple[SilenceView, ...]),
        say,
        ZONE,
        ends={n: VALUE for n in range(MANY)},
        pending=hostile(tuple[PendingSilenceView, ...]),
    ),
    "silence-request": lambda say: silence_request_card(
        hostile(SilenceRequestView, why=("everything", "long"), status="pending"),
        say,
        ZONE,
        BUTTONS,
    ),
    "similar": lambda say: similar_card(1, hostile(tuple[SeenBefore, ...]), say),
    "plugins": lambda say: plugins_card(hostile(tuple[PluginRow, ...], category="diagnostic"), say),
    "plugin": lambda say: plugin_card(hostile(PluginDetail, category="remediation"), say),
    "action": lambda say: action_card(
        hostile(ActionView, category="remediation", decision="approve", status="pending"),
        say,
        ZONE,
        approve_value=VALUE,
        reject_value=VALUE,
    ),
    "runbooks": lambda say: runbooks_card(hostile(tuple[RunbookRow, ...]), say),
    "policy": lambda say: policy_card([(TEXT, TEXT)] * MANY, say),
    "policy-check": lambda say: policy_check_card(
        TEXT, {f"{EVIL}{n}": TEXT for n in range(MANY)}, TEXT, [(TEXT, TEXT)] * MANY, say, TEXT
    ),
    "swap": lambda say: swap_card(hostile(SwapView), say, ZONE, (VALUE, VALUE)),
    "oncall": lambda say: oncall_card(hostile(tuple[OncallView, ...]), say, ZONE),
    "tasks": lambda say: tasks_card(hostile(TasksView), say, VALUE),
    "report": lambda say: report_card(hostile(ReportView, kind="runbook", value=VALUE), say, ZONE),
    "report-confirm": lambda say: suggestion_confirm_card(
        hostile(SuggestionRow, kind="threshold"), say, confirm_value=VALUE, cancel_value=VALUE
    ),
    "report-applied": lambda say: applied_card(
        hostile(SuggestionRow, kind="runbook"), say, ZONE, person=TEXT, silence_id=1, until=MOMENT
    ),
    "roles": lambda say: roles_card(hostile(RolesView, role="approver"), say),
    "schedule-confirm": lambda say: confirm_card(
        hostile(ScheduleView, **JOB), say, confirm_value=VALUE, edit_value=VALUE, cancel_value=VALUE
    ),
    "schedule-choice": lambda say: choice_card(
        TEXT, hostile(tuple[ChoiceView, ...], value=VALUE, **JOB), say, expires_hours=10**6
    ),
    "schedule-choice-expired": lambda say: expired_choice_card(TEXT, 10**6, say),
    "schedule-unable": lambda say: unable_card(hostile(AbilitiesView), say),
    "schedule-edit": lambda say: edit_form_card(
        hostile(ScheduleView, **JOB), say, submit_value=VALUE
    ),
    "job": lambda say: job_card(
        hostile(ScheduleView, **JOB),
        say,
        hostile(tuple[RunView, ...], **JOB),
        hostile(tuple[TrendView, ...]),
    ),
    "jobs": lambda say: jobs_card(hostile(tuple[ScheduleView, ...], **JOB), say),
    "run": lambda say: run_card(hostile(RunView, **JOB), "Asia/Shanghai", say),
    "missed": lambda say: missed_card(hostile(ScheduleView, **JOB), 10**6, True, say),
    "interrupted": lambda say: interrupted_card(
        hostile(ScheduleView, **JOB), MOMENT, "too_late", say
    ),
    "status": lambda say: status_card(hostile(StatusView), say),
}


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(CARDS))
def test_every_card_full_of_hostile_text_is_one_feishu_accepts(name: str, language: str) -> None:
    card = CARDS[name](texts(language))
    assert card_problem(card) is None
    sent = json.dumps(card, ensure_ascii=False)
    assert "<at " not in sent  # no text became a mention, not even of everyone
    if name not in UNCUT:
        assert ELLIPSIS in sent  # what was cut says so
