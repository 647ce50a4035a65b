"""Incident and list cards: snapshots of every state in both languages, and the promises behind
them (buttons send back exactly the signed value, times in the chat's zone, hostile alert text
neither mentions anyone nor links anywhere nor pushes the card past Lark's 30 KB).

Regenerate snapshots after an intended change with `UPDATE_SNAPSHOTS=1 .venv/bin/pytest
tests/unit/test_cards.py` and review the diff; without it a missing snapshot fails.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.lark.events import card_text
from bot.sandbox.cardcheck import card_problem
from cards.chat import AnswerView, answer_card
from cards.incident import incident_card
from cards.lists import (
    incidents_card,
    silence_request_card,
    silences_card,
    storm_card,
    timeline_card,
)
from cards.markup import LARK_CARD_LIMIT
from cards.schedules import (
    FailureView,
    RunView,
    ScheduleView,
    edit_form_card,
    interrupted_card,
    run_card,
)
from cards.texts import Texts, texts
from cards.views import (
    DiagnosisView,
    EscalationView,
    Evidence,
    ExecutionView,
    GateView,
    Hypothesis,
    IncidentRow,
    IncidentView,
    PendingSilenceView,
    ProposalView,
    SilenceRequestView,
    SilenceView,
    StormView,
    TimelineEntry,
    VerificationView,
)

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots" / "cards"
ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 4, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
APPROVE = {"action": "approve", "run_id": "r-7", "gate": "proposal", "v": 1, "sig": "a" * 32}
REJECT = {"action": "reject", "run_id": "r-7", "gate": "proposal", "v": 1, "sig": "b" * 32}
# Tags the local sandbox renders (bot/sandbox/web/app.js) and schema 2.0 allows (`note` and `action`
# are 1.0 components: Feishu refuses them in a 2.0 card, and so does the emulator).
SANDBOX_TAGS = {"markdown", "plain_text", "div", "hr", "column_set", "column", "button"}

NEW = IncidentView(
    id=42,
    title="HighCPU on db-1",
    severity="warning",
    status="open",
    service="orders-db",
    source="alertmanager",
    labels={"alertname": "HighCPU", "instance": "db-1:9100", "job": "node", "env": "prod"},
    summary="CPU usage above 95% for 10 minutes.",
    alert_count=3,
    first_seen=T0,
    last_seen=T0 + timedelta(minutes=12, seconds=10),
)
DIAGNOSIS = DiagnosisView(
    summary="The orders-db host is saturated by a runaway vacuum.",
    hypotheses=(
        Hypothesis("autovacuum on a bloated table", 0.8),
        Hypothesis("noisy neighbour", 0.15),
    ),
    evidence=(
        Evidence("http_check", "GET https://db-1/health -> 200 in 950 ms"),
        Evidence("command:top", "postgres: autovacuum worker 97% CPU"),
    ),
    next_checks=("pg_stat_activity for long transactions", "disk latency on db-1"),
    provider="rules",
)
PROPOSAL = ProposalView(
    plugin="command",
    title="Restart the orders-db service",
    params={"template": "restart_service", "args": {"service": "orders-db"}},
    steps=("systemctl restart orders-db", "wait for the health check"),
    risk="medium",
    decision="approve",
    reason="medium risk needs one approver.",
)
GATE = GateView(
    gate="proposal",
    status="pending",
    expires_at=T0 + timedelta(minutes=30),
    approve_value=APPROVE,
    reject_value=REJECT,
)
DECIDED = T0 + timedelta(minutes=14)
OK_RUN = ExecutionView(
    plugin="command",
    ok=True,
    summary="exit 0",
    output="● orders-db.service - Orders DB\n   Active: active (running)",
    dry_run=False,
    finished_at=T0 + timedelta(minutes=15),
)
PROPOSED = replace(
    NEW, status="awaiting_approval", diagnosis=DIAGNOSIS, proposal=PROPOSAL, gate=GATE
)
APPROVED = replace(
    PROPOSED,
    status="remediating",
    gate=replace(GATE, status="approved", approvers=("ou_alice",), decided_at=DECIDED),
)
EXECUTED = replace(APPROVED, execution=OK_RUN)  # remediating still, until verified
VERIFIED = replace(
    EXECUTED, verification=VerificationView(ok=True, summary="health check 200 in 40 ms")
)
RESOLVED = replace(
    VERIFIED,
    status="resolved",
    resolved_by="ou_bob",
    resolved_note="Vacuum tuned; ticket DB-118.",
)

STATES: dict[str, IncidentView] = {
    "new": NEW,
    "diagnosed-pending-gate": replace(
        NEW,
        status="awaiting_approval",
        diagnosis=replace(DIAGNOSIS, partial=True),
        gate=replace(GATE, gate="diagnosis"),
    ),
    "proposal-auto": replace(
        NEW,
        status="remediating",
        diagnosis=DIAGNOSIS,
        proposal=replace(PROPOSAL, risk="low", decision="auto", reason="low risk runs itself."),
    ),
    "proposal-approve-pending": PROPOSED,
    "proposal-refused": replace(
        NEW,
        status="escalated",
        diagnosis=DIAGNOSIS,
        proposal=replace(PROPOSAL, decision="refuse", reason="quota exceeded: 3 runs this hour."),
        escalation=EscalationView("the fix was refused by policy", ("ou_carol",)),
    ),
    "approved": APPROVED,
    "executed-ok": EXECUTED,
    "executed-failed-dry-run": replace(
        APPROVED,
        status="escalated",
        proposal=replace(PROPOSAL, dry_run=True),
        execution=replace(
            OK_RUN, ok=False, summary="exit 5", output="unit not found", dry_run=True
        ),
        escalation=EscalationView("the fix failed", ("ou_carol", "ou_bob")),
    ),
    "verified": VERIFIED,
    "escalated-verification-failed": replace(
        EXECUTED,
        status="escalated",
        verification=VerificationView(ok=False, summary="still 500 after 3 tries"),
        escalation=EscalationView("verification failed", ("ou_carol",)),
    ),
    "resolved": RESOLVED,
    "rejected": replace(
        PROPOSED,
        status="open",
        gate=replace(GATE, status="rejected", approvers=("ou_bob",), decided_at=DECIDED),
    ),
    "expired": replace(
        PROPOSED,
        status="escalated",
        gate=replace(GATE, status="expired"),
        escalation=EscalationView("nobody approved in time", ("ou_carol",)),
    ),
    "critical-two-approvers": replace(
        PROPOSED,
        severity="critical",
        proposal=replace(PROPOSAL, risk="critical", reason="critical risk needs two approvers."),
        gate=replace(GATE, required=2, approvers=("ou_alice",)),
    ),
}

EVIL = "</at><at id=all></at>[click](https://evil.example) `x` &lt;at id=all&gt; <font color='red'>"
HOSTILE = replace(
    PROPOSED,
    title=EVIL * 200,
    severity="<b>" * 50,
    status="\x00\u202e" + EVIL,
    service=EVIL,
    source=EVIL,
    labels={f"{EVIL}{n}": EVIL * 20 for n in range(200)},
    summary=(EVIL + "\n```\n# heading\n") * 20_000,
    diagnosis=DiagnosisView(
        summary=EVIL * 100,
        hypotheses=tuple(Hypothesis(EVIL * 10, float("nan")) for _ in range(50)),
        evidence=tuple(Evidence(EVIL, EVIL * 10) for _ in range(500)),
        next_checks=(EVIL * 10,) * 100,
        provider=EVIL,
    ),
    proposal=ProposalView(
        plugin=EVIL,
        title=EVIL * 10,
        params={f"k{n}{EVIL}": {"nested": EVIL * 10} for n in range(100)},
        steps=(EVIL * 10,) * 100,
        risk=EVIL,
        decision=EVIL,
        reason=EVIL * 10,
    ),
    execution=replace(OK_RUN, plugin=EVIL, summary=EVIL * 10, output=("```\n" + EVIL) * 100_000),
    escalation=EscalationView(EVIL * 10, ("ou_x></at><at id=all", "ou_carol")),
    resolved_note=EVIL * 10,
    resolved_by="ou_y></at><at id=all",
)
# The same with every character three or four bytes long: the caps alone would pass 30 KB.
WIDE = "告警🔥" * 3000
WIDE_VIEW = replace(
    PROPOSED,
    title=WIDE,
    summary=WIDE,
    labels={f"标签{n}": WIDE for n in range(20)},
    diagnosis=DiagnosisView(
        summary=WIDE,
        hypotheses=tuple(Hypothesis(WIDE, 0.5) for _ in range(9)),
        evidence=tuple(Evidence(WIDE, WIDE) for _ in range(20)),
        next_checks=(WIDE,) * 20,
        provider=WIDE,
    ),
    proposal=replace(
        PROPOSAL,
        title=WIDE,
        params={f"参数{n}": WIDE for n in range(20)},
        steps=(WIDE,) * 20,
        reason=WIDE,
    ),
    execution=replace(OK_RUN, summary=WIDE, output=WIDE),
    escalation=EscalationView(WIDE, ("ou_carol",)),
    resolved_note=WIDE,
)

ENTRIES = (
    TimelineEntry(T0, "alert", "alertmanager", "HighCPU firing (×3)"),
    TimelineEntry(T0 + timedelta(minutes=2), "diagnosis", "bot", "rules: autovacuum 80%"),
    TimelineEntry(DECIDED, "approval", "ou_alice", "approved the restart"),
    TimelineEntry(T0 + timedelta(minutes=15), "execution", "bot", "command ok"),
)
ROWS = (
    IncidentRow(42, "HighCPU on db-1", "warning", "awaiting_approval", 3, T0),
    IncidentRow(43, "orders API 5xx", "critical", "escalated", 27, T0 + timedelta(minutes=5)),
    IncidentRow(44, "certificate expires in 9 days", "info", "open", 1, T0 - timedelta(days=1)),
)
SILENCES = (SilenceView(7, "alertname=DiskFull,env=staging", T0 + timedelta(hours=4), "ou_bob", 3),)
REQUEST = SilenceRequestView(
    id=8,
    matcher='alertname=~".*"',
    duration="2d",
    reason="机房迁移",
    requested_by="ou_bob",
    why=("everything", "long"),
    status="pending",
    until=T0 + timedelta(days=2),
    ttl_hours=24,
)
# requests awaiting another approver, on /silences (the empty matcher matches every alert)
PENDING = (PendingSilenceView(9, "{}", "2h", "ou_carol", T0 + timedelta(hours=24)),)
REQUEST_BUTTONS = {"approve_value": {"action": "approve"}, "reject_value": {"action": "reject"}}
STORM = StormView(
    window_seconds=60,
    total=212,
    groups=(("f1", "NodeDown", 150), ("f2", "HighCPU on db-1", 60), ("f3", "Ping loss", 2)),
    incident_ids={"f1": 50},
)

# a scheduled checks job's run: each check as the plugin's own line and its coded finding
RUN = RunView(
    schedule_id=3,
    task="检查 db-2 的端口",
    fire_time=T0,
    ok=False,
    summary="❌ 2/3",
    lines=(
        "❌ tcp_check: 127.0.0.1:5432: connection refused (nothing listens on that port)",
        "✅ dns_resolve: db-2 resolves to 10.0.0.7 (1.2 ms)",
        "command: not a diagnostic plugin",
    ),
    findings=(
        {
            "code": "tcp_failed",
            "values": {"target": "127.0.0.1:5432", "reason": "connection refused"},
            "plugin": "tcp_check",
            "ok": False,
        },
        {
            "code": "dns_ok",
            "values": {"name": "db-2", "addresses": "10.0.0.7", "ms": "1.2"},
            "plugin": "dns_resolve",
            "ok": True,
        },
        {"code": "not_diagnostic", "values": {}, "plugin": "command"},
    ),
)

# a failed run whose error is recognised (a timeout), one whose error is not (its first line
# is the tool's own words), and a model job whose model gave no answer (the agent's reason)
RUN_TIMEOUT = replace(RUN, analysis=FailureView("timeout"))
RUN_UNKNOWN = replace(RUN, analysis=FailureView("unknown", "exit status 3: widget jammed"))
RUN_NO_ANSWER = RunView(
    schedule_id=5,
    task="看看 checkout 服务为什么变慢",
    fire_time=T0,
    ok=False,
    summary="the step limit (6) was reached",
    outcome={"code": "model_no_answer", "values": {"detail": "the step limit (6) was reached"}},
)

# a run cut off by its replica's death, not run again (taken over once already)
JOB = ScheduleView(
    id=5,
    task="每天巡检 db-2",
    rule="每天 09:00",
    timezone="Asia/Shanghai",
    next_runs=(),
    action="host_load",
    status="active",
    created_by="ou_alice",
)

Render = Callable[[Texts], dict[str, Any]]


def incident(view: IncidentView) -> Render:
    return lambda say: incident_card(view, say, ZONE)


CARDS: dict[str, Render] = {
    **{f"incident-{name}": incident(view) for name, view in STATES.items()},
    "storm": lambda say: storm_card(STORM, say, ZONE),
    "schedule-run-checks": lambda say: run_card(RUN, "Asia/Shanghai", say),
    "schedule-run-timeout": lambda say: run_card(RUN_TIMEOUT, "Asia/Shanghai", say),
    "schedule-run-unknown-error": lambda say: run_card(RUN_UNKNOWN, "Asia/Shanghai", say),
    "schedule-run-model-no-answer": lambda say: run_card(RUN_NO_ANSWER, "Asia/Shanghai", say),
    "schedule-run-interrupted": lambda say: interrupted_card(JOB, T0, "rerun_once", say),
    "timeline": lambda say: timeline_card(RESOLVED, ENTRIES, say, ZONE),
    "timeline-empty": lambda say: timeline_card(NEW, (), say, ZONE),
    "incidents": lambda say: incidents_card(ROWS, "Open incidents", say, ZONE),
    "incidents-empty": lambda say: incidents_card((), "Open incidents", say, ZONE),
    "silences": lambda say: silences_card(SILENCES, say, ZONE),
    "silences-empty": lambda say: silences_card((), say, ZONE),
    "silences-with-requests": lambda say: silences_card(SILENCES, say, ZONE, pending=PENDING),
    "silence-request": lambda say: silence_request_card(REQUEST, say, ZONE, REQUEST_BUTTONS),
    **{
        f"silence-request-{status}": (
            lambda say, status=status: silence_request_card(
                replace(REQUEST, status=status, decided_by="ou_carol"), say, ZONE
            )
        )
        for status in ("active", "rejected", "expired")
    },
}


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every element (dict with a tag) of a card, depth first."""
    if isinstance(node, dict):
        if "tag" in node:
            yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def sent_size(card: dict[str, Any]) -> int:
    """Bytes of the card as the `content` string of a message (JSON inside JSON)."""
    return len(json.dumps(json.dumps(card, ensure_ascii=False), ensure_ascii=False).encode())


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [element for element in walk(card["body"]) if element["tag"] == "button"]


