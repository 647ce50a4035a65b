"""On-call cards and the words around them: /oncall (with escalated incidents waiting), a shift
swap, an incident card's paging and an escalation nobody on call could take, the hand-over
line, /status, a postmortem document and its action items. Each renders in both languages;
`tests/unit/test_language.py` reads every one for English on a Chinese card and Chinese on an
English one (`CARDS`, the values given being the upper-case constants here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.lark.events import card_text
from bot.sandbox.messagecheck import mentioned
from cards.basics import card, markdown
from cards.incident import incident_card
from cards.markup import inline, mention, spoken
from cards.paging import handed_over, oncall_card, page_event, swap_card
from cards.postmortem import postmortem_blocks, tasks_card
from cards.status import StatusView, status_card
from cards.texts import Texts, texts
from cards.views import (
    EscalationView,
    IncidentRow,
    IncidentView,
    OncallView,
    PageLine,
    PagingView,
    PostmortemEntry,
    PostmortemView,
    SwapView,
    TasksView,
    VerificationView,
)

ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 4, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
ACK = {"action": "ack", "incident_id": 7, "v": 1, "sig": "a" * 32}
ROOM = {"action": "warroom.open", "incident_id": 7, "v": 1, "sig": "b" * 32}
CHECK = {
    "code": "http_status",
    "values": {"target": "GET https://shop.example/health", "status": 503, "expected": 200},
}
# what the cards are given (values a chat shows as they are)
TITLE = "HighCPU on db-1"
OTHER = "DiskFull web-3"
SCHEDULE = "primary"
ESCALATED = (
    IncidentRow(7, TITLE, "critical", "escalated", 3, T0, "ou_bob"),
    IncidentRow(9, OTHER, "warning", "escalated", 1, T0),
)
HANDED = (*ESCALATED, IncidentRow(11, "QueueStuck", "info", "awaiting_approval", 1, T0))
VIEWS = (
    OncallView(
        SCHEDULE, ("ou_alice",), T0 + timedelta(hours=5), ("ou_bob",), T0 + timedelta(hours=5)
    ),
    OncallView("db", (), None, override=False),
    OncallView("night", ("ou_carol",), T0 + timedelta(hours=2), override=True),
)
SWAP = SwapView(
    SCHEDULE,
    "ou_alice",
    "ou_bob",
    (T0, T0 + timedelta(hours=8)),
    (T0 + timedelta(days=1), T0 + timedelta(days=1, hours=8)),
)
PAGING = PagingView(
    lines=(
        PageLine(1, 1, "done", T0, T0, "chat", ("ou_alice",)),
        PageLine(2, 2, "done", T0, T0, "direct", ("ou_alice",), (("urgent_app", "quota"),)),
        PageLine(3, 3, "done", T0, T0, None, (), (("urgent_phone", "nobody"),)),
        PageLine(4, 3, "pending", T0 + timedelta(minutes=5)),
        PageLine(5, 3, "cancelled", T0 + timedelta(minutes=10)),
    ),
    acknowledged_by="ou_bob",
    acknowledged_at=T0,
    ack_value=ACK,
    room_value=ROOM,
)
INCIDENT = IncidentView(
    id=7,
    title=TITLE,
    severity="critical",
    status="escalated",
    service="db",
    source="alertmanager",
    labels={"alertname": "HighCPU", "instance": "db-1"},
    summary="",
    alert_count=3,
    first_seen=T0,
    last_seen=T0,
    verification=VerificationView(False, "GET https://shop.example/health: status 503", CHECK),
    escalation=EscalationView(
        "verification failed: GET https://shop.example/health: status 503",
        ("ou_bob", "ou_carol"),
        cause="verification_failed",
        values={"summary": "GET https://shop.example/health: status 503"},
        nobody_on_call=True,
        finding=CHECK,
    ),
    paging=PAGING,
)
PAGE_SENT = {
    "level": 2,
    "channel": "direct",
    "people": ["ou_alice"],
    "refused": [{"channel": "urgent_app", "reason": "permission"}],
}
POSTMORTEM = PostmortemView(
    incident_id=7,
    title=TITLE,
    severity="critical",
    service="db",
    opened=T0,
    resolved=T0 + timedelta(minutes=42),
    acknowledged=T0 + timedelta(minutes=20),
    acknowledged_by="ou_bob",
    resolved_by="ou_carol",
    note="回滚了配置",
    alerts=3,
    timeline=(
        PostmortemEntry(T0, "incident.opened", "system", ""),
        PostmortemEntry(T0, "page.sent", "system", "", PAGE_SENT),
        PostmortemEntry(
            T0,
            "workflow.escalated",
            "system",
            "verification failed: GET https://shop.example/health: status 503",
            {
                "cause": {
                    "code": "verification_failed",
                    "values": {"summary": "GET https://shop.example/health: status 503"},
                    "finding": CHECK,
                }
            },
        ),
        PostmortemEntry(
            T0,
            "click.refused",
            "ou_alice",
            "not an approver",
            {"gate": "diagnosis", "decision": "approve", "reason": "not_approver"},
        ),
        PostmortemEntry(T0, "incident.resolved_by_hand", "ou_carol", "回滚了配置"),
    ),
    diagnosis="Runbook db: 1 of 1 checks failed.",
    hypotheses=(("Check the health endpoint failed: status 503", 0.7),),
    evidence=(("http_check", "GET https://shop.example/health: status 503"),),
    fix=("command", "restart_db failed (exit 1)"),
    verified=False,
    similar=((3, OTHER, "restart_db"),),
    actions=(
        ("check", {**CHECK, "text": "Is https://shop.example/health up?"}),
        ("runbook", TITLE),
        ("faster_ack", ""),
    ),
    codes={
        "summary": {
            "code": "runbook_checks",
            "values": {"runbook": "db", "failed": 1, "total": 1, "skipped": 0},
        },
        "hypotheses": [
            {
                "code": "step_failed",
                "values": {"step": "检查健康接口", "summary": "x"},
                "finding": CHECK,
            }
        ],
        "evidence": [CHECK],
    },
    fix_finding={"code": "command_exit", "values": {"template": "restart_db", "exit": 1}},
)
UNCODED = replace(POSTMORTEM, codes={}, fix_finding={})
TASKS = TasksView(7, TITLE, POSTMORTEM.actions, "ou_bob")


def _document(say: Texts) -> dict[str, Any]:
    """The postmortem's blocks as a card (one markdown line each), for reading its words."""
    lines = [
        "".join(
            run.get("text_run", {}).get("content", "")
            or run.get("mention_user", {}).get("user_id", "")
            for run in next(iter(v for k, v in block.items() if k != "block_type"))["elements"]
        )
        for block in postmortem_blocks(POSTMORTEM, say, ZONE)
    ]
    return card("postmortem", [markdown(line) for line in lines])


