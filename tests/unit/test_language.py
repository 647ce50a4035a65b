"""Every card the bot renders, in Chinese, carries no English of the bot's own: only code,
names, labels and the other values it was given (see tests/support/language.py)."""

from __future__ import annotations

import dataclasses
import json
import re
import string
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from cards.incident import finding, incident_card
from cards.texts import Texts, en, texts, zh
from cards.views import DiagnosisView, Evidence, Hypothesis, IncidentView
from plugins.builtin.host import create_plugins as host_plugins
from plugins.builtin.net import create_plugins as net_plugins
from plugins.contract import AlertContext, PluginResult
from plugins.outcome import Diagnosis
from plugins.registry import PluginRegistry
from plugins.runbooks import RunbookBook, diagnose_with_rules
from tests.conftest import free_port
from tests.evals.harness import Recorder, build_registry, load_scenarios
from tests.report import test_cards as report_cards
from tests.support.language import english, worded
from tests.unit import test_cards as incident_cards
from tests.unit import test_council_cards as council_cards
from tests.unit import test_oncall_cards as oncall_cards

REGISTRIES: tuple[ModuleType, ...] = (incident_cards, council_cards, report_cards, oncall_cards)
# values the card tests pass inline: a list title, a model's summary (model text is a value)
INLINE = {"Open incidents", "A calm week.", "为什么 db-1 很慢"}  # and the /ask question
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")  # Chinese and its punctuation


def leaves(node: Any, seen: set[int] | None = None) -> Iterator[str]:
    """Every string inside `node` (dataclasses, mappings, sequences): the values a test gave."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, str):
        yield node
        for line in node.splitlines():
            yield line.strip()
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for item in dataclasses.fields(node):
            yield from leaves(getattr(node, item.name), seen)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(key, seen)
            yield from leaves(value, seen)
            if isinstance(key, str) and isinstance(value, str):
                yield f"{key}={value}"
    elif isinstance(node, (list, tuple, set, frozenset)):
        for item in node:
            yield from leaves(item, seen)


def given(module: ModuleType) -> set[str]:
    """The values a card test module feeds its cards."""
    return INLINE | {
        text
        for name, value in vars(module).items()
        if name.isupper() and not callable(value)
        for text in leaves(value)
    }


def shown(card: dict[str, Any]) -> Iterator[str]:
    """Every string a reader sees on a card (contents, titles, button labels)."""
    if isinstance(card, dict):
        for key, value in card.items():
            if key == "content" and isinstance(value, str):
                yield value
            elif key not in ("behaviors", "value"):
                yield from shown(value)
    elif isinstance(card, list):
        for item in card:
            yield from shown(item)


CASES: list[tuple[str, Callable[[Texts], dict[str, Any]], set[str]]] = [
    (f"{module.__name__.rsplit('.', 2)[-2]}:{name}", render, given(module))
    for module in REGISTRIES
    for name, render in module.CARDS.items()
]


def test_the_detector_finds_what_the_issue_saw() -> None:
    for sentence, caught in [
        ("Runbook default: http check of annotations.url: 0 of 1 checks failed.", "Runbook"),
        ("检查：Checks pass now; the alert may be transient or recovering.", "Checks pass now"),
        ("原因：diagnosis rejected by ou_alice", "diagnosis rejected by"),
        ("1 mount(s) below 90%", "mount(s)"),
        ("无法创建静默：bad regex '['", "bad regex"),
        ("已结束（escalated 1, resolved 2）", "escalated"),
        ("09:30 · incident.opened · system", "incident.opened"),
    ]:
        found = english(sentence)
        assert any(caught in piece for piece in found), (sentence, found)


def test_the_detector_leaves_code_names_labels_and_values_alone() -> None:
    for fine in [
        "事件 #42 HighCPU on db-1 已恢复",  # with the title given below
        "用 `/run http_check url=https://x` 再查一次",
        "```\nPermission denied while renaming the log\n```",
        "<at id=ou_bob></at> 批准了 · CPU 使用率 97%",
        "标签 alertname=DiskFull,env=staging；插件 host_disk",
        "[FIRING:1] Disk -> web-3",
        "告警 OK，服务 orders-db",
    ]:
        assert english(fine, values=("HighCPU on db-1",)) == [], fine


@pytest.mark.parametrize(("name", "render", "values"), CASES, ids=[c[0] for c in CASES])
def test_chinese_cards_have_no_english_of_their_own(
    name: str, render: Callable[[Texts], dict[str, Any]], values: set[str]
) -> None:
    card = render(texts("zh"))
    found = [(text, english(text, values)) for text in shown(card)]
    leaked = [(text, bits) for text, bits in found if bits]
    assert not leaked, json.dumps(leaked, ensure_ascii=False, indent=1)


@pytest.mark.parametrize(("name", "render", "values"), CASES, ids=[c[0] for c in CASES])
def test_english_cards_have_no_chinese_of_their_own(
    name: str, render: Callable[[Texts], dict[str, Any]], values: set[str]
) -> None:
    card = render(texts("en"))
    given = sorted((v for v in values if CJK.search(v)), key=len, reverse=True)
    leaked = []
    for text in shown(card):
        for value in given:
            text = text.replace(value, " ")
        if CJK.search(text):
            leaked.append(text)
    assert not leaked, json.dumps(leaked, ensure_ascii=False, indent=1)


def diagnosed(alert: AlertContext, found: Diagnosis, summary: str) -> IncidentView:
    """Incident #7 of `alert`, open, with the rules' diagnosis `found` on its card."""
    return IncidentView(
        id=7,
        title=alert.title,
        severity=alert.severity,
        status="open",
        service=alert.service,
        source="alertmanager",
        labels=dict(alert.labels),
        summary=summary,
        alert_count=1,
        first_seen=incident_cards.T0,
        last_seen=incident_cards.T0,
        diagnosis=DiagnosisView(
            summary=found.summary,
            hypotheses=tuple(Hypothesis(c, p) for c, p in found.hypotheses),
            evidence=tuple(Evidence(s, t) for s, t in found.evidence),
            next_checks=found.next_checks,
            provider=found.provider,
            partial=found.partial,
            codes=found.codes,
        ),
    )