def marked(card: dict[str, Any]) -> str:
    """The markdown of a card (where links, mentions and code spans render); plain_text fields
    (header, button labels) render nothing."""
    return "\n".join(e["content"] for e in walk(card["body"]) if e["tag"] == "markdown")


def shown(card: dict[str, Any]) -> str:
    """All the text a reader sees, header included."""
    header = card["header"]
    parts = [header["title"]["content"], header.get("subtitle", {}).get("content", "")]
    parts += [e["content"] for e in walk(card["body"]) if isinstance(e.get("content"), str)]
    parts += [e["text"]["content"] for e in walk(card["body"]) if e["tag"] == "button"]
    return "\n".join(parts)


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(CARDS))
def test_card_matches_snapshot(name: str, language: str) -> None:
    card = CARDS[name](texts(language))
    path = SNAPSHOTS / f"{name}.{language}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}; run with UPDATE_SNAPSHOTS=1 and review it"
    assert card == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(CARDS))
def test_cards_are_shared_json2_with_only_tags_the_sandbox_renders(
    name: str, language: str
) -> None:
    card = CARDS[name](texts(language))
    assert card["schema"] == "2.0"
    assert card["config"] == {"update_multi": True}
    assert card["header"]["title"]["tag"] == "plain_text"
    assert {element["tag"] for element in walk(card["body"])} <= SANDBOX_TAGS
    assert sent_size(card) < LARK_CARD_LIMIT
    assert card_problem(card) is None  # what real Feishu (and the strict emulator) accepts


