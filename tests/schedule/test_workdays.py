"""China's working days: 工作日 under `schedules.workdays: cn` skips public holidays and works the
adjusted weekends (调休); a year the calendar does not cover yet is said on the card; Monday to
Friday and standard cron strings keep their meaning. Also the festivals of the lunar calendar."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, load_settings
from cards.schedules import ScheduleView, confirm_card
from cards.texts import texts
from tests.unit.test_cards import shown
from workflows.schedule import Calendar, Every, parse
from workflows.schedule.compiler import cron_of, next_runs, trigger_for_cron
from workflows.schedule.holidays import covered, festival_date, is_workday, uncovered
from workflows.schedule.spec import Workdays, workday_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


def days_of(text: str, now: datetime, count: int, **options: str) -> list[date]:
    result = parse(text, now=now, timezone="Asia/Shanghai", **options)
    assert result.spec is not None, result.question
    return [run.date() for run in next_runs(result.spec, now, count)]


def test_workdays_skip_national_day_and_work_the_adjusted_saturday() -> None:
    now = datetime(2026, 9, 28, 10, tzinfo=SHANGHAI)  # a Monday before 国庆
    runs = days_of("每个工作日早上9点检查服务器", now, 6)
    assert runs == [
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 8),  # 1–7 October off (国庆)
        date(2026, 10, 9),
        date(2026, 10, 10),  # a Saturday worked in lieu
        date(2026, 10, 12),
    ]


def test_the_spring_festival_weekend_in_lieu_is_a_workday() -> None:
    assert is_workday(date(2026, 2, 14), "cn")  # a Saturday worked in lieu
    assert not is_workday(date(2026, 2, 17), "cn")  # 春节
    assert not is_workday(date(2026, 2, 14), "mon-fri")


def test_business_days_follow_the_calendar_but_weekdays_stay_monday_to_friday() -> None:
    now = datetime(2026, 9, 30, 10, tzinfo=SHANGHAI)
    assert days_of("every business day at 9am", now, 2) == [date(2026, 10, 8), date(2026, 10, 9)]
    assert days_of("every weekday at 9am", now, 2) == [date(2026, 10, 1), date(2026, 10, 2)]


def test_mon_fri_setting_keeps_the_plain_week() -> None:
    now = datetime(2026, 9, 30, 10, tzinfo=SHANGHAI)
    runs = days_of("每个工作日早上9点", now, 2, workdays="mon-fri")
    assert runs == [date(2026, 10, 1), date(2026, 10, 2)]
    result = parse("每个工作日早上9点", now=now, timezone="Asia/Shanghai", workdays="mon-fri")
    assert result.spec is not None
    assert cron_of(result.spec) == "0 9 * * 1-5"


def test_the_default_calendar_follows_the_zone_or_the_language() -> None:
    now = datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("America/New_York"))
    english = parse("every business day at 9am", now=now, timezone="America/New_York")
    chinese = parse("每个工作日9点", now=now, timezone="America/New_York")
    assert english.workdays == "mon-fri"
    assert chinese.workdays == "cn"


def test_a_standard_cron_string_is_still_monday_to_friday_on_holidays() -> None:
    trigger = trigger_for_cron("0 9 * * 1-5", "Asia/Shanghai")
    fire = trigger.get_next_fire_time(None, datetime(2026, 9, 30, 10, tzinfo=SHANGHAI))
    assert fire.date() == date(2026, 10, 1)  # 国庆, but cron says Thursday


def test_a_year_without_the_published_arrangement_still_skips_statutory_holidays() -> None:
    assert not covered(2027)
    now = datetime(2026, 12, 30, 10, tzinfo=SHANGHAI)
    runs = days_of("每个工作日早上9点", now, 3)
    assert date(2027, 1, 1) not in runs  # 元旦, by law
    assert runs == [date(2026, 12, 31), date(2027, 1, 4), date(2027, 1, 5)]
    result = parse("每个工作日早上9点", now=now, timezone="Asia/Shanghai")
    assert result.spec is not None
    assert uncovered(workday_calendar(result.spec), {2026, 2027}) == (2027,)


def test_the_card_says_when_the_calendar_does_not_cover_a_year() -> None:
    view = ScheduleView(
        id=1,
        task="检查服务器",
        rule="每个工作日（中国法定） 09:00",
        timezone="Asia/Shanghai",
        next_runs=(datetime(2026, 12, 31, 9, tzinfo=SHANGHAI),),
        action="",
        status="pending",
        created_by="ou_1",
        calendar_gaps=(2027,),
    )
    for language, words in (("zh", "2027 年的国务院放假安排尚未收录"), ("en", "China's 2027")):
        card = confirm_card(view, texts(language), confirm_value={}, edit_value={}, cancel_value={})
        assert words in shown(card)
    plain = confirm_card(
        ScheduleView(**{**view.__dict__, "calendar_gaps": ()}),
        texts("zh"),
        confirm_value={},
        edit_value={},
        cancel_value={},
    )
    assert "尚未收录" not in shown(plain)


def test_steps_on_working_days_follow_the_calendar() -> None:
    now = datetime(2026, 9, 30, 17, 0, tzinfo=SHANGHAI)
    result = parse("工作日9点到18点每小时检查接口", now=now, timezone="Asia/Shanghai")
    assert isinstance(result.spec, Every)
    runs = next_runs(result.spec, now, 3)
    assert [r.isoformat() for r in runs] == [
        "2026-09-30T17:00:00+08:00",
        "2026-09-30T18:00:00+08:00",  # the window's end is included
        "2026-10-08T09:00:00+08:00",
    ]


def test_festivals_follow_the_lunar_calendar() -> None:
    assert festival_date("chuxi", 2027) == date(2027, 2, 5)
    assert festival_date("zhongqiu", 2026) == date(2026, 9, 25)
    now = datetime(2026, 3, 2, 10, tzinfo=SHANGHAI)
    assert days_of("每年中秋节上午10点发祝福", now, 3) == [
        date(2026, 9, 25),
        date(2027, 9, 15),
        date(2028, 10, 3),
    ]
    assert days_of("春节早上8点发红包", now, 1) == [date(2027, 2, 6)]
    result = parse("每个工作日9点", now=now, timezone="Asia/Shanghai")
    assert isinstance(result.spec, Calendar)
    assert result.spec.days == Workdays("cn")


def test_the_setting_defaults_to_china_for_shanghai_or_chinese(tmp_path: Path) -> None:
    def workdays(**overrides: object) -> str:
        return load_settings(home=str(tmp_path), **overrides).workdays

    assert workdays() == "cn"  # Asia/Shanghai, zh
    assert workdays(timezone="Europe/Berlin", language="en") == "mon-fri"
    assert workdays(timezone="Europe/Berlin", language="zh") == "cn"
    assert workdays(timezone="Asia/Shanghai", language="en") == "cn"
    assert workdays(schedules={"workdays": "mon-fri"}) == "mon-fri"
    with pytest.raises(ConfigError):
        workdays(schedules={"workdays": "uk"})