SCENARIOS = load_scenarios()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_eval_scenarios_diagnosed_by_the_rules_read_chinese(name: str) -> None:
    """Each recorded incident of tests/evals/scenarios, diagnosed by the rules provider over its
    recorded plugin outputs (the runbooks it configures, or none), on a Chinese card: the
    replayed results carry the real plugins' codes, so their findings are worded as a real
    run's are (their English summaries are not allowed through as values)."""
    scenario = SCENARIOS[name]
    registry = build_registry(scenario, Recorder())
    book = RunbookBook.from_config(scenario.runbooks, registry)
    alert = scenario.alert.context()
    found = await diagnose_with_rules(book, registry, alert)
    view = diagnosed(alert, found, alert.annotations.get("summary", ""))
    # the recorded results carry codes: their own summaries are no licence to print English
    given = scenario.model_dump()
    for recordings in given["tools"].values():
        for recording in recordings:
            recording["result"].pop("summary")
    values = set(leaves(given)) | set(alert.annotations.values())
    card = incident_card(view, texts("zh"), incident_cards.ZONE)
    leaked = [(text, english(text, values)) for text in shown(card)]
    leaked = [(text, bits) for text, bits in leaked if bits]
    assert not leaked, json.dumps(leaked, ensure_ascii=False, indent=1)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_replayed_plugin_result_is_worded_in_chinese(name: str) -> None:
    """The evals replay what plugins gave with the real plugins' codes: each recording reads
    Chinese through `card.finding.<code>` (its English summary never reaches the chat)."""
    for recordings in SCENARIOS[name].tools.values():
        for recording in recordings:
            found = recording.result
            line = worded(
                PluginResult(found.ok, found.summary, code=found.code, values=found.values)
            )
            assert found.summary not in line