def test_pending_gate_buttons_send_back_exactly_the_given_values() -> None:
    card = incident_card(PROPOSED, texts("en"), ZONE)
    found = buttons(card)
    assert [b["behaviors"] for b in found] == [
        [{"type": "callback", "value": APPROVE}],
        [{"type": "callback", "value": REJECT}],
    ]
    assert [(b["text"]["content"], b["type"]) for b in found] == [
        ("Approve", "primary"),
        ("Reject", "danger"),
    ]


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in STATES
        if n not in {"diagnosed-pending-gate", "proposal-approve-pending", "critical-two-approvers"}
    ],
)
def test_only_pending_gates_have_buttons(name: str) -> None:
    assert buttons(incident_card(STATES[name], texts("zh"), ZONE)) == []


def test_pending_gate_without_values_shows_no_buttons() -> None:
    view = replace(PROPOSED, gate=replace(GATE, approve_value=None, reject_value=None))
    assert buttons(incident_card(view, texts("en"), ZONE)) == []


def test_times_are_in_the_chat_zone() -> None:
    text = shown(incident_card(PROPOSED, texts("en"), ZONE))
    assert "First seen** 2025-03-04 09:30:00" in text
    assert "Last seen** 2025-03-04 09:42:10" in text
    assert "Decide before 10:00" in text
    assert "Decide before 02:00" in shown(incident_card(PROPOSED, texts("en"), ZoneInfo("UTC")))