Render = Callable[[Texts], dict[str, Any]]
CARDS: dict[str, Render] = {
    "oncall": lambda say: oncall_card(VIEWS, say, ZONE),
    "oncall-escalated": lambda say: oncall_card(VIEWS, say, ZONE, ESCALATED * 6),
    **{
        f"swap-{status}": (
            lambda say, status=status: swap_card(
                replace(SWAP, status=status), say, ZONE, (ACK, ROOM)
            )
        )
        for status in ("asked", "accepted", "declined")
    },
    "incident-paged-nobody-on-call": lambda say: incident_card(INCIDENT, say, ZONE),
    "handed-over": lambda say: card("handoff", [markdown(handed_over(HANDED * 4, say))]),
    "handed-over-none": lambda say: card("handoff", [markdown(handed_over((), say))]),
    "page-event": lambda say: card("page", [markdown(page_event(PAGE_SENT, say))]),
    "status": lambda say: status_card(
        StatusView(
            "connected",
            3,
            125.0,
            "ok",
            "redis",
            "ok",
            "here",
            "pod-a:1",
            4,
            "openai",
            1200,
            2_000_000,
            5,
            2,
            "pod-a:1",
            "0.1.0",
            93_784.0,
            0,
            1,
        ),
        say,
    ),
    "postmortem": _document,
    "postmortem-tasks": lambda say: tasks_card(TASKS, say, ACK),
}


def test_oncall_lists_escalated_incidents_with_their_owner_and_how_many_more() -> None:
    shown = card_text(oncall_card(VIEWS, texts("zh"), ZONE, ESCALATED * 6))
    assert "#7 HighCPU on db-1 · 已升级 · <at id=ou_bob></at> 已认领" in shown
    assert "#9 DiskFull web-3 · 已升级 · 尚无人认领（/ack 认领）" in shown
    assert "另有 2 项" in shown  # twelve, ten shown
    english = card_text(oncall_card(VIEWS, texts("en"), ZONE, ESCALATED))
    assert "#9 DiskFull web-3 · Escalated · nobody has acknowledged it yet (/ack)" in english
    assert "Escalated and not yet resolved" not in card_text(oncall_card(VIEWS, texts("en"), ZONE))


def test_a_hand_over_names_each_incident_with_its_status() -> None:
    line = handed_over(HANDED, texts("zh"))
    assert line.endswith(
        "#7 HighCPU on db-1（已升级）、#9 DiskFull web-3（已升级）、#11 QueueStuck（等待审批）"
    )
    assert ", #11 QueueStuck (Awaiting approval)" in handed_over(HANDED, texts("en"))


def test_an_escalation_nobody_on_call_could_take_says_so_and_words_the_failed_check() -> None:
    shown = card_text(incident_card(INCIDENT, texts("zh"), ZONE))
    assert "当前无人值班，已通知审批人" in shown
    assert "修复后验证未通过：`GET https://shop.example/health` 返回 503，预期 200" in shown


def test_the_postmortem_words_its_codes_and_falls_back_to_the_stored_lines() -> None:
    shown = card_text(_document(texts("zh")))
    assert "处置手册 `db`：1 项检查中 1 项失败" in shown
    assert "修复后验证未通过" in shown
    assert "Runbook db" not in shown
    older = "\n".join(
        run.get("text_run", {}).get("content", "")
        for block in postmortem_blocks(UNCODED, texts("zh"), ZONE)
        for key, value in block.items()
        if key != "block_type"
        for run in value["elements"]
    )
    assert "Runbook db: 1 of 1 checks failed." in older  # rows from before codes: as stored


def test_a_hand_over_reads_titles_as_written_and_calls_nobody() -> None:
    """The hand-over is a text message: no escapes there (`&#91;` would show as typed) but an
    `<at user_id=…>` notifies, so a title shows its brackets and its tags stay inert."""
    title = '[FIRING:2] disk<at user_id="all"></at> a|b'
    line = handed_over((IncidentRow(3, title, "critical", "open", 1, T0),), texts("en"))
    assert '[FIRING:2] disk＜at user_id="all">＜/at> a|b' in line
    assert mentioned("text", {"text": line}, {"ou_alice", "ou_bob"}) == []


def test_worded_card_text_said_in_a_text_message_keeps_only_the_bot_mentions() -> None:
    worded = f"{mention('ou_alice')} {inline('<at id=all></at> [x] `y`', 80)} {mention('boss')}"
    said = spoken(worded)
    assert said.startswith('<at user_id="ou_alice"></at> ＜at id=all>＜/at> [x] `y` boss')
    assert mentioned("text", {"text": said}, {"ou_alice"}) == ["ou_alice"]
