"""The hygiene rules: which suggestion a fingerprint gets, with exactly which parameters."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from plugins.runbooks import RunbookConfig
from storage.reports import FingerprintFacts, HygieneFacts
from workflows.hygiene import (
    HygieneRules,
    Suggestion,
    flapping,
    for_of,
    runbook_yaml,
    silence_matcher,
    suggest,
    threshold_yaml,
)
from workflows.silences import matches, parse_matcher

T0 = datetime(2026, 1, 5, tzinfo=UTC)
RULES = HygieneRules()


def week(*fingerprints: FingerprintFacts) -> HygieneFacts:
    return HygieneFacts("oc_ops", T0, T0 + timedelta(days=7), fingerprints=fingerprints)


def fp(name: str, **numbers: Any) -> FingerprintFacts:
    labels = {"alertname": name, "instance": "db-1"}
    return replace(FingerprintFacts(f"fp-{name.lower()}", name, labels=labels), **numbers)


def kinds(found: list[Suggestion]) -> list[tuple[str, str]]:
    return [(s.kind, s.alertname) for s in found]


def test_a_noisy_alert_nobody_touched_gets_a_silence() -> None:
    [found] = suggest(week(fp("Probe", firing=25, alerts=25)), RULES, dedupe_window_minutes=240)
    assert (found.kind, found.reason, found.weight) == ("silence", "unhandled", 25)
    assert dict(found.params) == {"matcher": "alertname=Probe,instance=db-1", "duration": "24h"}
    terms = parse_matcher(str(found.params["matcher"]))
    assert matches(terms, {"alertname": "Probe", "instance": "db-1", "job": "x"})
    assert not matches(terms, {"alertname": "Probe", "instance": "db-2"})


def test_a_handled_alert_is_silenced_only_when_it_resolves_by_itself_quickly() -> None:
    quick = fp("Blip", firing=40, handled=2, median_auto_resolve=120.0)
    slow = fp("Real", firing=40, handled=2, median_auto_resolve=3600.0)
    found = suggest(week(quick, slow), RULES, dedupe_window_minutes=240)
    assert [(s.alertname, s.reason) for s in found] == [("Blip", "resolves_itself")]
    assert suggest(week(fp("Few", firing=19)), RULES, dedupe_window_minutes=240) == []


def test_stale_repeats_get_a_longer_window_than_they_have() -> None:
    lag = fp("Lag", stale_repeats=3, longest_stale_gap=6 * 3600.0)
    [found] = suggest(week(lag), RULES, dedupe_window_minutes=240)
    assert (found.kind, dict(found.params)) == ("dedupe", {"minutes": 420})  # 6h + 1h
    own = replace(lag, dedupe_minutes=480)
    assert suggest(week(own), RULES, dedupe_window_minutes=240) == []
    assert suggest(week(lag), RULES, dedupe_window_minutes=600) == []
    huge = replace(lag, longest_stale_gap=30 * 24 * 3600.0)
    assert suggest(week(huge), RULES, dedupe_window_minutes=240)[0].params == {"minutes": 10080}
    assert suggest(week(replace(lag, stale_repeats=2)), RULES, dedupe_window_minutes=240) == []


def test_a_recurring_alert_without_a_runbook_gets_a_skeleton() -> None:
    cert, cpu = fp("CertExpiry", incidents=3, handled=3), fp("HighCPU", incidents=5)
    covered = suggest(
        week(cert, cpu),
        RULES,
        dedupe_window_minutes=240,
        covered=lambda f: f.alertname == "HighCPU",
    )
    assert kinds(covered) == [("runbook", "CertExpiry")]
    assert dict(covered[0].params) == {"key": "alertname", "value": "CertExpiry"}
    assert suggest(week(cert), RULES, dedupe_window_minutes=240) == []  # nobody says


def test_flapping_wins_and_each_alert_gets_one_suggestion() -> None:
    both = fp("Disk", flaps=4, firing=50, incidents=4, median_open=250.0)
    found = suggest(week(both), RULES, dedupe_window_minutes=240, covered=lambda f: False)
    assert kinds(found) == [("threshold", "Disk")]
    assert dict(found[0].params) == {"for": "5m"}
    assert flapping(week(both, fp("Calm", flaps=2)), RULES) == (both,)


def test_order_is_by_rule_then_size_and_capped() -> None:
    many = [fp(f"Probe{n}", firing=20 + n) for n in range(8)]
    many += [fp("Flap", flaps=3), fp("Lag", stale_repeats=5, longest_stale_gap=3600.0)]
    shuffled = list(many)
    random.Random(7).shuffle(shuffled)
    first = suggest(week(*many), RULES, dedupe_window_minutes=60)
    again = suggest(week(*shuffled), RULES, dedupe_window_minutes=60)
    assert first == again
    assert kinds(first) == [
        ("threshold", "Flap"),
        ("silence", "Probe7"),
        ("silence", "Probe6"),
        ("silence", "Probe5"),
        ("silence", "Probe4"),
        ("silence", "Probe3"),
    ]
    wide = HygieneRules(max_suggestions=20)
    assert kinds(suggest(week(*many), wide, dedupe_window_minutes=60))[-1] == ("dedupe", "Lag")


def test_silence_matchers_only_keep_terms_that_read_back() -> None:
    odd = fp("Disk", labels={"alertname": "Disk", "instance": "a,b", "service": "db"})
    assert silence_matcher(odd) == "alertname=Disk,service=db"
    hostile = FingerprintFacts("fp-x", 'Disk"Full,x=y', labels={})
    assert silence_matcher(hostile) is None
    assert suggest(week(replace(hostile, firing=99)), RULES, dedupe_window_minutes=240) == []


@pytest.mark.parametrize(
    ("median", "wanted"),
    [(None, "1m"), (0.0, "1m"), (61.0, "2m"), (250.0, "5m"), (3000.0, "1h"), (99999.0, "2h")],
)
def test_for_covers_the_typical_flap(median: float | None, wanted: str) -> None:
    assert for_of(fp("X", median_open=median)) == wanted


def test_snippets_are_valid_yaml_that_does_what_it_says() -> None:
    name = "Disk.Full (db) *"
    [book] = yaml.safe_load(runbook_yaml("alertname", name))
    config = RunbookConfig.model_validate(book)
    assert re.fullmatch(config.match["alertname"], name)
    assert not re.fullmatch(config.match["alertname"], "DiskXFull (db) *")
    [rule] = yaml.safe_load(threshold_yaml(name, "10m"))
    assert rule == {"alert": name, "for": "10m"}
