"""The cards of issue 20: a council's diagnosis and `/ask`, a job run with its history, and the
`/job` trend — snapshots in both languages, what Feishu accepts (`cardcheck`), the fold-outs,
relative times, and hostile model text that neither mentions nor links.

Regenerate snapshots after an intended change with `UPDATE_SNAPSHOTS=1 .venv/bin/pytest
tests/unit/test_council_cards.py` and review the diff."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.sandbox.cardcheck import card_problem
from cards.council import ask_card, council_view
from cards.incident import incident_card
from cards.markup import LARK_CARD_LIMIT
from cards.schedules import (
    FailureView,
    PastRunView,
    RunMemoryView,
    RunView,
    ScheduleView,
    TrendView,
    job_card,
    run_card,
)
from cards.texts import Texts, texts
from cards.views import DiagnosisView, IncidentView

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots" / "cards"
ZONE = "Asia/Shanghai"
NOW = datetime(2025, 3, 4, 1, 30, tzinfo=UTC)  # a Tuesday, 09:30 in Shanghai
COUNCIL = {
    "agreement": 2 / 3,
    "answered": 2,
    "asked": 3,
    "hypotheses": [
        {
            "cause": "disk full on db-1",
            "confidence": 0.567,
            "support": ["gpt", "claude"],
            "against": [],
        },
        {
            "cause": "network partition",
            "confidence": 0.2,
            "support": ["claude"],
            "against": ["gpt"],
        },
    ],
    "members": [
        {
            "name": "gpt",
            "model": "gpt-4o-mini",
            "status": "answered",
            "latency_ms": 2300,
            "tokens_in": 1200,
            "tokens_out": 180,
            "cost_usd": 0.00029,
            "summary": "The disk of db-1 is full.",
            "hypotheses": [["disk full on db-1", 0.9]],
        },
        {
            "name": "claude",
            "model": "claude-3-5-haiku",
            "status": "answered",
            "latency_ms": 3100,
            "tokens_in": 1300,
            "tokens_out": 220,
            "cost_usd": 0.0021,
            "summary": "db-1 ran out of disk; maybe the network too.",
            "hypotheses": [["db-1 disk is full", 0.8], ["network partition", 0.6]],
        },
        {
            "name": "qwen",
            "model": "qwen2.5:7b",
            "status": "timed_out",
            "latency_ms": 0,
            "error": "",
        },
    ],
}


def incident(council: dict[str, Any]) -> Callable[[Texts], dict[str, Any]]:
    view = IncidentView(
        id=42,
        title="DiskFull on db-1",
        severity="critical",
        status="awaiting_approval",
        service="orders-db",
        source="alertmanager",
        labels={"instance": "db-1"},
        summary="disk 99%",
        alert_count=1,
        first_seen=NOW,
        last_seen=NOW,
        diagnosis=DiagnosisView(
            summary="The disk of db-1 is full.",
            hypotheses=(),
            evidence=(),
            next_checks=("df -h on db-1",),
            provider="council",
            partial=True,
            council=council_view(council),
        ),
    )
    return lambda say: incident_card(view, say, ZoneInfo(ZONE))


SCHEDULE = ScheduleView(
    id=3,
    task="检查 db-2 的 CPU",
    rule="每天 09:00",
    timezone=ZONE,
    next_runs=(NOW + timedelta(days=1),),
    action="host_load",
    status="active",
    created_by="ou_alice",
)
FAILED = RunView(
    schedule_id=3,
    task="检查 db-2 的 CPU",
    fire_time=NOW,
    ok=False,
    summary="部分检查未通过。",
    lines=("❌ host_load: load 9.5 on db-2",),
    analysis=FailureView("server_error"),
    memory=RunMemoryView(
        streak=3,
        seen=(
            PastRunView(NOW - timedelta(days=7), "host_load: load 8.7 on db-2", ("db-2",)),
            PastRunView(NOW - timedelta(days=1), "host_load: load 9.1 on db-2", ("db-2",)),
        ),
        similar_failures=(
            PastRunView(
                NOW - timedelta(days=20),
                "host_load: load 12 on db-3",
                ("db-3",),
                similarity=0.81,
                recovered_at=NOW - timedelta(days=19),
                fix="command restart_service service=reporting",
            ),
        ),
    ),
)
RECOVERED = replace(
    FAILED,
    ok=True,
    summary="全部检查通过。",
    lines=(),
    analysis=None,
    memory=RunMemoryView(streak=3),
)
TREND = tuple(TrendView(ok, seconds) for ok, seconds in [(True, 1.0), (False, 4.0), (False, None)])

CARDS: dict[str, Callable[[Texts], dict[str, Any]]] = {
    "council-diagnosis": incident(COUNCIL),
    "council-ask-pending": lambda say: ask_card(
        "为什么 db-1 很慢", ["gpt", "claude", "qwen"], None, say, seconds=60
    ),
    "council-ask-answered": lambda say: ask_card(
        "为什么 db-1 很慢",
        ["gpt", "claude", "qwen"],
        council_view(COUNCIL),
        say,
        seconds=60,
        summary="The disk of db-1 is full.",
    ),
    "job-run-remembered": lambda say: run_card(FAILED, ZONE, say),
    "job-run-recovered": lambda say: run_card(RECOVERED, ZONE, say),
    "job-trend": lambda say: job_card(SCHEDULE, say, [], TREND),
}


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(CARDS))
def test_card_matches_snapshot_and_feishu_accepts_it(name: str, language: str) -> None:
    card = CARDS[name](texts(language))
    assert card_problem(card) is None
    assert len(json.dumps(json.dumps(card, ensure_ascii=False)).encode()) < LARK_CARD_LIMIT
    path = SNAPSHOTS / f"{name}.{language}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}; run with UPDATE_SNAPSHOTS=1 and review it"
    assert card == json.loads(path.read_text(encoding="utf-8"))


def shown(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


def test_the_council_shows_support_disagreement_and_one_fold_per_model() -> None:
    card = CARDS["council-diagnosis"](texts("zh"))
    text = shown(card)
    assert "2/3 个模型作答，一致度 67%" in text
    assert "disk full on db-1（57%）— 支持：gpt、claude" in text
    assert "network partition（20%）— 支持：claude；不认同：gpt" in text
    assert "模型之间有 1 处分歧" in text
    panels = [e for e in card["body"]["elements"] if e["tag"] == "collapsible_panel"]
    titles = [p["header"]["title"]["content"] for p in panels]
    assert titles == [
        "gpt（gpt-4o-mini）：已作答",
        "claude（claude-3-5-haiku）：已作答",
        "qwen（qwen2.5:7b）：超时未答",
    ]
    assert "用时 2.3 秒 · 令牌 输入 1200 / 输出 180 · 约 $0.0003" in shown(panels[0])


def test_a_run_card_says_which_failure_in_a_row_and_when_it_was_seen_before() -> None:
    text = shown(CARDS["job-run-remembered"](texts("zh")))
    assert "第3次连续失败" in text
    assert "上周二 09:30 db-2 也出现过：host_load: load 8.7 on db-2" in text
    assert "昨天 09:30 db-2 也出现过" in text
    assert (
        "2025-02-12 09:30（相似度 81%）：host_load: load 12 on db-3 — 2025-02-13 09:30 已恢复"
        in text
    )
    assert "相似事件当时的处理：command restart_service service=reporting" in text
    english = shown(CARDS["job-run-remembered"](texts("en")))
    assert "last Tue 09:30 db-2 too: host_load" in english
    assert "Failure 3 in a row" in english
    assert "此前连续失败 3 次，本次已恢复" in shown(CARDS["job-run-recovered"](texts("zh")))


def test_the_job_card_shows_the_trend_of_its_latest_runs() -> None:
    text = shown(CARDS["job-trend"](texts("zh")))
    assert "（最近 3 次）：✅❌❌　成功率 33%" in text
    assert "用时：▁█ （最长 4.0 秒）" in text


def test_hostile_model_text_neither_mentions_nor_links() -> None:
    evil = "<at id=all></at> [x](https://evil.example) **bold**"
    council = {
        **COUNCIL,
        "members": [
            {**m, "summary": evil, "name": evil, "error": evil} for m in COUNCIL["members"]
        ],
        "hypotheses": [{"cause": evil, "confidence": 1, "support": [evil], "against": []}],
    }
    for language in ("zh", "en"):
        card = incident(council)(texts(language))
        assert card_problem(card) is None
        assert "<at id=all>" not in shown(card)
        assert "](https://evil.example)" not in shown(card)