def test_every_finding_reads_chinese_whatever_its_values() -> None:
    """Each `card.finding.*` wording in zh, filled with stand-in values (a plugin's own words
    are values), carries no English of the bot's own; so do the codes no plugin test reaches
    (a Redis over its memory ratio, a rollout still waiting, a log scan cut by its time limit)."""
    say = texts("zh")
    keys = [key for key in zh.TEXTS if key.startswith("card.finding.")]
    assert len(keys) > 100  # the built-in plugins' findings are in the catalogue
    for key in keys:
        names = {name for _, name, _, _ in string.Formatter().parse(zh.TEXTS[key]) if name}
        values = {name: f"v{n}" for n, name in enumerate(sorted(names))}
        line = finding({"code": key.removeprefix("card.finding."), "values": values}, say)
        assert line is not None, key
        assert english(line, values.values()) == [], (key, line)


async def test_a_rules_diagnosis_over_real_plugins_reads_chinese() -> None:
    """A runbook whose checks run the real host and network plugins (two failing: a disk over
    a tiny threshold, a closed port), diagnosed by the rules provider, on a Chinese card:
    the failed checks' causes are worded from the plugins' codes, not their English lines."""
    registry = PluginRegistry()
    for plugin in [*host_plugins({}), *net_plugins({})]:
        registry.register(plugin)
    closed = free_port()
    steps: list[dict[str, Any]] = [
        {"plugin": "host_disk", "params": {"path": "/", "warn_percent": 0.0001}},
        {"plugin": "tcp_check", "params": {"host": "127.0.0.1", "port": closed}},
        {"plugin": "host_memory", "params": {"warn_percent": 0.01}},
        {"plugin": "host_load", "params": {}},
        {"plugin": "dns_resolve", "params": {"name": "localhost"}},
        {"plugin": "tcp_check", "params": {"host": "{labels.db}", "port": 5432}},  # no such label
    ]
    for step in steps:
        step["title_zh"], step["title_en"] = f"检查 {step['plugin']}", step["plugin"]
    book = RunbookBook.from_config(
        [{"name": "disk", "match": {"alertname": "DiskFull"}, "diagnose": steps}],
        registry,
        defaults=False,
    )
    labels = {"alertname": "DiskFull", "instance": "web-3"}
    alert = AlertContext("DiskFull on web-3", "warning", labels, {}, "web")
    found = await diagnose_with_rules(book, registry, alert)
    view = diagnosed(alert, found, "")
    card = incident_card(view, texts("zh"), incident_cards.ZONE)
    text = "\n".join(shown(card))
    assert "检查 host_disk失败：超过 0.0001%" in text
    assert f"检查 tcp_check失败：`127.0.0.1:{closed}` 无法连接" in text
    assert "检查 tcp_check未执行（告警里没有 `labels.db`）" in text  # why, from its code
    values = {alert.title, *labels.values(), *(s["title_zh"] for s in steps)}
    leaked = [(line, english(line, values)) for line in shown(card)]
    leaked = [(line, bits) for line, bits in leaked if bits]
    assert not leaked, json.dumps(leaked, ensure_ascii=False, indent=1)


def stand_ins(template: str) -> dict[str, str]:
    """A value for each placeholder of a catalogue entry (a value is never the bot's word)."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return {name: f"v{n}" for n, name in enumerate(sorted(names))}


def test_every_chinese_catalogue_entry_reads_chinese() -> None:
    """Each sentence of the zh catalogue, filled in: no English of its own (identifiers and
    settings are code spans: `llm.council`, `Authorization: Bearer …`)."""
    leaked = {}
    for key, template in zh.TEXTS.items():
        values = stand_ins(template)
        found = english(template.format(**values), values.values())
        if found:
            leaked[key] = found
    assert leaked == {}


def test_every_english_catalogue_entry_has_no_chinese() -> None:
    leaked = {key: CJK.findall(template) for key, template in en.TEXTS.items()}
    assert {key: chars for key, chars in leaked.items() if chars} == {}
