"""Alert intake: real payloads and bot messages in, clean alerts with stable fingerprints out."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from workflows.intake import (
    VOLATILE_LABELS,
    WEBHOOK_PARSERS,
    AlertParseError,
    ParsedAlert,
    fallback_alert,
    normalise_severity,
    parse_alertmanager,
    parse_chat_message,
    parse_feishu,
    parse_generic,
    parse_grafana,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "alerts"
RAW_LIMIT = 16 * 1024


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def chat(name: str) -> list[ParsedAlert]:
    message = fixture(name)
    return parse_chat_message(message["message_type"], message["text"], message["card"])


def am_item(labels: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [{"status": "firing", "labels": labels, "annotations": {}, **extra}],
    }


def raw_size(alert: ParsedAlert) -> int:
    return len(json.dumps(alert.raw, ensure_ascii=False, separators=(",", ":")).encode())


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- Alertmanager ---------------------------------------------------------------------------


def test_alertmanager_firing_group_gives_one_alert_per_element() -> None:
    alerts = parse_alertmanager(fixture("alertmanager_firing.json"))

    assert [a.labels["instance"] for a in alerts] == ["10.0.3.17:9100", "10.0.3.18:9100"]
    first = alerts[0]
    assert first.source == "alertmanager"
    assert first.status == "firing"
    assert first.title == "NodeFilesystemSpaceFillingUp"
    assert first.severity == "critical"
    assert first.service == "node-exporter"
    assert first.summary == "Filesystem is predicted to run out of space within the next 4 hours."
    assert first.annotations["runbook_url"].startswith("https://runbooks.prometheus-operator.dev/")
    assert first.generator_url is not None
    assert first.generator_url.startswith("http://prometheus-k8s-0:9090/graph?g0.expr=")
    assert first.starts_at == utc(2024, 5, 1, 2, 13, 45, 123456)  # nanoseconds cut to micro
    assert first.ends_at is None  # "0001-01-01T00:00:00Z" means not set
    assert first.raw["fingerprint"] == "8a3c1d5e2f0b4c97"  # Alertmanager's own, kept in raw
    assert alerts[1].starts_at == utc(2024, 5, 1, 2, 14, 15, 500000)  # +08:00 converted
    assert alerts[0].fingerprint != alerts[1].fingerprint


def test_alertmanager_resolved_matches_the_firing_alert() -> None:
    firing = parse_alertmanager(fixture("alertmanager_firing.json"))[0]
    [resolved] = parse_alertmanager(fixture("alertmanager_resolved.json"))

    assert resolved.status == "resolved"
    assert resolved.ends_at == utc(2024, 5, 1, 3, 1, 15, 987654)
    # labels arrived in another order and the description changed: still the same alert
    assert list(resolved.labels) == sorted(resolved.labels)
    assert resolved.fingerprint == firing.fingerprint


def test_alert_status_wins_over_group_status_and_firing_alerts_have_no_end() -> None:
    payload = am_item({"alertname": "A"}, endsAt="2999-01-01T00:00:00Z")
    payload["status"] = "resolved"
    [alert] = parse_alertmanager(payload)
    assert alert.status == "firing"
    assert alert.ends_at is None  # the provisional future endsAt of a firing alert is dropped


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([1, 2], "not a JSON object"),
        ({"version": "4", "status": "firing"}, "no alerts list"),
        ({"version": "4", "alerts": []}, "empty alerts list"),
        ({"alerts": ["x", {"labels": {}, "annotations": {}}]}, "alerts[0] is not an object"),
    ],
)
def test_alertmanager_without_usable_alerts_says_why(payload: Any, reason: str) -> None:
    with pytest.raises(AlertParseError, match=re.escape(reason)):
        parse_alertmanager(payload)


def test_alertmanager_skips_broken_elements_and_keeps_good_ones() -> None:
    payload = am_item({"alertname": "Good"})
    payload["alerts"] = ["garbage", None, {"labels": "nope"}, *payload["alerts"]]
    assert [a.title for a in parse_alertmanager(payload)] == ["Good"]


# --- fingerprints ---------------------------------------------------------------------------


def test_fingerprint_ignores_label_order_and_volatile_labels() -> None:
    base = {"alertname": "HighCPU", "instance": "db-1:9100", "job": "node"}
    reordered = dict(reversed(list(base.items())))
    noisy = {
        **base,
        "value": "93.2",
        "__value_string__": "[ var='B' value=93.2 ]",
        "prometheus_replica": "prometheus-k8s-1",
        "timestamp": "1714530000",
        "empty": "",
    }
    fingerprints = {
        parse_alertmanager(am_item(labels))[0].fingerprint for labels in (base, reordered, noisy)
    }
    assert len(fingerprints) == 1
    assert len(fingerprints.pop()) == 16


def test_fingerprint_changes_with_an_identifying_label() -> None:
    one = parse_alertmanager(am_item({"alertname": "HighCPU", "instance": "db-1:9100"}))[0]
    two = parse_alertmanager(am_item({"alertname": "HighCPU", "instance": "db-2:9100"}))[0]
    other = parse_alertmanager(am_item({"alertname": "HighMem", "instance": "db-1:9100"}))[0]
    assert len({one.fingerprint, two.fingerprint, other.fingerprint}) == 3


def test_volatile_labels_are_documented_and_include_values_and_replicas() -> None:
    assert {"value", "__value__", "__value_string__", "prometheus_replica"} <= VOLATILE_LABELS
    assert "instance" not in VOLATILE_LABELS


def test_same_labels_through_webhook_and_generic_share_a_fingerprint() -> None:
    labels = {"alertname": "BackupFailed", "host": "db-1"}
    [am] = parse_alertmanager(am_item(labels))
    [generic] = parse_generic({"title": "BackupFailed", "labels": labels})
    assert am.fingerprint == generic.fingerprint


# --- Grafana ---------------------------------------------------------------------------------


def test_grafana_unified_keeps_extras_as_annotations() -> None:
    firing, resolved = parse_grafana(fixture("grafana_unified.json"))

    assert (firing.source, firing.status, resolved.status) == ("grafana", "firing", "resolved")
    assert firing.labels == {
        "alertname": "HighCPU",
        "grafana_folder": "Infra",
        "instance": "db-1:9100",
        "team": "dba",
    }
    assert firing.annotations["values"] == "B=93.27, C=1"
    assert "value=93.27" in firing.annotations["value_string"]
    assert firing.annotations["silence_url"].startswith("https://grafana.example.com/alerting/")
    assert firing.annotations["panel_url"].endswith("viewPanel=3")
    assert firing.severity == "warning"  # no severity label: a human looks
    assert resolved.ends_at == utc(2024, 5, 1, 2, 15)


def test_grafana_unified_value_changes_do_not_change_the_fingerprint() -> None:
    payload = fixture("grafana_unified.json")
    before = parse_grafana(payload)[0].fingerprint
    payload["alerts"][0]["values"] = {"B": 99.9, "C": 1}
    payload["alerts"][0]["valueString"] = "[ var='B' value=99.9 ]"
    assert parse_grafana(payload)[0].fingerprint == before


def test_grafana_legacy_alerting_then_ok_is_one_alert() -> None:
    [alerting] = parse_grafana(fixture("grafana_legacy_alerting.json"))
    [ok] = parse_grafana(fixture("grafana_legacy_ok.json"))

    assert alerting.status == "firing"
    assert ok.status == "resolved"
    assert alerting.title == "Database CPU alert"
    assert alerting.labels["rule_id"] == "27"
    assert alerting.severity == "critical"  # tag severity=P1
    assert alerting.annotations["eval_matches"] == "db-1:9100=93.27; db-3:9100=91.8"
    assert alerting.summary == "CPU usage above 90% on at least one database host."
    assert alerting.generator_url is not None
    assert alerting.generator_url.endswith("viewPanel=3&orgId=1")
    assert alerting.fingerprint == ok.fingerprint


def test_grafana_legacy_no_data_fires_and_pending_is_refused() -> None:
    [no_data] = parse_grafana({"ruleName": "CPU", "ruleId": 3, "state": "no_data"})
    assert no_data.status == "firing"
    assert no_data.annotations["state"] == "no_data"
    with pytest.raises(AlertParseError, match="pending"):
        parse_grafana({"ruleName": "CPU", "ruleId": 3, "state": "pending"})


def test_grafana_refuses_a_payload_of_neither_kind() -> None:
    with pytest.raises(AlertParseError, match="neither"):
        parse_grafana({"hello": "world"})


# --- generic ---------------------------------------------------------------------------------


def test_generic_alerts_list() -> None:
    backup, cert = parse_generic(fixture("generic_alerts.json"))

    assert backup.source == "generic"
    assert backup.severity == "critical"  # P1
    assert backup.service == "postgres"
    assert backup.summary == "pg_dump exited with status 1"
    assert backup.starts_at == utc(2024, 4, 30, 19, 0, 4)
    assert backup.generator_url == "https://ci.example.com/jobs/pg-backup/1432"
    assert cert.severity == "info"  # 提示
    assert cert.status == "firing"


def test_generic_single_object_defaults_and_resolution() -> None:
    [firing] = parse_generic({"title": "Queue backlog", "labels": {"queue": "mail"}})
    [resolved] = parse_generic(
        {
            "title": "Queue backlog",
            "status": "resolved",
            "labels": {"queue": "mail"},
            "ends_at": "2024-05-01T10:30:00",
        }
    )
    assert (firing.status, firing.severity) == ("firing", "warning")
    assert firing.summary == "Queue backlog"
    assert resolved.status == "resolved"
    assert resolved.ends_at == utc(2024, 5, 1, 10, 30)  # naive = UTC
    assert resolved.fingerprint == firing.fingerprint


def test_generic_title_tells_alerts_apart_when_labels_have_no_alertname() -> None:
    cpu = parse_generic({"title": "CPU high", "labels": {"host": "db-1"}})[0]
    disk = parse_generic({"title": "Disk full", "labels": {"host": "db-1"}})[0]
    assert cpu.fingerprint != disk.fingerprint


def test_generic_fingerprint_override() -> None:
    [hexed] = parse_generic({"title": "A", "fingerprint": "0123456789abcdef"})
    first = parse_generic({"title": "Cert expires in 6 days", "fingerprint": "cert-api"})[0]
    later = parse_generic({"title": "Cert expires in 2 days", "fingerprint": "cert-api"})[0]
    assert hexed.fingerprint == "0123456789abcdef"
    assert first.fingerprint == later.fingerprint
    assert len(first.fingerprint) == 16


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("title", "not a JSON object"),
        ({"severity": "critical"}, 'non-empty string "title"'),
        ({"title": "  \u200b "}, 'non-empty string "title"'),
        ({"alerts": "many"}, "not a list"),
        ({"alerts": [{"title": 5}]}, "alert 0"),
    ],
)
def test_generic_without_a_title_is_refused(payload: Any, reason: str) -> None:
    with pytest.raises(AlertParseError, match=reason):
        parse_generic(payload)


def test_webhook_parsers_are_registered_by_source() -> None:
    assert WEBHOOK_PARSERS["alertmanager"] is parse_alertmanager
    assert WEBHOOK_PARSERS["grafana"] is parse_grafana
    assert WEBHOOK_PARSERS["generic"] is parse_generic
    assert WEBHOOK_PARSERS["feishu"] is parse_feishu
    assert set(WEBHOOK_PARSERS) == {"alertmanager", "grafana", "generic", "feishu"}


def test_a_feishu_hook_body_is_read_by_the_feishu_and_generic_webhooks() -> None:
    """A forwarder that only knows Feishu group hooks posts its message body; both webhooks
    read it as the message it carries (post per language, content as a JSON string too)."""
    paragraphs = [[{"tag": "text", "text": "主机: db-1"}]]
    post = {"zh_cn": {"title": "【告警】磁盘满", "content": paragraphs}}
    bodies = [
        {"msg_type": "post", "content": {"post": post}},
        {"msg_type": "text", "content": json.dumps({"text": "【告警】磁盘满\n主机: db-1"})},
    ]
    for parser in (parse_feishu, parse_generic):
        for body in bodies:
            [alert] = parser(body)
            assert (alert.title, alert.labels["host"], alert.status) == ("磁盘满", "db-1", "firing")
    for bad in ({"msg_type": "image", "content": {}}, {"msg_type": "interactive", "card": []}):
        with pytest.raises(AlertParseError):
            parse_feishu(bad)


# --- severity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("P0", "critical"),
        ("P1", "critical"),
        ("critical", "critical"),
        ("紧急", "critical"),
        ("严重", "critical"),
        ("Disaster", "critical"),
        ("warning", "warning"),
        ("警告", "warning"),
        ("P2", "warning"),
        ("info", "info"),
        ("P3", "info"),
        ("提示", "info"),
        ("4", "warning"),
        ("", "warning"),
        ("whatever", "warning"),
    ],
)
def test_severity_words_are_normalised(word: str, severity: str) -> None:
    assert normalise_severity(word) == severity


# --- chat: Alertmanager and Grafana texts ----------------------------------------------------


def test_alertmanager_subject_line_firing_then_resolved() -> None:
    [firing] = parse_chat_message("text", "[FIRING:2] HighCPU (instance=a job=b)", None)
    [resolved] = parse_chat_message("text", "[RESOLVED] HighCPU (instance=a job=b)", None)

    assert firing.source == "alertmanager"
    assert firing.status == "firing"
    assert firing.title == "HighCPU"
    assert firing.labels == {"alertname": "HighCPU", "instance": "a", "job": "b"}
    assert resolved.status == "resolved"
    assert resolved.fingerprint == firing.fingerprint


def test_alertmanager_text_alert_list_gives_each_alert_its_labels() -> None:
    alerts = chat("chat_alertmanager_list.json")

    assert [a.labels["instance"] for a in alerts] == ["10.0.3.17:9100", "10.0.3.18:9100"]
    first = alerts[0]
    assert first.labels["mountpoint"] == "/"
    assert first.severity == "critical"
    assert first.summary == "Filesystem is predicted to run out of space within the next 4 hours."
    assert "9.812% available" in first.annotations["description"]
    assert first.generator_url is not None
    assert first.generator_url.startswith("http://prometheus-k8s-0:9090/graph")


def test_grafana_card_with_firing_and_resolved_sections() -> None:
    firing, resolved = chat("chat_grafana_card.json")

    assert (firing.source, firing.status, resolved.status) == ("grafana", "firing", "resolved")
    assert firing.labels["instance"] == "db-1:9100"
    assert resolved.labels["instance"] == "db-2:9100"
    assert firing.annotations["value"] == "B=93.27, C=1"
    assert firing.annotations["silence_url"].startswith("https://grafana.example.com/alerting/")
    assert firing.summary == "High CPU on db-1:9100"
    # the same alert as the Grafana webhook reports (same labels, values left out)
    webhook = parse_grafana(fixture("grafana_unified.json"))
    assert [a.fingerprint for a in (firing, resolved)] == [a.fingerprint for a in webhook]


def test_grafana_legacy_texts() -> None:
    [alerting] = chat("chat_grafana_legacy_text.json")
    [ok] = parse_chat_message("text", "[OK] Database CPU alert", None)

    assert (alerting.source, alerting.status, ok.status) == ("grafana", "firing", "resolved")
    assert alerting.title == "Database CPU alert"
    assert alerting.labels == {}  # "db-1:9100: 93.27" lines are values, not labels
    assert "db-1:9100: 93.27" in alerting.summary
    assert alerting.generator_url == (
        "https://grafana.example.com/d/rYdddlPWk/databases?tab=alert&viewPanel=3&orgId=1"
    )
    assert ok.fingerprint == alerting.fingerprint


def test_delivered_card_form_reads_title_and_fields() -> None:
    [alert] = chat("chat_card_delivered.json")

    assert alert.source == "alertmanager"
    # Alertmanager's default subject: the common labels' values in parentheses, not the name
    assert alert.title == "KubePodCrashLooping"
    assert alert.labels["target"] == "payments checkout-7d9f8b6c5-x2kqp"
    assert alert.severity == "critical"  # "**告警级别：**" with the value on the next line
    assert alert.labels["namespace"] == "payments"
    assert "CrashLoopBackOff" in alert.summary


# --- chat: PrometheusAlert ---------------------------------------------------------------------


def test_prometheusalert_card_with_two_alerts() -> None:
    disk, pod = chat("chat_prometheusalert_card.json")

    assert disk.source == "prometheusalert"
    assert disk.status == "firing"
    assert disk.title == "NodeFilesystemSpaceFillingUp"
    assert disk.labels == {
        "alertname": "NodeFilesystemSpaceFillingUp",
        "instance": "10.0.3.17:9100",
        "severity": "P1",
    }
    assert disk.severity == "critical"
    assert disk.starts_at == utc(2024, 5, 1, 2, 13, 45)  # printed in Beijing time
    assert disk.ends_at is None
    assert disk.summary.startswith("Filesystem on /dev/nvme0n1p1")
    assert disk.generator_url is not None
    assert disk.generator_url.startswith("http://prometheus-k8s-0:9090/graph")
    assert pod.title == "KubePodCrashLooping"
    assert pod.severity == "warning"  # empty 告警级别
    assert pod.summary.endswith('(reason: "CrashLoopBackOff").')  # card note not included


def test_prometheusalert_recovery_text_resolves_the_card_alert() -> None:
    disk = chat("chat_prometheusalert_card.json")[0]
    [recovered] = chat("chat_prometheusalert_resolved_text.json")

    assert recovered.status == "resolved"
    assert recovered.ends_at == utc(2024, 5, 1, 3, 1, 15)
    assert recovered.summary.endswith("has 31.4% available space left.")
    assert recovered.fingerprint == disk.fingerprint


def test_prometheusalert_grafana_template() -> None:
    text = (
        "**[Grafana恢复信息](https://grafana.example.com/d/rYdddlPWk?tab=alert&viewPanel=3)**\n"
        "*Database CPU alert*\n告警级别：严重\n开始时间：2024-05-01 10:00:00\n"
        "**CPU usage back under 90%**"
    )
    [alert] = parse_chat_message("interactive", text, None)

    assert (alert.source, alert.status) == ("prometheusalert", "resolved")
    assert alert.title == "Database CPU alert"
    assert alert.severity == "critical"
    assert alert.summary == "CPU usage back under 90%"
    assert alert.generator_url == "https://grafana.example.com/d/rYdddlPWk?tab=alert&viewPanel=3"


# --- chat: plain text ----------------------------------------------------------------------------


def test_plain_text_alert_and_its_recovery() -> None:
    [alert] = parse_chat_message("text", "磁盘快满了 host=db-1", None)
    [again] = parse_chat_message("text", "磁盘快满了 93% 2024-05-01 10:01:00 host=db-1", None)
    [recovered] = parse_chat_message("text", "已恢复：磁盘快满了 host=db-1", None)
    [other_host] = parse_chat_message("text", "磁盘快满了 host=db-2", None)

    assert (alert.source, alert.status, alert.title) == ("text", "firing", "磁盘快满了 host=db-1")
    assert alert.labels == {"host": "db-1"}
    assert recovered.status == "resolved"
    assert again.fingerprint == alert.fingerprint == recovered.fingerprint
    assert other_host.fingerprint != alert.fingerprint


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("[OK] nginx 502 rate back to normal", "resolved"),
        ("RESOLVED: api latency", "resolved"),
        ("磁盘使用率告警已恢复", "resolved"),
        ("磁盘使用率 未恢复，请处理", "firing"),
        ("api latency high (not resolved yet)", "firing"),
        ("订单服务异常\n状态：已恢复", "resolved"),
        ("主从复制中断，自动恢复失败", "firing"),
        ("【告警】订单服务异常\n上次故障已恢复后再次出现", "firing"),
        ("【恢复】订单服务异常", "resolved"),
    ],
)
def test_plain_text_recovery_wording(text: str, status: str) -> None:
    assert parse_chat_message("text", text, None)[0].status == status


def test_plain_text_key_value_lines_become_labels_and_annotations() -> None:
    text = "订单服务 5xx 升高\n服务：order-api\n环境: prod\n告警级别：紧急\n原因：数据库连接池耗尽"
    [alert] = parse_chat_message("post", text, None)

    assert alert.title == "订单服务 5xx 升高"
    assert alert.labels == {"env": "prod", "service": "order-api", "severity": "紧急"}
    assert alert.annotations == {"原因": "数据库连接池耗尽"}
    assert alert.severity == "critical"
    assert alert.service == "order-api"


def test_plain_text_named_by_an_alert_name_line() -> None:
    text = "告警名称：磁盘快满\n主机：db-1\n/data 分区使用率 93%\n开始时间：2024-05-01 10:00:00"
    [alert] = parse_chat_message("text", text, None)

    assert alert.title == "磁盘快满"
    assert alert.labels == {"alertname": "磁盘快满", "host": "db-1"}
    assert alert.summary == "/data 分区使用率 93%"
    assert alert.starts_at == utc(2024, 5, 1, 2)


def test_message_without_text_is_refused() -> None:
    with pytest.raises(AlertParseError, match="no text"):
        parse_chat_message("image", "", None)
    with pytest.raises(AlertParseError, match="no text"):
        parse_chat_message("interactive", " \u200b\n\x00", {"elements": []})


# --- hostile input -----------------------------------------------------------------------------


def test_hostile_generic_alert_is_cleaned_and_kept_as_inert_data() -> None:
    [alert] = parse_generic(fixture("hostile_generic.json"))

    assert alert.labels["host"] == "$(rm -rf /)"  # literal text, never run
    assert alert.labels["cmd"] == "; shutdown -h now #"
    assert json.loads(alert.labels["json"])["status"] == "resolved"  # JSON stays a string...
    assert alert.status == "firing"  # ...and never changes the alert
    assert alert.labels["nested"] == '{"list": [1, 2, 3], "status": "resolved"}'
    assert (alert.labels["number"], alert.labels["flag"]) == ("42", "true")
    assert alert.labels["evil[31m"] == "value"  # NUL, ESC, BEL, zero-width, surrogate gone
    assert not {"\u202e", "\x00", "\u200b", "\n", "\r"} & set(alert.title)
    assert alert.title.endswith("second line")
    assert alert.annotations["description"] == "line one\nline two"
    assert alert.severity == "critical"
    assert alert.generator_url is None  # javascript: is not a link we keep
    assert alert.starts_at is None
    stored = json.dumps(alert.raw, ensure_ascii=False)
    assert "\\u0000" not in stored
    stored.encode("utf-8")  # no lone surrogates left


def test_ten_megabytes_of_hostile_text_is_capped() -> None:
    line = "磁盘快满了 host=db-1 \x00\x1b[31m\u202e $(rm -rf /) `id` <at id=all></at> "
    text = (line * (10_000_000 // len(line) + 1))[:10_000_000]
    started = time.perf_counter()
    [alert] = parse_chat_message("text", text, None)
    elapsed = time.perf_counter() - started

    assert len(alert.title) <= 200
    assert len(alert.summary) <= 2000
    assert raw_size(alert) <= RAW_LIMIT
    assert alert.raw.get("_truncated") is True
    assert not {"\x00", "\x1b", "\u202e"} & set(alert.title)
    assert "$(rm -rf /)" in alert.title
    print(f"10 MB message parsed in {elapsed * 1000:.0f} ms")  # a figure, not an assertion


def test_huge_webhook_is_capped_everywhere() -> None:
    labels = {f"label_{i:06d}": "v" * 5000 for i in range(20_000)}
    labels["alertname"] = "A" * 10_000
    [alert] = parse_alertmanager(am_item(labels, annotations={"summary": "s" * 1_000_000}))

    assert len(alert.labels) == 64
    assert all(len(value) <= 1024 for value in alert.labels.values())
    assert len(alert.title) == 200
    assert len(alert.summary) == 2000
    assert raw_size(alert) <= RAW_LIMIT
    assert alert.raw["_truncated"] is True


def test_at_most_500_alerts_per_webhook() -> None:
    payload = am_item({"alertname": "Flood"})
    payload["alerts"] *= 10_000
    assert len(parse_alertmanager(payload)) == 500


def test_capped_labels_do_not_depend_on_input_order() -> None:
    labels = {f"k{i:03d}": str(i) for i in range(100)}
    reordered = dict(reversed(list(labels.items())))
    one = parse_alertmanager(am_item({"alertname": "A", **labels}))[0]
    two = parse_alertmanager(am_item({"alertname": "A", **reordered}))[0]
    assert one.labels == two.labels
    assert one.fingerprint == two.fingerprint


def test_deeply_nested_card_is_read_without_recursion() -> None:
    card: dict[str, Any] = {"header": {"title": {"content": "深层卡片 host=db-9"}}}
    node = card
    for _ in range(50_000):
        child: dict[str, Any] = {}
        node["elements"] = [{"tag": "div", "text": {"content": "x"}}, child]
        node = child
    [alert] = parse_chat_message("interactive", "", card)
    assert alert.title == "深层卡片 host=db-9"
    assert alert.labels == {"host": "db-9"}
    assert raw_size(alert) <= RAW_LIMIT


def test_every_parsed_datetime_is_aware_utc() -> None:
    alerts = [
        *parse_alertmanager(fixture("alertmanager_resolved.json")),
        *parse_grafana(fixture("grafana_unified.json")),
        *chat("chat_prometheusalert_resolved_text.json"),
        *parse_generic({"title": "t", "status": "resolved", "starts_at": 1714530000000}),
    ]
    stamps = [s for a in alerts for s in (a.starts_at, a.ends_at) if s is not None]
    assert len(stamps) >= 7
    assert all(stamp.utcoffset() is not None and stamp.tzinfo is UTC for stamp in stamps)


# --- chat: what every forwarder's message must give ---------------------------------------------


def test_go_no_value_is_empty_never_a_label_nor_part_of_a_fingerprint() -> None:
    with_placeholder = (
        "告警名称: 网关超时\n告警主机: gw-9\n告警级别: <no value>\n集群: <no value>\n"
        "环境: ${labels.env}\n应用: {{ .Labels.app }}"  # placeholders a forwarder did not fill
    )
    without = "告警名称: 网关超时\n告警主机: gw-9"
    [alert] = parse_chat_message("text", with_placeholder, None)
    [plain] = parse_chat_message("text", without, None)

    assert "<no value>" not in json.dumps(alert.labels, ensure_ascii=False)
    assert alert.severity == "warning"
    assert alert.fingerprint == plain.fingerprint


def test_a_message_yields_one_alert_per_alert_whatever_its_title_says() -> None:
    text = (
        "[FIRING:1] HighCPU\nLabels:\n - alertname = HighCPU\n - instance = a:9100\n"
        "Labels:\n - alertname = HighCPU\n - instance = b:9100\n"
    )
    alerts = parse_chat_message("text", text, None)
    assert [a.labels["instance"] for a in alerts] == ["a:9100", "b:9100"]
    assert alerts[0].fingerprint != alerts[1].fingerprint


def test_a_separator_line_is_never_a_title() -> None:
    text = "--- Alert ---\n磁盘空间不足 host=db-1\n--- Alert ---\n内存不足 host=db-2"
    titles = [a.title for a in parse_chat_message("text", text, None)]
    assert titles == ["磁盘空间不足 host=db-1", "内存不足 host=db-2"]


def test_keys_behind_an_emoji_or_bold_over_their_value_are_read() -> None:
    card = {
        "header": {"title": {"content": "【 P1 报警中】- 主机CPU过高 🔥"}},
        "elements": [
            {"tag": "div", "text": {"content": "**🖥 报警主机：**\n10.2.0.7:9100"}},
            {"tag": "div", "text": {"content": "**首次触发**\n2024-06-04 09:00:00"}},
        ],
    }
    [alert] = parse_chat_message("interactive", "", card)
    assert (alert.title, alert.status, alert.severity) == ("主机CPU过高", "firing", "critical")
    assert alert.labels["instance"] == "10.2.0.7:9100"
    assert alert.starts_at == utc(2024, 6, 4, 1)


def test_state_markers_and_recovery_words_inside_fields() -> None:
    firing = parse_chat_message("text", "🔥 主机宕机\n报警主机: db-1", None)[0]
    marked = parse_chat_message("text", "✅ 主机宕机\n报警主机: db-1", None)[0]
    described = parse_chat_message(
        "text", "告警名称: 主机宕机\n告警描述: 服务已恢复\n报警主机: db-1", None
    )[0]
    n9e = parse_chat_message(
        "text", "级别状态: S1 Recovered\n规则名称: 主机宕机\n报警主机: db-1", None
    )[0]

    named = parse_chat_message("text", "告警名称: 磁盘使用率告警\n告警描述: 服务已恢复", None)
    assert firing.status == "firing"
    assert marked.status == described.status == n9e.status == named[0].status == "resolved"
    assert n9e.severity == "critical"  # S1, the state word is not part of the level


def test_a_message_nothing_reads_is_a_fallback_alert_of_its_first_line() -> None:
    text = "------\n线上好像出问题了 $(reboot)\n大家看一下 sk-hunter2hunter2hunter2"
    [alert] = parse_chat_message("text", text, None)
    [understood] = parse_chat_message("text", "磁盘快满了 host=db-1", None)

    assert not alert.understood
    assert understood.understood
    assert alert.title == "线上好像出问题了 $(reboot)"  # kept as text, never run
    assert "大家看一下" in alert.summary
    assert "hunter2" not in alert.summary + json.dumps(alert.raw)  # a secret-shaped word masked
    assert fallback_alert("image", "", "无法读取的告警消息（image）").title == (
        "无法读取的告警消息（image）"
    )


def test_mentions_before_an_alert_are_not_its_text() -> None:
    [alert] = parse_chat_message("text", "@所有人 [FIRING:1] HighCPU (instance=a)", None)
    assert (alert.title, alert.labels["instance"]) == ("HighCPU", "a")


def test_a_card_from_a_card_template_is_read_from_its_variables() -> None:
    card = {
        "type": "template",
        "data": {
            "template_id": "AAqk1234",
            "template_variable": {
                "alert_name": "HostDown",
                "instance": "10.0.0.9:9100",
                "severity": "critical",
                "status": "resolved",
            },
        },
    }
    [alert] = parse_chat_message("interactive", "", card)
    assert (alert.title, alert.status, alert.severity) == ("HostDown", "resolved", "critical")
    assert alert.labels["instance"] == "10.0.0.9:9100"


def test_prometheusalert_without_external_url_or_level_or_description() -> None:
    text = (
        "**[Prometheus告警信息]()**\r\n*[HostDown]()*\r\n告警级别：<no value>\r\n"
        "开始时间：2024-06-01T02:00:00Z\r\n故障主机IP：10.0.0.1:9100\r\n**<no value>**"
    )
    [alert] = parse_chat_message("text", text, None)
    assert alert.labels == {"alertname": "HostDown", "instance": "10.0.0.1:9100"}
    assert (alert.severity, alert.summary) == ("warning", "HostDown")


def test_a_go_map_of_labels_is_read_as_labels() -> None:
    text = "告警名称: HostDown\n告警标签: map[alertname:HostDown instance:10.0.0.1:9100 job:node]"
    [alert] = parse_chat_message("text", text, None)
    assert alert.labels == {"alertname": "HostDown", "instance": "10.0.0.1:9100", "job": "node"}


def test_go_time_prints_are_read() -> None:
    text = "告警名称: A\n主机: h\n开始时间: 2024-05-01 10:00:00.123 +0800 CST m=+12.345"
    [alert] = parse_chat_message("text", text, None)
    assert alert.starts_at == utc(2024, 5, 1, 2, 0, 0, 123000)


def test_english_key_lines_with_a_state_each() -> None:
    text = (
        "Status: firing\nAlert: HighCPU\nInstance: db-1\nSeverity: critical\n\n"
        "Status: resolved\nAlert: HighMem\nInstance: db-2\nSeverity: warning"
    )
    alerts = parse_chat_message("text", text, None)
    assert [(a.status, a.title, a.labels["instance"]) for a in alerts] == [
        ("firing", "HighCPU", "db-1"),
        ("resolved", "HighMem", "db-2"),
    ]


# --- parsed once: what the inbox keeps of a webhook delivery ---------------------------------


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("alertmanager", "alertmanager_firing.json"),
        ("alertmanager", "alertmanager_resolved.json"),
        ("grafana", "grafana_legacy_alerting.json"),
        ("grafana", "grafana_unified.json"),
        ("generic", "generic_alerts.json"),
        ("generic", "hostile_generic.json"),
    ],
)
def test_a_delivery_kept_as_parsed_alerts_is_the_same_alerts(source: str, name: str) -> None:
    """The webhook stores its parsed alerts as JSON; the inbox rebuilds exactly those alerts
    (times, labels, raw item) without parsing the body again."""
    from bot.lark.runtime import _delivered_alerts

    parsed = WEBHOOK_PARSERS[source](fixture(name))
    kept = json.loads(json.dumps({"alerts": [alert.as_json() for alert in parsed]}))
    assert _delivered_alerts(source, kept) == parsed
    # a row an earlier version kept (the body) is parsed as before
    assert _delivered_alerts(source, {"body": fixture(name)}) == parsed


def test_a_kept_alert_that_is_not_one_is_refused() -> None:
    from bot.lark.runtime import _delivered_alerts

    with pytest.raises((KeyError, TypeError, ValueError)):
        _delivered_alerts("generic", {"alerts": [{"title": "no status, no fingerprint"}]})
