"""When a cover of a shift ends, as people say it (`workflows.oncall.cover.until`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflows.oncall.cover import until

NOW = datetime(2026, 12, 8, 10, 15, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Tuesday morning


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 8 + day, hour, minute, tzinfo=NOW.tzinfo)


@pytest.mark.parametrize(
    ("said", "ends"),
    [
        ("2h", NOW + timedelta(hours=2)),
        ("1h30m", NOW + timedelta(minutes=90)),
        ("90分钟", NOW + timedelta(minutes=90)),
        ("替我值班3个小时", NOW + timedelta(hours=3)),
        ("两个半小时", NOW + timedelta(hours=2, minutes=30)),
        ("半小时", NOW + timedelta(minutes=30)),
        ("一天", NOW + timedelta(days=1)),
        ("1小时30分钟", NOW + timedelta(minutes=90)),
        ("2 hours", NOW + timedelta(hours=2)),
        ("18:00", at(0, 18)),
        ("到18点", at(0, 18)),
        ("下午6点半", at(0, 18, 30)),
        ("今晚8点", at(0, 20)),
        ("晚上十一点半", at(0, 23, 30)),
        ("中午12点", at(0, 12)),
        ("明天早上9点", at(1, 9)),
        ("替我值班到明早9点", at(1, 9)),
        ("后天9:30", at(2, 9, 30)),
        ("8点", at(1, 8)),  # 08:00 has passed today: tomorrow's
        ("凌晨2点", at(1, 2)),
        ("十点", at(1, 10)),
    ],
)
def test_a_cover_ends_when_the_sentence_says(said: str, ends: datetime) -> None:
    assert until(said, NOW) == ends


@pytest.mark.parametrize("said", ["下周", "今天9点", "一会儿", "", "25点", "明天"])
def test_a_sentence_naming_no_end_to_come_is_refused(said: str) -> None:
    with pytest.raises(ValueError, match=r"names no end|has passed|not a time of day"):
        until(said, NOW)
