"""Which silences need another approver's confirmation: those that match every alert (one
rule: no term picks alerts out, `{}` included), and those longer than 24 hours."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workflows.silences import SilenceError, matches, needs_confirmation, parse_matcher

HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    "matcher",
    [
        "{}",
        "{ }",
        'alertname=~".*"',
        'alertname=~".+"',
        'job=~".*"',
        'severity!=""',
        'env!=""',
        "env!=staging",
        'team=""',
        '{alertname=~".*"}',
        'alertname=~".*",env!~"^$"',
    ],
)
def test_matchers_that_hold_back_every_alert(matcher: str) -> None:
    assert needs_confirmation(parse_matcher(matcher), 2 * HOUR) == ["everything"]


@pytest.mark.parametrize(
    "matcher",
    [
        "alertname=WebDown",
        "{alertname=WebDown}",
        'instance=~"db-.*"',
        'alertname=~".*",env=prod',
        'severity!="",service=web',
    ],
)
def test_matchers_that_name_something(matcher: str) -> None:
    assert needs_confirmation(parse_matcher(matcher), 24 * HOUR) == []


def test_over_a_day_needs_confirmation() -> None:
    terms = parse_matcher("alertname=WebDown")
    assert needs_confirmation(terms, 24 * HOUR + timedelta(minutes=1)) == ["long"]
    assert needs_confirmation(parse_matcher('env!=""'), 48 * HOUR) == ["everything", "long"]


def test_the_empty_matcher_holds_back_every_alert_and_only_braces_make_it() -> None:
    assert parse_matcher("{}") == []
    assert matches([], {"alertname": "WebDown"})
    with pytest.raises(SilenceError) as caught:
        parse_matcher("")
    assert caught.value.code == "no_matcher"
