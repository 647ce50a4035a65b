"""What real forwarders post into a Feishu group, read as the alerts they are.

The corpus in `tests/fixtures/forwarders/` is ours, written in the shapes PrometheusAlert,
Nightingale (v5–v7), WatchAlert, alertmanager-bot, alertmanager-webhook-feishu, Grafana (legacy
and 11's default bodies), Uptime Kuma, Zabbix, SkyWalking, Tencent Cloud, Huawei Cloud CES and
Aliyun monitoring (ARMS, SLS), ElastAlert/Kibana, Graylog, OpenSearch, Nagios/Icinga, Datadog,
Sentry, Loki/Thanos rulers, Argo CD, PagerDuty-style and 睿象云-style relays, Kubernetes event
forwarders, shell scripts and home-made Chinese templates produce (text, post given as Lark
delivers its content, cards 1.0 and 2.0 as sent and as Lark delivers them, tables, bulleted
lists of alerts and JSON in a message), with messages that are no alert at all: chat, CI/CD
and deploy notices, reports. Each message lists the alerts it must yield (state, title,
severity, labels that must be there, start time); each pair says whether two alerts are the
same alert (a firing and its recovery) or not (two targets). A message that is only a title
and a line is expected to be a fallback (counted as unreadable) that still opens, and
resolves, its incident. `bench/intake_corpus.py`
scores the same corpus with `problems` and `pair_problem`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.lark.events import content_text
from workflows.intake import ParsedAlert, parse_chat_message

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "forwarders"


def forwarders() -> dict[str, dict[str, Any]]:
    """Every forwarder's corpus file, by forwarder name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(CORPUS.glob("*.json")):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        found[data["forwarder"]] = data
    return found


def messages() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, data in forwarders().items():
        for message in data["messages"]:
            yield name, message


def read(message: dict[str, Any]) -> list[ParsedAlert]:
    """The alerts of a corpus message; one given as its Lark `content` (a post as delivered)
    is read through the transport's own reading of that content."""
    text = message["text"]
    if "content" in message:
        text = content_text(message["message_type"], json.dumps(message["content"]))
    return parse_chat_message(message["message_type"], text, message["card"])


def problems(message: dict[str, Any], alerts: list[ParsedAlert]) -> list[str]:
    """What is wrong in `alerts` against the message's expected alerts (empty: all right)."""
    expected: list[dict[str, Any]] = message["alerts"]
    if len(alerts) != len(expected):
        return [f"{len(alerts)} alerts, expected {len(expected)}"]
    found: list[str] = []
    for index, (want, got) in enumerate(zip(expected, alerts, strict=True)):
        for key in ("status", "title", "severity"):
            if getattr(got, key) != want[key]:
                found.append(f"#{index} {key} {getattr(got, key)!r} != {want[key]!r}")
        for key, value in want["labels"].items():
            if got.labels.get(key) != value:
                found.append(f"#{index} label {key} {got.labels.get(key)!r} != {value!r}")
        if "starts_at" in want and got.starts_at != datetime.fromisoformat(want["starts_at"]):
            found.append(f"#{index} starts_at {got.starts_at} != {want['starts_at']}")
        if got.understood == want.get("fallback", False):
            found.append(f"#{index} understood={got.understood}, expected the opposite")
        if "<no value>" in json.dumps(got.labels, ensure_ascii=False):
            found.append(f"#{index} <no value> in labels")
    return found


def pair_problem(data: dict[str, Any], pair: dict[str, Any]) -> str:
    """What is wrong with one fingerprint pair ("" when right)."""
    by_id = {message["id"]: message for message in data["messages"]}
    prints = []
    for ref in (pair["a"], pair["b"]):
        message_id, index = ref.split("#")
        alerts = read(by_id[message_id])
        if int(index) >= len(alerts):
            return f"{ref}: no such alert"
        prints.append(alerts[int(index)].fingerprint)
    if (prints[0] == prints[1]) != pair["same"]:
        relation = "share" if pair["same"] else "differ"
        return f"{pair['a']} and {pair['b']} should {relation} a fingerprint"
    return ""


@pytest.mark.parametrize(
    "message",
    [pytest.param(message, id=f"{name}/{message['id']}") for name, message in messages()],
)
def test_forwarder_message_yields_its_alerts(message: dict[str, Any]) -> None:
    assert problems(message, read(message)) == []


@pytest.mark.parametrize(
    ("data", "pair"),
    [
        pytest.param(data, pair, id=f"{name}/{pair['a']}~{pair['b']}")
        for name, data in forwarders().items()
        for pair in data["pairs"]
    ],
)
def test_forwarder_fingerprint_pairs(data: dict[str, Any], pair: dict[str, Any]) -> None:
    assert pair_problem(data, pair) == ""


def test_every_forwarder_has_a_recovery_pair_and_a_two_target_pair() -> None:
    for name, data in forwarders().items():
        kinds = {pair["same"] for pair in data["pairs"]}
        assert kinds == {True, False} or name == "alertmanager-bot", name


HOSTILE = "\x00\x1b[31m\u202e\u200b $(rm -rf /) `id` ; reboot #"