def test_two_approver_gate_counts_and_names_who_approved() -> None:
    text = shown(incident_card(STATES["critical-two-approvers"], texts("zh"), ZONE))
    assert "需要 2 位审批人（1/2）" in text
    assert "已批准：<at id=ou_alice></at>" in text
    assert "Needs" not in text


def test_decisions_name_the_people_and_the_time() -> None:
    approved = shown(incident_card(STATES["approved"], texts("en"), ZONE))
    assert "Approved by <at id=ou_alice></at> (03-04 09:44)" in approved
    rejected = shown(incident_card(STATES["rejected"], texts("zh"), ZONE))
    assert "<at id=ou_bob></at> 已拒绝（03-04 09:44）" in rejected
    expired = shown(incident_card(STATES["expired"], texts("en"), ZONE))
    assert "expired at 03-04 10:00" in expired


def test_header_colour_and_words_follow_severity_and_status() -> None:
    def header(view: IncidentView, language: str = "en") -> tuple[str, str, str]:
        h = incident_card(view, texts(language), ZONE)["header"]
        return h["title"]["content"], h["subtitle"]["content"], h["template"]

    assert header(NEW) == ("#42 HighCPU on db-1", "Warning · Open", "orange")
    assert header(replace(NEW, severity="critical"), "zh") == (
        "#42 HighCPU on db-1",
        "严重 · 待处理",
        "red",
    )
    assert header(replace(NEW, severity="info"))[2] == "blue"
    assert header(RESOLVED)[2] == "green"
    assert header(STATES["expired"])[2] == "red"
    assert header(STATES["rejected"])[2] == "grey"
    assert header(replace(NEW, severity="P5", status="snoozed")) == (
        "#42 HighCPU on db-1",
        "P5 · snoozed",
        "orange",
    )


