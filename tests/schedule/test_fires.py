"""What the scheduler gets for the forms read in round 3: the trigger built from the parsed spec,
iterated the way APScheduler 3 does (Monday is weekday 0 there), fires at the instants worked
out by hand, on the weekdays named, and stops after a counted or dated end."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.schedule.test_compiler import fires, utc
from workflows.schedule import cron_of, parse, trigger_for, trigger_for_cron

SHANGHAI = ZoneInfo("Asia/Shanghai")
TUESDAY = datetime(2026, 3, 3, 10, 7, tzinfo=SHANGHAI)


def at(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-{day}T{clock}:00").replace(tzinfo=SHANGHAI)


def trigger(text: str) -> object:
    result = parse(text, now=TUESDAY, timezone="Asia/Shanghai")
    assert result.status == "scheduled", (text, result.question)
    assert result.spec is not None
    return trigger_for(result.spec)


def test_month_days_written_without_separators_fire_on_those_days() -> None:
    """每月5号15号25号: the 5th, 15th and 25th; its cron string fires at the same instants."""
    result = parse("每月5号15号25号上午10点对账", now=TUESDAY, timezone="Asia/Shanghai")
    assert result.spec is not None
    assert cron_of(result.spec) == "0 10 5,15,25 * *"
    days = ("03-05", "03-15", "03-25", "04-05", "04-15", "04-25")
    expected = [at(day, "10:00") for day in days]
    assert utc(fires(trigger_for(result.spec), TUESDAY, 6)) == utc(expected)
    standard = trigger_for_cron("0 10 5,15,25 * *", "Asia/Shanghai")
    assert utc(fires(standard, TUESDAY, 6)) == utc(expected)


def test_monday_wednesday_friday_fire_on_those_weekdays_only() -> None:
    """每周一三五: APScheduler's day 0 is Monday; the trigger names days, so no shift."""
    found = fires(trigger("每周一三五上午10点 跑回归测试"), TUESDAY, 6)
    assert [run.strftime("%a %d") for run in found] == [
        "Wed 04",
        "Fri 06",
        "Mon 09",
        "Wed 11",
        "Fri 13",
        "Mon 16",
    ]
    standard = trigger_for_cron("0 10 * * 1,3,5", "Asia/Shanghai")
    assert utc(fires(standard, TUESDAY, 6)) == utc(found)


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("每周一上午10点开周会，共4次", ("03-09", "03-16", "03-23", "03-30")),
        ("every Monday at 10am, 4 times, post the notes", ("03-09", "03-16", "03-23", "03-30")),
        ("每周一上午10点开周会，到3月底为止", ("03-09", "03-16", "03-23", "03-30")),
    ],
)
def test_a_counted_or_dated_end_stops_the_trigger(text: str, days: tuple[str, ...]) -> None:
    """After the last fire the trigger gives None: the scheduler drops the job."""
    found = fires(trigger(text), TUESDAY, 10)
    assert utc(found) == utc([at(day, "10:00") for day in days])


def test_a_window_across_midnight_fires_through_the_night() -> None:
    """晚上10点到早上6点每小时 / "from 10pm to 6am the next morning": 22:00 … 06:00."""
    night = [f"{hour:02d}:00" for hour in (22, 23)], [f"{hour:02d}:00" for hour in range(7)]
    expected = [at("03-03", c) for c in night[0]] + [at("03-04", c) for c in night[1]]
    expected.append(at("03-04", "22:00"))
    for text in (
        "晚上10点到早上6点 每小时跑一次批任务",
        "from 10pm to 6am the next morning every hour check the batch jobs",
    ):
        assert utc(fires(trigger(text), TUESDAY, 10)) == utc(expected), text


def test_a_window_said_after_the_task_bounds_the_step() -> None:
    """每隔10分钟检查一次，从早上9点到晚上6点: 10:10 … 18:00, then 09:00 the next day."""
    found = fires(trigger("每隔10分钟检查一次，从早上9点到晚上6点"), TUESDAY, 49)
    assert found[0] == at("03-03", "10:10")
    assert found[-2:] == [at("03-03", "18:00"), at("03-04", "09:00")]