def test_hostile_shell_script_lines_stay_inert_and_capped() -> None:
    """The pipe-separated, tagged and captioned forms read hostile text as text: one alert per
    numbered line, nothing invisible kept, nothing longer than its cap."""
    pipes = " | ".join(f"k{i}: {HOSTILE}" for i in range(5000))
    numbered = "\n".join(f"[{i}] 主机: web-{i} | 告警: {HOSTILE} | 级别: 严重" for i in range(600))
    for text in (
        f"【告警】主机: {HOSTILE} | 告警: 磁盘满 | 级别: 严重 | " + pipes,
        numbered,
        f"Apache SkyWalking Alarm: \n {HOSTILE * 5000}",
        f"UptimeKuma Alert: [Down] {HOSTILE}\nTime ({HOSTILE}): 2024-06-03 02:00:00",
        json.dumps({"alertname": HOSTILE * 300, "instance": HOSTILE, "labels": {"k": HOSTILE}}),
        "| 告警名称 | 主机 |\n|---|---|\n" + f"| {HOSTILE} | web-1 |\n" * 600,
        "【告警】&#x202e;&#0;&#27;[31m 磁盘满 &lt;at id=all&gt;&lt;/at&gt;\n主机: &#x200b;db-1",
    ):
        alerts = parse_chat_message("text", text, None)
        assert 1 <= len(alerts) <= 500
        for alert in alerts:
            assert len(alert.title) <= 200
            assert not {"\x00", "\x1b", "\u202e", "\u200b"} & set(alert.title)
            assert not any({"\x00", "\u202e"} & set(value) for value in alert.labels.values())
    # entities are read as the characters they stand for, and those are cleaned like any other
    encoded = "【告警】&#x202e;磁盘满 &lt;at id=all&gt;&lt;/at&gt;\n主机: &#x200b;db-1"
    [decoded] = parse_chat_message("text", encoded, None)
    assert (decoded.title, decoded.labels["host"]) == ("磁盘满", "db-1")
    first = parse_chat_message("text", f"【告警】主机: {HOSTILE} | 告警: 磁盘满 | 级别: 严重", None)
    assert first[0].labels["host"] == "[31m $(rm -rf /) id ; reboot #"  # literal, never run
    assert first[0].severity == "critical"


def test_long_runs_of_blanks_and_brackets_are_read_at_once() -> None:
    """A line that is mostly one long run (spaces, dashes, brackets) is read like any other:
    a title with a lazy name before optional counts took cubic time on main (half a minute
    for a thousand spaces, hours for these), stalling the intake."""
    run = 60_000
    for text in (
        "a" + " " * run + "b",
        "【告警】磁盘满" + " " * run + "| 主机: web-1",
        "thing_dead [1] Firing\n**" + "x" * run + "\n" + "a ~ " * (run // 4),
        "[FIRING:1] HighCPU" + " " * run + "is CRITICAL!",
        "***** " + "x " * (run // 2) + "*****",
        "告警中" + " " * run + "(3",  # a state heading's count
        "- a\n" + "- " * (run // 2) + "\n- b",  # a list of alerts
        "Problem started at " + " " * run + "x",  # a sentence stating a start time
        "告警推送：\n{" + '"a": ' * (run // 5),  # a JSON object after a caption
        "<at id=all>" + "<at " * (run // 3) + "</at> 磁盘满",  # mention tags
        "date: Mon, 03 Jun 2024" + " " * run + "02:00:00 +0000",
        "Watch " + " " * run + "[" * run,  # a bracketed rule name
        "[FIRING:1] HighCPU (" + "web-1 " * (run // 6) + ")",  # the subject's common values
        "🔥 FIRING\n- X " + "a=" * (run // 2),  # a listed alert's labels after its name
        "Resolved: " + "a" * run,  # a state written as the key of the alert's name
    ):
        alerts = parse_chat_message("text", text, None)
        assert len(alerts) == 1
        assert len(alerts[0].title) <= 200
    assert parse_chat_message("text", "【变更通知】" + "今晚 " * (run // 3), None) == []


def test_card_controls_are_not_alert_text_even_deeply_nested() -> None:
    """Buttons, menus and inputs carry actions, not alert text, at any depth of a card."""
    button = {"tag": "button", "text": {"tag": "plain_text", "content": "屏蔽1小时"}}
    nested: dict[str, object] = {"tag": "column_set", "columns": [{"elements": [button]}]}
    card = {
        "header": {"title": {"tag": "plain_text", "content": "✅ Resolved: KafkaLag"}},
        "elements": [
            {"tag": "markdown", "content": "**Cluster:** kafka-prod"},
            nested,
            {"tag": "overflow", "options": [{"text": {"content": "认领"}}]},
            {"tag": "input", "placeholder": {"content": "备注"}},
        ],
    }
    [alert] = parse_chat_message("interactive", "", card)
    assert (alert.title, alert.status, alert.labels) == (
        "KafkaLag",
        "resolved",
        {"cluster": "kafka-prod"},
    )
    read = alert.raw["text"] + alert.summary + json.dumps(alert.annotations, ensure_ascii=False)
    assert not [word for word in ("屏蔽1小时", "认领", "备注") if word in read]