def test_diagnosis_shows_confidence_evidence_sources_and_partial_note() -> None:
    text = shown(incident_card(STATES["diagnosed-pending-gate"], texts("en"), ZONE))
    assert "autovacuum on a bloated table (80%)" in text
    assert "noisy neighbour (15%)" in text
    assert "command:top: `postgres: autovacuum worker 97% CPU`" in text  # the tool's own words
    assert "Partial diagnosis" in text


def test_execution_output_is_a_code_block_and_dry_runs_say_so() -> None:
    card = incident_card(STATES["executed-failed-dry-run"], texts("en"), ZONE)
    text = shown(card)
    assert "```\nunit not found\n```" in text
    assert "failed" in text
    assert "Dry run: nothing is changed" in text


def test_hostile_text_neither_mentions_nor_links_nor_breaks_the_card() -> None:
    card = incident_card(HOSTILE, texts("zh"), ZONE)
    assert sent_size(card) < LARK_CARD_LIMIT
    text = shown(card)
    # the only tags are the mention of the one valid open_id
    assert re.findall(r"<[^>]*>", text) == ["<at id=ou_carol>", "</at>"]
    outside_code = re.sub(r"```\n.*?\n```", "", marked(card), flags=re.DOTALL)
    assert "[" not in outside_code  # no link; inside the code block links do not render
    assert "&lt;" not in marked(card)  # an entity in the text shows as typed (&#38;lt;)
    assert "id=all" in text  # still readable as data
    assert "\x00" not in json.dumps(card)
    assert "\u202e" not in text
    assert len(card["header"]["title"]["content"]) <= 160
    code = [e["content"] for e in walk(card["body"]) if str(e.get("content", "")).startswith("```")]
    assert len(code) == 1
    assert code[0].count("```") == 2  # the output cannot close its fence early
    assert buttons(card)
    assert [b["behaviors"][0]["value"] for b in buttons(card)] == [
        APPROVE,
        REJECT,
    ]


