"""Specs to APScheduler 3 triggers: weekday names (never numbers), cron strings, DST, the
intermediate form's JSON, the rule in words. Fire times are compared as instants."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tests.schedule.test_corpus import corpus
from workflows.schedule import (
    COALESCE,
    JOB_DEFAULTS,
    MISFIRE_GRACE_TIME,
    Calendar,
    Daily,
    Every,
    MonthDays,
    NthWeekdays,
    Once,
    Spec,
    SpecError,
    TimeOfDay,
    Weekly,
    Window,
    cron_of,
    describe,
    from_json,
    kind_of,
    next_runs,
    parse,
    trigger_for,
    trigger_for_cron,
)
from workflows.schedule.compiler import DayStepTrigger, WallClockCronTrigger
from workflows.schedule.spec import (
    WORKDAYS,
    DayFromEnd,
    Either,
    Festival,
    MonthWorkday,
    WeekStep,
    Workdays,
    to_json,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
MONDAY = datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def utc(moments: list[datetime]) -> list[datetime]:
    """Instants, comparable whatever their zone: Python compares two datetimes of one zone by
    wall clock (and `==` across zones is False inside a repeated hour, PEP 495)."""
    return [moment.astimezone(UTC) for moment in moments]


def fires(trigger: object, now: datetime, count: int) -> list[datetime]:
    """Iterate a trigger the way the scheduler does."""
    found: list[datetime] = []
    previous = None
    while len(found) < count:
        fire = trigger.get_next_fire_time(previous, now)  # type: ignore[attr-defined]
        if fire is None:
            break
        found.append(fire)
        previous = now = fire
    return found


def weekdays_at_nine() -> Calendar:
    result = parse("每周一到周五早上9点检查服务器健康", now=MONDAY, timezone="Asia/Shanghai")
    assert isinstance(result.spec, Calendar)
    return result.spec


# ---- weekday numbering -------------------------------------------------------------------------


def test_weekdays_at_nine_is_0_9_star_star_1_5_and_fires_monday_to_friday() -> None:
    spec = weekdays_at_nine()
    assert cron_of(spec) == "0 9 * * 1-5"
    runs = next_runs(spec, MONDAY, 15)
    expected = [
        datetime(2026, 3, day, 9, 0, tzinfo=SHANGHAI)
        for day in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20)
    ]
    assert utc(runs) == utc(expected)
    assert {run.strftime("%a") for run in runs} == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    # the standard cron string, read with Sunday = 0, gives the very same instants
    assert utc(fires(trigger_for_cron("0 9 * * 1-5", "Asia/Shanghai"), MONDAY, 15)) == utc(expected)


def test_friday_at_17_is_0_17_star_star_5_and_fires_on_fridays_only() -> None:
    result = parse("every Friday at 5pm send the report", now=MONDAY, timezone="Asia/Shanghai")
    assert result.spec is not None
    assert cron_of(result.spec) == "0 17 * * 5"
    expected = [datetime(2026, 3, day, 17, 0, tzinfo=SHANGHAI) for day in (6, 13, 20, 27)]
    assert utc(next_runs(result.spec, MONDAY, 4)) == utc(expected)
    assert utc(fires(trigger_for_cron("0 17 * * 5", "Asia/Shanghai"), MONDAY, 4)) == utc(expected)


def test_numeric_weekdays_passed_to_apscheduler_are_off_by_one() -> None:
    """Why triggers name their days: APScheduler numbers Monday 0."""
    naive = CronTrigger.from_crontab("0 9 * * 1-5", timezone=SHANGHAI)
    days = {fire.strftime("%a") for fire in fires(naive, MONDAY, 10)}
    assert days == {"Tue", "Wed", "Thu", "Fri", "Sat"}
    ours = trigger_for(weekdays_at_nine())
    assert isinstance(ours, CronTrigger)
    assert "day_of_week='mon,tue,wed,thu,fri'" in str(ours)


@pytest.mark.parametrize(
    ("cron", "days"),
    [
        ("0 9 * * 0", {"Sun"}),
        ("0 9 * * 7", {"Sun"}),
        ("0 9 * * 6,0", {"Sat", "Sun"}),
        ("0 9 * * 5-7", {"Fri", "Sat", "Sun"}),
        ("0 9 * * sun-tue", {"Sun", "Mon", "Tue"}),
        ("0 9 * * */2", {"Sun", "Tue", "Thu", "Sat"}),
    ],
)
def test_standard_cron_weekdays_read_with_sunday_zero(cron: str, days: set[str]) -> None:
    trigger = trigger_for_cron(cron, "UTC")
    assert {fire.strftime("%a") for fire in fires(trigger, MONDAY, 14)} == days


def test_cron_with_day_of_month_and_weekday_ors_them_like_vixie_cron() -> None:
    trigger = trigger_for_cron("0 9 1 * 1", "UTC")
    assert isinstance(trigger, OrTrigger)
    runs = fires(trigger, datetime(2026, 3, 25, tzinfo=UTC), 4)
    assert [run.date().isoformat() for run in runs] == [
        "2026-03-30",
        "2026-04-01",
        "2026-04-06",
        "2026-04-13",
    ]


def test_bad_cron_strings_are_refused() -> None:
    for bad in ("0 9 * *", "0 9 * * 8", "61 9 * * *"):
        with pytest.raises(SpecError):
            trigger_for_cron(bad, "UTC")


def test_every_cron_string_we_print_means_exactly_the_schedule() -> None:
    """For each corpus schedule with a cron string, that string (read as standard cron) fires
    at the same instants as the trigger the scheduler will use."""
    checked = 0
    for entry in corpus():
        if entry["status"] != "scheduled":
            continue
        now = datetime.fromisoformat(entry["now"])
        result = parse(entry["text"], now=now, timezone=entry["tz"])
        assert result.spec is not None
        cron = cron_of(result.spec)
        if cron is None:
            continue
        ours = next_runs(result.spec, now, 12)
        theirs = fires(trigger_for_cron(cron, result.spec.timezone), now, 12)
        assert utc(ours) == utc(theirs), (entry["text"], cron)
        checked += 1
    assert checked >= 100


# ---- triggers ----------------------------------------------------------------------------------


def test_trigger_kinds() -> None:
    once = Once(datetime(2026, 5, 1, 9, tzinfo=SHANGHAI), "Asia/Shanghai")
    assert isinstance(trigger_for(once), DateTrigger)
    assert kind_of(once) == "once"
    last = Calendar((TimeOfDay(23),), MonthDays((), True), "Asia/Shanghai")
    assert "day='last'" in str(trigger_for(last))
    assert kind_of(last) == "extended"
    assert cron_of(last) is None
    nth = Calendar((TimeOfDay(10),), NthWeekdays(((1, "mon"), (-1, "fri"))), "UTC")
    assert "day='1st mon,last fri'" in str(trigger_for(nth))
    assert kind_of(nth) == "extended"
    step = Every(45, "UTC", anchor=datetime(2026, 3, 2, 10, 45, tzinfo=UTC))
    assert isinstance(trigger_for(step), IntervalTrigger)
    assert kind_of(step) == "interval"
    assert cron_of(step) is None
    window = Every(30, "UTC", Window(TimeOfDay(9, 30), TimeOfDay(17)))
    assert isinstance(trigger_for(window), OrTrigger)
    assert kind_of(window) == "extended"
    aligned = Every(30, "UTC", Window(TimeOfDay(9), TimeOfDay(17, 30)), WORKDAYS)
    assert cron_of(aligned) == "*/30 9-17 * * 1-5"
    inclusive = Every(180, "UTC", Window(TimeOfDay(9), TimeOfDay(21)))  # both ends fire
    assert cron_of(inclusive) == "0 9-21/3 * * *"
    assert kind_of(aligned) == "cron"
    assert cron_of(Every(120, "UTC")) == "0 */2 * * *"
    assert cron_of(Every(1, "UTC")) == "* * * * *"


def test_calendar_with_times_that_are_not_a_product_uses_an_or_trigger() -> None:
    spec = Calendar((TimeOfDay(9), TimeOfDay(18, 30)), Daily(), "Asia/Shanghai")
    assert isinstance(trigger_for(spec), OrTrigger)
    assert cron_of(spec) is None
    runs = next_runs(spec, MONDAY, 4)
    assert [run.strftime("%d %H:%M") for run in runs] == [
        "02 09:00",
        "02 18:30",
        "03 09:00",
        "03 18:30",
    ]


def test_a_step_without_an_anchor_that_the_clock_cannot_carry_is_refused() -> None:
    with pytest.raises(SpecError):
        trigger_for(Every(45, "UTC"))


def test_next_runs_come_from_the_trigger_itself() -> None:
    spec = Calendar((TimeOfDay(9),), Weekly(("mon", "wed")), "America/New_York")
    now = datetime(2026, 3, 1, tzinfo=NEW_YORK)
    assert utc(next_runs(spec, now, 6)) == utc(fires(trigger_for(spec), now, 6))
    one = Once(datetime(2026, 5, 1, 9, tzinfo=SHANGHAI), "Asia/Shanghai")
    assert utc(next_runs(one, MONDAY, 5)) == utc([datetime(2026, 5, 1, 9, tzinfo=SHANGHAI)])


def test_job_defaults_are_deliberate() -> None:
    assert COALESCE is True
    assert MISFIRE_GRACE_TIME == 300
    assert JOB_DEFAULTS == {"coalesce": True, "misfire_grace_time": 300, "max_instances": 1}


# ---- DST ---------------------------------------------------------------------------------------


def test_spring_forward_new_york_daily_0230_fires_once_an_hour_late() -> None:
    spec = Calendar((TimeOfDay(2, 30),), Daily(), "America/New_York")
    runs = next_runs(spec, datetime(2026, 3, 7, 0, 0, tzinfo=NEW_YORK), 3)
    assert utc(runs) == utc(
        [
            at("2026-03-07T02:30:00-05:00"),
            at("2026-03-08T03:30:00-04:00"),  # 02:30 does not exist that day
            at("2026-03-09T02:30:00-04:00"),
        ]
    )
    assert [run.isoformat() for run in runs][1] == "2026-03-08T03:30:00-04:00"


def test_fall_back_new_york_daily_0130_fires_once() -> None:
    spec = Calendar((TimeOfDay(1, 30),), Daily(), "America/New_York")
    runs = next_runs(spec, datetime(2026, 10, 31, 12, 0, tzinfo=NEW_YORK), 3)
    assert utc(runs) == utc(
        [
            at("2026-11-01T01:30:00-04:00"),
            at("2026-11-02T01:30:00-05:00"),
            at("2026-11-03T01:30:00-05:00"),
        ]
    )
    plain = CronTrigger(hour=1, minute=30, timezone=NEW_YORK)  # what we avoid: two fires
    twice = fires(plain, datetime(2026, 10, 31, 12, 0, tzinfo=NEW_YORK), 2)
    assert twice[1].astimezone(UTC) - twice[0].astimezone(UTC) == timedelta(hours=1)
    assert isinstance(trigger_for(spec), WallClockCronTrigger)


def test_london_spring_and_fall() -> None:
    spec = Calendar((TimeOfDay(1, 30),), Daily(), "Europe/London")
    spring = next_runs(spec, datetime(2026, 3, 28, 12, 0, tzinfo=LONDON), 2)
    assert utc(spring) == utc([at("2026-03-29T02:30:00+01:00"), at("2026-03-30T01:30:00+01:00")])
    fall = next_runs(spec, datetime(2026, 10, 24, 12, 0, tzinfo=LONDON), 2)
    assert utc(fall) == utc([at("2026-10-25T01:30:00+01:00"), at("2026-10-26T01:30:00+00:00")])


def test_steps_keep_elapsed_time_through_the_repeated_hour() -> None:
    hourly = Every(60, "America/New_York")
    runs = next_runs(hourly, datetime(2026, 11, 1, 0, 30, tzinfo=NEW_YORK), 3)
    assert [run.astimezone(UTC).hour for run in runs] == [5, 6, 7]
    ninety = Every(90, "America/New_York", anchor=at("2026-03-08T00:30:00-05:00"))
    runs = utc(next_runs(ninety, at("2026-03-08T00:00:00-05:00"), 3))
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(minutes=90)] * 2


def test_day_steps_keep_the_wall_clock_time_across_dst() -> None:
    spec = Every(2 * 1440, "America/New_York", anchor=at("2026-03-05T10:00:00-05:00"))
    assert isinstance(trigger_for(spec), DayStepTrigger)
    runs = next_runs(spec, at("2026-03-04T12:00:00-05:00"), 4)
    assert [run.isoformat() for run in runs] == [
        "2026-03-05T10:00:00-05:00",
        "2026-03-07T10:00:00-05:00",
        "2026-03-09T10:00:00-04:00",
        "2026-03-11T10:00:00-04:00",
    ]
    later = next_runs(spec, at("2026-03-10T12:00:00-04:00"), 1)
    assert utc(later) == utc([at("2026-03-11T10:00:00-04:00")])


def test_times_are_instants_with_the_zone_kept() -> None:
    spec = Calendar((TimeOfDay(9),), Daily(), "America/New_York")
    run = next_runs(spec, datetime(2026, 6, 1, tzinfo=UTC), 1)[0]
    assert run.tzinfo == NEW_YORK
    assert run.astimezone(UTC) == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


# ---- the intermediate form ---------------------------------------------------------------------

SPECS = [
    Once(datetime(2026, 5, 1, 9, tzinfo=SHANGHAI), "Asia/Shanghai"),
    Calendar((TimeOfDay(9), TimeOfDay(18)), Daily(), "Asia/Shanghai"),
    Calendar((TimeOfDay(9),), Weekly(WORKDAYS), "America/New_York"),
    Calendar((TimeOfDay(10),), MonthDays((1, 15), True), "UTC"),
    Calendar((TimeOfDay(10),), NthWeekdays(((2, "tue"),)), "Europe/London"),
    Calendar((TimeOfDay(0),), MonthDays((1,)), "Asia/Tokyo", (1,)),
    Calendar((TimeOfDay(17),), DayFromEnd(2), "Asia/Shanghai"),
    Every(30, "Asia/Shanghai", Window(TimeOfDay(9), TimeOfDay(18)), WORKDAYS),
    Every(90, "UTC", anchor=datetime(2026, 3, 2, 11, 30, tzinfo=UTC)),
    Calendar((TimeOfDay(9),), Daily(), "Asia/Shanghai", (), date(2026, 3, 4), date(2026, 3, 6)),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: type(s).__name__)
def test_json_round_trip_keeps_everything(spec: Spec) -> None:
    data = spec.to_json()
    assert data["kind"] == spec.kind
    assert data["timezone"] == spec.timezone
    again = from_json(json.loads(json.dumps(data)))
    assert again == spec
    assert utc(next_runs(again, MONDAY, 3)) == utc(next_runs(spec, MONDAY, 3))


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"form": "calendar"},
        {
            "form": "calendar",
            "timezone": "Mars/Base",
            "times": ["09:00"],
            "days": {"type": "daily"},
        },
        {"form": "calendar", "timezone": "UTC", "times": ["9"], "days": {"type": "daily"}},
        {"form": "calendar", "timezone": "UTC", "times": ["25:00"], "days": {"type": "daily"}},
        {"form": "calendar", "timezone": "UTC", "times": ["09:00"], "days": {"type": "weekly"}},
        {
            "form": "calendar",
            "timezone": "UTC",
            "times": ["09:00"],
            "days": {"type": "weekly", "weekdays": [1, 2]},
        },
        {
            "form": "calendar",
            "timezone": "UTC",
            "times": ["09:00"],
            "days": {"type": "monthly", "days": [0]},
        },
        {
            "form": "calendar",
            "timezone": "UTC",
            "times": ["09:00"],
            "days": {"type": "nth", "positions": [[6, "mon"]]},
        },
        {
            "form": "calendar",
            "timezone": "UTC",
            "times": ["09:00"],
            "days": {"type": "from_end", "nth": 1},
        },
        {"form": "every", "timezone": "UTC", "minutes": 0},
        {"form": "every", "timezone": "UTC", "minutes": "30"},
        {"form": "once", "timezone": "UTC", "at": "2026-05-01T09:00:00"},
        {"form": "once", "timezone": "UTC", "at": "tomorrow"},
        {"form": "weekly", "timezone": "UTC"},
        {
            "form": "calendar",
            "timezone": "UTC",
            "times": ["09:00"],
            "days": {"type": "daily"},
            "end": "2026-13-01",
        },
        {
            "form": "calendar",
            "timezone": "UTC",
            "times": ["09:00"],
            "days": {"type": "daily"},
            "start": "2026-03-05",
            "end": "2026-03-04",
        },
    ],
)
def test_invalid_json_specs_are_refused(data: object) -> None:
    with pytest.raises(SpecError):
        from_json(data)


def test_a_last_day_ends_the_schedule_in_its_zone() -> None:
    """到3月6日为止: the fires of that day are the last ones, in the zone of the schedule; the
    scheduler gets None after them (the job is done) and no cron pretends to say it."""
    for days in (Daily(), Workdays("cn"), Weekly(WORKDAYS)):
        spec = Calendar(
            (TimeOfDay(9), TimeOfDay(23, 30)), days, "Asia/Shanghai", end=date(2026, 3, 6)
        )
        runs = next_runs(spec, MONDAY, 10)
        assert [run.isoformat() for run in runs][-2:] == [
            "2026-03-06T09:00:00+08:00",
            "2026-03-06T23:30:00+08:00",
        ]
        assert cron_of(spec) is None
        assert trigger_for(spec).get_next_fire_time(runs[-1], runs[-1]) is None
        assert describe(spec, "zh").endswith("（到 2026-03-06 为止）")
        assert describe(spec, "en").endswith("(until 2026-03-06)")
    both = Calendar((TimeOfDay(9),), Daily(), "UTC", (), date(2026, 3, 4), date(2026, 3, 6))
    assert describe(both, "zh") == "每天 09:00（2026-03-04 至 2026-03-06）"
    assert describe(both, "en") == "every day at 09:00 (from 2026-03-04, until 2026-03-06)"


# ---- the rule in words -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zh", "en"),
    [
        ("周一到周五早上9点", "每个工作日 09:00", "every weekday at 09:00"),
        (
            "每个工作日早上9点",
            "每个工作日（中国法定） 09:00",
            "every working day (China) at 09:00",
        ),
        ("every Friday at 5pm", "每周五 17:00", "every Friday at 17:00"),
        ("每月最后一天晚上11点", "每月最后一天 23:00", "on the last day of every month at 23:00"),
        (
            "工作日9点到18点每30分钟",
            "工作日（中国法定） 09:00–18:00 每 30 分钟",
            "every 30 minutes from 09:00 to 18:00 on working days (China)",
        ),
        (
            "每周一三五上午10点",
            "每周一、周三、周五 10:00",
            "every Monday, Wednesday and Friday at 10:00",
        ),
        (
            "每月第一个周一上午10点",
            "每月第一个周一 10:00",
            "on the first Monday of every month at 10:00",
        ),
        (
            "每月1号和15号上午10点",
            "每月1日、15日 10:00",
            "on the 1st and the 15th of every month at 10:00",
        ),
        (
            "每年12月25日上午10点",
            "每年12月25日 10:00",
            "on the 25th of December every year at 10:00",
        ),
        (
            "每月倒数第二天下午5点",
            "每月倒数第 2 天 17:00",
            "on the 2nd-to-last day of every month at 17:00",
        ),
        ("every 2 hours", "每 2 小时", "every 2 hours"),
        ("每天早上9点和晚上6点", "每天 09:00、18:00", "every day at 09:00 and 18:00"),
        ("明天下午3点", "2026-03-03 15:00（一次）", "once, on 2026-03-03 15:00"),
    ],
)
def test_describe(text: str, zh: str, en: str) -> None:
    result = parse(text, now=datetime(2026, 3, 2, 10, tzinfo=SHANGHAI), timezone="Asia/Shanghai")
    assert result.spec is not None
    assert describe(result.spec, "zh") == zh
    assert describe(result.spec, "en") == en


def test_new_day_kinds_round_trip_through_json_and_compile() -> None:
    """Working days, a working day of the month, every N weeks, festivals, either day and a
    start day are stored as JSON and read back into the same trigger."""
    zone = "Asia/Shanghai"
    nine = (TimeOfDay(9),)
    specs = [
        Calendar(nine, Workdays("cn"), zone),
        Calendar(nine, MonthWorkday(nth=-1, calendar="cn"), zone),
        Calendar(nine, MonthWorkday(near=15), zone),
        Calendar(nine, WeekStep(("mon", "thu"), 2, date(2026, 3, 2)), zone),
        Calendar(nine, Festival("zhongqiu"), zone),
        Calendar(nine, Festival("lunar-12-23"), zone),
        Calendar(nine, Either(MonthDays((1,)), Weekly(("mon",))), zone),
        Calendar(nine, Daily(), zone, start=date(2026, 4, 1)),
        Every(60, zone, Window(TimeOfDay(9), TimeOfDay(18)), workdays="cn"),
    ]
    now = datetime(2026, 3, 2, 10, tzinfo=SHANGHAI)
    for spec in specs:
        again = from_json(json.loads(json.dumps(to_json(spec))))
        assert again == spec
        assert next_runs(again, now, 3) == next_runs(spec, now, 3)
        assert len(next_runs(spec, now, 3)) == 3, spec
    start = next_runs(specs[7], now, 1)[0]
    assert start.isoformat() == "2026-04-01T09:00:00+08:00"
    assert cron_of(specs[7]) is None
    assert cron_of(specs[6]) == "0 9 1 * 1"  # cron's OR of the day of month and the weekday
