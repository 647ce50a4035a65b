"""Which silences need another approver's confirmation: those that match every alert, and
those longer than 24 hours."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workflows.silences import needs_confirmation, parse_matcher

HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    "matcher",
    ['alertname=~".*"', "alertname=~.+", 'env!=""', "env!=staging", 'alertname=~".*",env!~"^$"'],
)
def test_matchers_that_hold_back_every_alert(matcher: str) -> None:
    assert needs_confirmation(parse_matcher(matcher), 2 * HOUR) == ["everything"]


@pytest.mark.parametrize(
    "matcher", ["alertname=WebDown", 'instance=~"db-.*"', 'alertname=~".*",env=prod']
)
def test_matchers_that_name_something(matcher: str) -> None:
    assert needs_confirmation(parse_matcher(matcher), 24 * HOUR) == []


def test_over_a_day_needs_confirmation() -> None:
    terms = parse_matcher("alertname=WebDown")
    assert needs_confirmation(terms, 24 * HOUR + timedelta(minutes=1)) == ["long"]
    assert needs_confirmation(parse_matcher('env!=""'), 48 * HOUR) == ["everything", "long"]