def test_tables_in_model_and_alert_text_do_not_get_the_card_refused() -> None:
    """Models answer with markdown tables and forwarders paste them into alerts; Feishu draws
    at most 5 tables in a card and refuses the whole card above (230099 / 11310 "card table
    number over limit"). Untrusted text draws none: its `|` shows as itself."""
    table = "| host | p99 |\n|------|----:|\n| db-1 | 870ms |"
    answer = answer_card(AnswerView(text="\n\n".join([table] * 8), done=True), texts("en"))
    alert = incident_card(replace(NEW, summary="\n".join(["|a|b|\n|-|-|"] * 6)), texts("en"), ZONE)
    for card in (answer, alert):
        assert card_problem(card) is None
    assert "| host | p99 |" in card_text(answer)  # what a reader of the card sees


def test_wide_characters_are_trimmed_to_fit_but_buttons_and_fences_survive() -> None:
    card = incident_card(WIDE_VIEW, texts("en"), ZONE)
    assert sent_size(card) < LARK_CARD_LIMIT
    assert [b["behaviors"][0]["value"] for b in buttons(card)] == [APPROVE, REJECT]
    code = [e["content"] for e in walk(card["body"]) if str(e.get("content", "")).startswith("```")]
    assert len(code) == 1
    assert code[0].endswith("\n```")


def test_lists_are_capped_and_say_how_many_were_left_out() -> None:
    many = tuple(replace(ROWS[0], id=n) for n in range(100))
    text = shown(incidents_card(many, "Open", texts("en"), ZONE))
    assert "#29 " in text
    assert "#30 " not in text
    assert "…and 70 more" in text
    entries = tuple(
        replace(ENTRIES[0], at=T0 + timedelta(minutes=n), message=f"m{n}") for n in range(100)
    )
    timeline = shown(timeline_card(NEW, entries, texts("zh"), ZONE))
    assert "省略了更早的 60 条" in timeline
    assert "m99" in timeline
    assert "m59" not in timeline


def test_storm_names_groups_and_their_incidents() -> None:
    text = shown(storm_card(STORM, texts("en"), ZONE))
    assert "212 alerts in 60 s, folded into 3 groups." in text
    assert "×150 NodeDown (#50)" in text
    assert "×60 HighCPU on db-1\n" in text


def test_timeline_mentions_people_and_keeps_bot_names_as_text() -> None:
    text = shown(timeline_card(RESOLVED, ENTRIES, texts("en"), ZONE))
    assert "09:44:00 · approval · <at id=ou_alice></at>: approved the restart" in text
    assert "09:32:00 · diagnosis · bot: rules: autovacuum 80%" in text


def test_normal_text_is_escaped_for_markdown_not_disfigured() -> None:
    view = replace(NEW, title="[FIRING:1] CPU -> db-1", summary="load [5m] -> 97% <b>")
    card = incident_card(view, texts("zh"), ZONE)
    assert card["header"]["title"]["content"] == "#42 [FIRING:1] CPU -> db-1"
    assert "&#91;5m&#93; -&#62; 97% &#60;b&#62;" in marked(card)  # the documented escapes
    assert "［" not in json.dumps(card, ensure_ascii=False)
    assert "-＞" not in json.dumps(card, ensure_ascii=False)
    assert "load [5m] -> 97% <b>" in card_text(card)  # what a reader of the card sees


def test_a_checks_run_words_each_check_in_the_chat_language() -> None:
    zh = marked(run_card(RUN, "Asia/Shanghai", texts("zh")))
    assert "❌ `tcp_check`：`127.0.0.1:5432` 无法连接：`connection refused`" in zh
    assert "✅ `dns_resolve`：`db-2` 解析为 `10.0.0.7`（1.2 ms）" in zh
    assert "❌ `command`：不是诊断插件，未执行" in zh
    en = marked(run_card(RUN, "Asia/Shanghai", texts("en")))
    assert "✅ `dns_resolve`: `db-2` resolves to `10.0.0.7` (1.2 ms)" in en


def test_the_edit_form_starts_with_the_words_as_written() -> None:
    """An input holds plain text (no markdown): the form starts with the schedule's own words,
    not their markdown escapes (saving the form unchanged would store `&#91;prod&#93;`)."""
    job = replace(JOB, task="备份 [prod] a|b & `x` <at id=all>", source_text="每天 09:00 [工作日]")
    form = edit_form_card(job, texts("zh"), submit_value={"v": 1})["body"]["elements"][0]
    values = [e["default_value"] for e in form["elements"] if e["tag"] == "input"]
    assert values == ["每天 09:00 [工作日]", "备份 [prod] a|b & `x` ＜at id=all>"]
