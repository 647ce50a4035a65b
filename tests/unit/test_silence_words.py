"""`/silence` as people type it: matchers copied from Alertmanager, durations in words."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workflows.silence_words import SilenceRequest, split_request
from workflows.silences import SilenceError, parse_duration, parse_matcher

H, M = timedelta(hours=1), timedelta(minutes=1)

DURATIONS = {
    "2h": 2 * H,
    "2H": 2 * H,
    "1h30m": 90 * M,
    "1h 30m": 90 * M,
    "1.5h": 90 * M,
    "90min": 90 * M,
    "45 mins": 45 * M,
    "2 hours": 2 * H,
    "2hrs": 2 * H,
    "1 day": 24 * H,
    "1d12h": 36 * H,
    "1w": 7 * 24 * H,
    "30s": timedelta(seconds=30),
    "2小时": 2 * H,
    "2 小时": 2 * H,
    "2个小时": 2 * H,
    "两小时": 2 * H,
    "两个钟头": 2 * H,
    "30分钟": 30 * M,
    "十五分钟": 15 * M,
    "二十分钟": 20 * M,
    "半小时": 30 * M,
    "一个半小时": 90 * M,
    "1小时30分": 90 * M,
    "1天": 24 * H,
    "三天": 72 * H,
}


@pytest.mark.parametrize(("said", "meant"), DURATIONS.items())
def test_durations_as_people_write_them(said: str, meant: timedelta) -> None:
    assert parse_duration(said) == meant


@pytest.mark.parametrize("said", ["", "10x", "2", "h", "8d", "0m", "两周", "二二小时", "2h foo"])
def test_what_is_no_silence_duration_is_refused(said: str) -> None:
    with pytest.raises(SilenceError) as refused:
        parse_duration(said)
    assert refused.value.code in {"bad_duration", "duration_range"}


REQUESTS = {
    "alertname=DiskFull 2h": ("alertname=DiskFull", "2h", ""),
    'alertname=DiskFull,instance=~"db-.*" 2h 维护中': (
        'alertname=DiskFull,instance=~"db-.*"',
        "2h",
        "维护中",
    ),
    '{alertname="Disk Full", env="prod"} 2 小时 升级 数据库': (
        '{alertname="Disk Full", env="prod"}',
        "2 小时",
        "升级 数据库",
    ),
    "alertname = DiskFull , env=prod 1h30m 维护": (
        "alertname = DiskFull , env=prod",
        "1h30m",
        "维护",
    ),
    "alertname=X 30 minutes deploying": ("alertname=X", "30 minutes", "deploying"),
    "2h alertname=DiskFull 维护": ("alertname=DiskFull", "2h", "维护"),
    '半小时 {job="node"}': ('{job="node"}', "半小时", ""),
    "foo 2h": ("foo", "2h", ""),
    "alertname=X 10x reason": ("alertname=X", "10x", "reason"),
    "alertname=X": ("alertname=X", "", ""),
}


@pytest.mark.parametrize(("args", "parts"), REQUESTS.items())
def test_a_silence_request_splits_into_matcher_duration_and_reason(
    args: str, parts: tuple[str, str, str]
) -> None:
    assert split_request(args) == SilenceRequest(*parts)


def test_matchers_copied_from_alertmanager() -> None:
    assert parse_matcher('{alertname="Disk Full", env=~"prod|staging"}') == [
        ["alertname", "=", "Disk Full"],
        ["env", "=~", "prod|staging"],
    ]
    assert parse_matcher('job!~"a,b", team = "db" ') == [["job", "!~", "a,b"], ["team", "=", "db"]]
