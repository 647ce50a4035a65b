"""Lengths of time as people type them in the configuration and in commands: `0m`, `90s`, `2h`,
`1d`, `1h30m`.

    span("1h30m")               # timedelta(hours=1, minutes=30)
    span("0m", zero=True)       # timedelta(0)
"""

from __future__ import annotations

import re
from datetime import timedelta

_SPAN = re.compile(r"^(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?$")


def span(text: str, *, zero: bool = False) -> timedelta:
    """The length `text` names; ValueError when it names none (or zero, unless `zero`)."""
    match = _SPAN.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a length of time (e.g. 30s, 5m, 2h, 1d, 1h30m)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    length = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if length <= timedelta(0) and not zero:
        raise ValueError(f"{text!r} is no time at all")
    return length
