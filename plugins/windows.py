"""Change windows and freezes: when remediation may change anything.

Configuration (YAML `policy:`)::

    policy:
      change_windows:                 # remediation runs inside one of these (none: any time)
        - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00",
           timezone: Asia/Shanghai}
        - {days: [sat], start: "22:00", end: "02:00"}     # crosses midnight into Sunday
      outside_window: approve         # approve | refuse: what happens outside every window
      freezes:                        # no remediation at all between start and end
        - {start: "2026-12-24T00:00:00+08:00", end: "2026-12-27T00:00:00+08:00",
           reason: 圣诞封网}

A window that ends before it starts crosses midnight: it belongs to the day it starts on.
Diagnostics are never held back by windows or freezes.

Usage::

    state = window_state(config.change_windows, config.freezes, now)
    state.kind     # "open" | "outside" | "frozen"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_ZONE = "Asia/Shanghai"


class ChangeWindow(BaseModel):
    """Weekly hours during which remediation may run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[Day, ...] = DAYS
    start: time
    end: time
    timezone: str = DEFAULT_ZONE

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("a change window needs start and end to differ")
        if not self.days:
            raise ValueError("a change window needs at least one day")
        return self

    def contains(self, now: datetime) -> bool:
        """True when `now` (aware) falls inside the window."""
        local = now.astimezone(ZoneInfo(self.timezone))
        clock = local.time().replace(tzinfo=None)
        today = DAYS[local.weekday()]
        if self.start < self.end:
            return today in self.days and self.start <= clock < self.end
        yesterday = DAYS[(local - timedelta(days=1)).weekday()]
        return (today in self.days and clock >= self.start) or (
            yesterday in self.days and clock < self.end
        )

    def describe(self) -> str:
        """`mon,tue 09:00–18:00 Asia/Shanghai`."""
        return f"{','.join(self.days)} {self.start:%H:%M}–{self.end:%H:%M} {self.timezone}"


class Freeze(BaseModel):
    """A period with no remediation at all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: AwareDatetime
    end: AwareDatetime
    reason: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("a freeze must end after it starts")
        return self

    def describe(self) -> str:
        """`2026-12-24T00:00+08:00 → 2026-12-27T00:00+08:00 (圣诞封网)`."""
        why = f" ({self.reason})" if self.reason else ""
        start, end = (t.isoformat(timespec="minutes") for t in (self.start, self.end))
        return f"{start} → {end}{why}"


@dataclass(frozen=True)
class WindowState:
    """Whether remediation may run now, and the window or freeze that says so."""

    kind: Literal["open", "outside", "frozen"]
    detail: str


def window_state(
    windows: Sequence[ChangeWindow], freezes: Sequence[Freeze], now: datetime
) -> WindowState:
    """Frozen beats everything; with no windows configured it is always open."""
    for freeze in freezes:
        if freeze.start <= now < freeze.end:
            return WindowState("frozen", freeze.describe())
    if not windows:
        return WindowState("open", "")
    for window in windows:
        if window.contains(now):
            return WindowState("open", window.describe())
    return WindowState("outside", "; ".join(w.describe() for w in windows))
