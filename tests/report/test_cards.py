"""The report's cards: snapshots in both languages, and the promises behind them (buttons carry
exactly the signed value, hostile alert text stays inert, the bot is honest about what it can
change, under Lark's 30 KB).

Regenerate after an intended change with `UPDATE_SNAPSHOTS=1` and review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cards.markup import LARK_CARD_LIMIT
from cards.report import (
    JobRow,
    NoisyRow,
    ReportView,
    SuggestionRow,
    applied_card,
    confirm_card,
    report_card,
    span,
)
from cards.texts import Texts, texts
from tests.unit.test_cards import (
    SANDBOX_TAGS,
    SNAPSHOTS,
    buttons,
    marked,
    sent_size,
    shown,
    walk,
)
from workflows.hygiene import runbook_yaml, threshold_yaml

ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
SIGNED = {"action": "report.suggest", "v": 1, "sig": "s" * 32}
CONFIRM = {"action": "report.confirm", "v": 1, "sig": "c" * 32}
CANCEL = {"action": "report.cancel", "v": 1, "sig": "x" * 32}

SILENCE = SuggestionRow(
    "silence",
    "NoisyProbe",
    "fp-d",
    "unhandled",
    30,
    {"matcher": "alertname=NoisyProbe,instance=probe-1", "duration": "24h"},
    value={**SIGNED, "kind": "silence"},
)
DEDUPE = SuggestionRow(
    "dedupe", "QueueLag", "fp-c", "stale_repeats", 3, {"minutes": 420}, value=SIGNED
)
THRESHOLD = SuggestionRow(
    "threshold",
    "DiskFull",
    "fp-a",
    "flapping",
    3,
    {"for": "5m"},
    value=SIGNED,
    snippet=threshold_yaml("DiskFull", "5m"),
)
RUNBOOK = SuggestionRow(
    "runbook",
    "CertExpiry",
    "fp-e",
    "no_runbook",
    3,
    {"key": "alertname", "value": "CertExpiry"},
    value=SIGNED,
    snippet=runbook_yaml("alertname", "CertExpiry"),
)
WEEK = ReportView(
    hours=168,
    alerts=52,
    firing=49,
    incidents=13,
    mtta=(300.0, 750.0, 6),
    mttr=(1800.0, 4680.0, 8),
    approvals_expired=2,
    auto_fixes=4,
    auto_fix_rate=2 / 3,
    noisy=(
        NoisyRow("NoisyProbe", None, 30, 0),
        NoisyRow("QueueLag", None, 10, 4),
        NoisyRow("DiskFull", "db", 6, 3),
    ),
    flapping=(("DiskFull", 3),),
    jobs=(JobRow(3, "检查磁盘", 2, "connection refused"),),
    suggestions=(THRESHOLD, SILENCE, DEDUPE, RUNBOOK),
)

Render = Callable[[Texts], dict[str, Any]]
CARDS: dict[str, Render] = {
    "report-week": lambda say: report_card(WEEK, say, ZONE),
    "report-quiet": lambda say: report_card(ReportView(hours=24), say, ZONE),
    "report-worded": lambda say: report_card(
        ReportView(hours=72, alerts=3, firing=3, incidents=1, summary="A calm week."), say, ZONE
    ),
    "report-confirm-silence": lambda say: confirm_card(
        SILENCE, say, confirm_value=CONFIRM, cancel_value=CANCEL
    ),
    "report-confirm-runbook": lambda say: confirm_card(
        RUNBOOK, say, confirm_value=CONFIRM, cancel_value=CANCEL
    ),
    "report-applied-silence": lambda say: applied_card(
        SILENCE, say, ZONE, person="ou_bob", silence_id=12, until=T0
    ),
    "report-applied-dedupe": lambda say: applied_card(DEDUPE, say, ZONE, person="ou_bob"),
    "report-applied-threshold": lambda say: applied_card(THRESHOLD, say, ZONE, person="ou_bob"),
}


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(CARDS))
def test_card_matches_snapshot(name: str, language: str) -> None:
    card = CARDS[name](texts(language))
    path = SNAPSHOTS / f"{name}.{language}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}; run with UPDATE_SNAPSHOTS=1 and review it"
    assert card == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(CARDS))
def test_cards_are_json2_with_only_tags_the_sandbox_renders(name: str, language: str) -> None:
    card = CARDS[name](texts(language))
    assert card["schema"] == "2.0"
    assert card["config"] == {"update_multi": True}
    assert {element["tag"] for element in walk(card["body"])} <= SANDBOX_TAGS
    assert sent_size(card) < LARK_CARD_LIMIT


def test_the_week_shows_its_numbers_and_one_button_per_suggestion() -> None:
    card = report_card(WEEK, texts("zh"), ZONE)
    text = shown(card)
    for needle in ("最近 7 天", "**52**", "MTTA", "5分钟", "12分钟30秒", "30分钟", "1小时18分钟"):
        assert needle in text
    assert "审批超时 2 次" in text
    assert "成功率 67%" in text
    assert "#3 检查磁盘 · 失败 2 次 · 最近的错误：connection refused" in text
    values = [b["behaviors"][0]["value"] for b in buttons(card)]
    assert values == [row.value for row in WEEK.suggestions]
    labels = [b["text"]["content"] for b in buttons(card)]
    assert labels == [
        "阈值建议：DiskFull",
        "静默：NoisyProbe",
        "去重窗口：QueueLag",
        "手册模板：CertExpiry",
    ]
    assert "静默 1天" in text
    assert "7小时" in text
    assert "模型" not in text  # no summary, no model note


def test_the_models_words_are_marked_and_inert() -> None:
    hostile = "Quiet week <at id=all></at> [click](https://evil.example) ```"
    card = report_card(ReportView(hours=168, summary=hostile), texts("en"), ZONE)
    text = shown(card)
    assert "worded by the model" in text
    assert "<at" not in text
    assert "](" not in text


def test_hostile_alert_names_mention_nobody_and_link_nowhere() -> None:
    name = "<at id=all></at>[x](https://evil.example)" + "A" * 5000
    row = SuggestionRow("silence", name, "fp", "unhandled", 99, SILENCE.params, value=SIGNED)
    view = ReportView(hours=24, alerts=1, noisy=(NoisyRow(name, name, 1, 1),), suggestions=(row,))
    for card in (
        report_card(view, texts("zh"), ZONE),
        confirm_card(row, texts("zh"), confirm_value=CONFIRM, cancel_value=CANCEL),
    ):
        assert "<at" not in shown(card)  # nowhere, plain_text included
        assert "](" not in marked(card)  # no link where links render
        assert sent_size(card) < LARK_CARD_LIMIT


def test_confirmation_says_exactly_what_happens_and_is_honest_about_files() -> None:
    silence = shown(confirm_card(SILENCE, texts("zh"), confirm_value=CONFIRM, cancel_value=CANCEL))
    assert "alertname=NoisyProbe,instance=probe-1" in silence
    assert "1天" in silence
    card = confirm_card(RUNBOOK, texts("en"), confirm_value=CONFIRM, cancel_value=CANCEL)
    assert "cannot change configuration files" in shown(card)
    assert "match:" in shown(card)
    assert [b["behaviors"][0]["value"] for b in buttons(card)] == [CONFIRM, CANCEL]
    posted = shown(applied_card(THRESHOLD, texts("en"), ZONE, person="ou_bob"))
    assert "changed no file" in posted
    assert "for: 5m" in posted


@pytest.mark.parametrize(
    ("seconds", "zh", "en"),
    [(None, "—", "—"), (0, "0秒", "0s"), (300, "5分钟", "5m"), (5400, "1小时30分钟", "1h 30m")],
)
def test_spans(seconds: float | None, zh: str, en: str) -> None:
    assert span(seconds, texts("zh")) == zh
    assert span(seconds, texts("en")) == en
