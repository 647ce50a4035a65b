"""Rotation arithmetic: properties over random schedules, instants and overrides (hypothesis),
and the cases people notice: DST, month ends, follow-the-sun layers, overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.oncall.rotation import (
    Layer,
    Rota,
    Standing,
    covers,
    next_handoff,
    on_call,
    shift_at,
)

ZONES = ("Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Sydney", "UTC")
SHANGHAI = ZoneInfo("Asia/Shanghai")
PEOPLE = ("ou_a", "ou_b", "ou_c", "ou_d")

shifts = st.sampled_from(("daily", "weekly", "monthly", "2d", "3d", "8h", "12h", "36h"))
clocks = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from((0, 30)))
instants = st.datetimes(
    min_value=datetime(2021, 1, 1), max_value=datetime(2034, 12, 31), timezones=st.just(UTC)
)
layers = st.builds(
    lambda users, shift, handoff, zone, start: Layer(
        users=users, shift=shift, handoff=handoff, zone=zone, start=start
    ),
    st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=4, unique=True).map(tuple),
    shifts,
    clocks,
    st.sampled_from(ZONES),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
)


def _zone(layer: Layer) -> ZoneInfo:
    return ZoneInfo(layer.zone or "UTC")


def _exists(day: date, moment: time, zone: ZoneInfo) -> bool:
    """Whether local `moment` on `day` exists (not skipped by a DST gap)."""
    local = datetime.combine(day, moment, tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None)


@settings(max_examples=300, deadline=None)
@given(layers, instants)
def test_the_shift_of_an_instant_contains_it_and_shifts_follow_each_other(
    layer: Layer, at: datetime
) -> None:
    zone = _zone(layer)
    shift = shift_at(layer, zone, at)
    assert shift.starts <= at < shift.ends
    following = shift_at(layer, zone, shift.ends)
    assert following.index == shift.index + 1
    assert following.starts == shift.ends
    assert shift_at(layer, zone, shift.starts) == shift


@settings(max_examples=300, deadline=None)
@given(layers, instants)
def test_calendar_shifts_hand_over_at_the_local_handoff_time(layer: Layer, at: datetime) -> None:
    unit, count = layer.length()
    zone = _zone(layer)
    shift = shift_at(layer, zone, at)
    local = shift.starts.astimezone(zone)
    wanted = time.fromisoformat(layer.handoff)
    if unit != "hours" and _exists(local.date(), wanted, zone):
        assert local.time() == wanted
    if unit == "days":
        hours = (shift.ends - shift.starts) / timedelta(hours=1)
        assert abs(hours - 24 * count) <= 1  # a DST change makes one shift an hour shorter/longer
    if unit == "hours":
        assert shift.ends - shift.starts == timedelta(hours=count)


@settings(max_examples=200, deadline=None)
@given(layers, instants)
def test_people_take_turns_in_order(layer: Layer, at: datetime) -> None:
    rota = Rota(layers=(layer,))
    members = [tuple(layer.users)]
    zone = _zone(layer)
    seen = []
    moment = at
    for _ in range(len(layer.users) + 1):
        watch = on_call(rota, members, [], moment, zone)
        seen.append(watch.people[0])
        assert watch.until is not None
        moment = watch.until
    first = layer.users.index(seen[0])
    expected = [layer.users[(first + k) % len(layer.users)] for k in range(len(seen))]
    assert seen == expected


overrides = st.lists(
    st.builds(
        lambda user, start, hours: Standing(user, start, start + timedelta(hours=hours)),
        st.sampled_from(("ou_x", "ou_y")),
        instants,
        st.integers(1, 72),
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(layers, overrides, instants)
def test_the_newest_override_wins_and_the_next_handoff_really_changes_hands(
    layer: Layer, standing: list[Standing], at: datetime
) -> None:
    rota = Rota(layers=(layer,))
    members = [tuple(layer.users)]
    zone = _zone(layer)
    now = on_call(rota, members, standing, at, zone)
    covering = [c for c in standing if c.starts <= at < c.ends]
    if covering:
        assert now.people == (covering[-1].user,)
        assert now.layer is None
    ahead = next_handoff(rota, members, standing, at, zone)
    if ahead is None:
        return
    moment, after = ahead
    assert moment > at
    assert after.people != now.people
    assert after == on_call(rota, members, standing, moment, zone)
    for k in range(1, 8):  # nothing changes hands before it
        between = at + (moment - at) * k / 8
        assert on_call(rota, members, standing, between, zone).people == now.people


def test_daily_handoff_stays_at_nine_local_across_the_spring_dst_change() -> None:
    zone = ZoneInfo("America/New_York")
    layer = Layer(users=("ou_a", "ou_b"), shift="daily", handoff="09:00", start=date(2026, 3, 1))
    before = shift_at(layer, zone, datetime(2026, 3, 7, 20, 0, tzinfo=zone))
    across = shift_at(layer, zone, before.ends)
    assert before.starts.astimezone(zone).hour == 9
    assert across.starts.astimezone(zone).hour == 9
    assert before.ends - before.starts == timedelta(hours=23)  # 02:00 on 03-08 is skipped
    assert across.ends - across.starts == timedelta(hours=24)
    assert across.ends.astimezone(zone) == datetime(2026, 3, 9, 9, 0, tzinfo=zone)


def test_a_monthly_handoff_on_the_31st_happens_on_shorter_months_last_day() -> None:
    layer = Layer(users=("ou_a", "ou_b"), shift="monthly", handoff="10:00", start=date(2024, 1, 31))
    shift = shift_at(layer, SHANGHAI, datetime(2024, 2, 10, tzinfo=UTC))
    starts = [shift.starts.astimezone(SHANGHAI).date()]
    for _ in range(3):
        shift = shift_at(layer, SHANGHAI, shift.ends)
        starts.append(shift.starts.astimezone(SHANGHAI).date())
    assert starts == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]


def test_follow_the_sun_layers_cover_their_own_hours() -> None:
    rota = Rota(
        layers=(
            Layer(users=("ou_us",), shift="weekly", zone="America/New_York"),
            Layer(users=("ou_cn",), shift="weekly", zone="Asia/Shanghai", hours="09:00-21:00"),
        )
    )
    members = [("ou_us",), ("ou_cn",)]
    day = datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
    assert on_call(rota, members, [], day, SHANGHAI).people == ("ou_cn",)
    night = datetime(2026, 12, 7, 22, 0, tzinfo=SHANGHAI)
    assert on_call(rota, members, [], night, SHANGHAI).people == ("ou_us",)
    when, after = next_handoff(rota, members, [], day, SHANGHAI) or (None, None)
    assert when == datetime(2026, 12, 7, 21, 0, tzinfo=SHANGHAI)
    assert after is not None
    assert after.people == ("ou_us",)
    assert covers(rota.layers[1], SHANGHAI, datetime(2026, 12, 7, 20, 59, tzinfo=SHANGHAI))


def test_bad_shapes_are_refused() -> None:
    for bad in ({"shift": "fortnightly"}, {"handoff": "25:00"}, {"hours": "9-5"}, {"zone": "Mars"}):
        with pytest.raises(ValueError, match=r"use daily|time of day|time zone"):
            Layer(users=("ou_a",), **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="person or group"):
        Layer(users=("alice",))


def test_a_holiday_layer_follows_chinas_calendar_with_make_up_work_days() -> None:
    rota = Rota(
        layers=(
            Layer(users=("ou_a",), shift="weekly"),
            Layer(users=("ou_h",), shift="weekly", days="offdays"),
        ),
        holidays=(date(2026, 10, 1), date(2026, 10, 2)),
        workdays=(date(2026, 10, 10),),  # a Saturday worked (调休)
    )
    members = [("ou_a",), ("ou_h",)]

    def who(day: date) -> str:
        at = datetime.combine(day, time(12, 0), tzinfo=SHANGHAI)
        return on_call(rota, members, [], at, SHANGHAI).people[0]

    assert who(date(2026, 9, 30)) == "ou_a"  # a Wednesday
    assert who(date(2026, 10, 1)) == "ou_h"  # National Day, a Thursday
    assert who(date(2026, 10, 10)) == "ou_a"  # a Saturday worked
    assert who(date(2026, 10, 11)) == "ou_h"  # a Sunday
    start = datetime(2026, 9, 30, 12, 0, tzinfo=SHANGHAI)
    when, after = next_handoff(rota, members, [], start, SHANGHAI) or (None, None)
    assert when == datetime(2026, 10, 1, 0, 0, tzinfo=SHANGHAI)
    assert after is not None
    assert after.people == ("ou_h",)
