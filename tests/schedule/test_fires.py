"""What the scheduler gets for the forms read in round 3: the trigger built from the parsed spec,
iterated the way APScheduler 3 does (Monday is weekday 0 there), fires at the instants worked
out by hand, on the weekdays named, and stops after a counted or dated end."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.schedule.test_compiler import fires, utc
from workflows.schedule import (
    Every,
    cron_of,
    from_json,
    parse,
    to_json,
    trigger_for,
    trigger_for_cron,
)

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


@pytest.mark.parametrize(
    ("text", "zone", "first", "last", "count"),
    [
        ("每隔30分钟检查一次，到18点为止", "Asia/Shanghai", "03-03 10:30", "03-03 18:00", 16),
        ("每隔1小时检查，直到凌晨2点", "Asia/Shanghai", "03-03 11:00", "03-04 02:00", 16),
        ("every 30 minutes until 6pm check the deploy", "UTC", "03-03 10:30", "03-03 18:00", 16),
        ("每5分钟检查一次，共3次", "Asia/Shanghai", "03-03 10:10", "03-03 10:20", 3),
        ("每隔2小时检查一次，持续2天", "Asia/Shanghai", "03-03 12:00", "03-04 22:00", 18),
    ],
)
def test_a_step_with_an_end_stops_there(
    text: str, zone: str, first: str, last: str, count: int
) -> None:
    """每隔30分钟…到18点为止, "until 6pm", 共3次, 持续2天: the step's fires up to the end, then
    None (the scheduler drops the job); the end survives the spec's JSON."""
    local = ZoneInfo(zone)
    now = TUESDAY.replace(tzinfo=local)
    result = parse(text, now=now, timezone=zone)
    assert isinstance(result.spec, Every), (text, result.question)
    assert from_json(to_json(result.spec)) == result.spec
    assert cron_of(result.spec) is None
    found = fires(trigger_for(from_json(to_json(result.spec))), now, count + 5)
    stamp = [run.astimezone(local).strftime("%m-%d %H:%M") for run in found]
    assert (stamp[0], stamp[-1], len(stamp)) == (first, last, count)


def test_a_count_ends_with_a_whole_day_or_is_asked() -> None:
    """Twice a day from 10:07 (18:00, then 09:00 and 18:00 each day): 3 runs end with the
    second day whole; 4 would stop after the third day's 09:00, so that is asked."""
    whole = parse("每天9点和18点发日报，共3次", now=TUESDAY, timezone="Asia/Shanghai")
    assert whole.spec is not None
    found = fires(trigger_for(whole.spec), TUESDAY, 5)
    assert found == [at("03-03", "18:00"), at("03-04", "09:00"), at("03-04", "18:00")]
    for text, words in (
        ("每天9点和18点发日报，共4次", "“共4次”会停在某一天的中途"),
        ("every day at 9am and 6pm, 4 times, send the digest", "4 runs would stop partway"),
    ):
        asked = parse(text, now=TUESDAY, timezone="Asia/Shanghai")
        assert asked.status == "clarify", text
        assert asked.question is not None
        assert words in asked.question
