"""Alert timestamps to aware UTC datetimes, leniently (bad input means "unknown", not an error).

Accepted: ISO 8601 / RFC 3339 with up to nanosecond fractions (Alertmanager, Grafana), Go's
`time.Time` print form (`2024-05-01 10:00:00.123 +0800 CST`, also with its `m=+1.5` monotonic
reading), `2024/05/01 10:00:00`, Zabbix's `2024.05.01 10:00:00`, `2024年05月01日 10:00:00`,
month names (`Mon Jun 3 10:00:00 CST 2024`, `Jun 3, 2024 10:00:00 AM`), RFC 2822 (`Mon, 03 Jun
2024 02:00:00 +0000`), Zabbix's `10:00:00 on 2024.06.03`, `… GMT+08:00`, a
zone written after the time (`2024-05-01 10:00:00 (UTC+08:00)`, `… (UTC)`), and epoch seconds
or milliseconds as numbers or as 10/13 digits of text. Go's zero time `0001-01-01T00:00:00Z`
(Alertmanager's "not set") is None. A time without an offset is read in `naive_zone`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

# China has had no daylight saving time since 1991: a fixed offset is exact and needs no tzdata.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")

_MAX_LEN = 80
_STAMP_RE = re.compile(
    r"^(?P<y>\d{4})(?P<sep>[-/.])(?P<mo>\d{1,2})(?P=sep)(?P<d>\d{1,2})"
    r"(?:[T ]+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,12}))?)?)?"
    r"\s*(?P<z>Z|[+-]\d{2}(?::?\d{2})?)?"
    r"(?:\s+(?P<abbr>[A-Za-z]{2,5}))?"
    r"(?:\s+m=[+-]\d{1,12}\.\d{1,12})?"  # Go's monotonic clock reading, printed by time.Now()
    r"(?:\s*[(（](?:UTC|GMT)(?P<qz>[+-]\d{1,2}(?::?\d{2})?)?[)）])?$"  # "(UTC+08:00)", "(UTC)"
)
# month names: ctime and Nagios' $LONGDATETIME ("Mon Jun 3 10:00:00 CST 2024"), "Jun 3, 2024
# 10:00:00 AM"; a zone abbreviation other than UTC/GMT is the naive zone's (CST: China's)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WORDY_RE = re.compile(
    r"^(?:[A-Za-z]{3,9},?\s+)?(?P<mo>[A-Za-z]{3})[A-Za-z]{0,6}\.?\s+(?P<d>\d{1,2}),?\s+"
    r"(?:(?P<y>\d{4}),?\s+)?(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?"
    r"(?:\s*(?P<ampm>[AaPp][Mm]))?(?:\s+(?P<abbr>[A-Za-z]{2,5}))?(?:\s+(?P<y2>\d{4}))?$"
)
# RFC 2822 (mail, Elastic Watcher): "Mon, 03 Jun 2024 02:00:00 +0000"
_RFC2822_RE = re.compile(
    r"^(?:[A-Za-z]{3},\s*)?(?P<d>\d{1,2})\s+(?P<mo>[A-Za-z]{3})\s+(?P<y>\d{4})\s+"
    r"(?P<t>\d{1,2}:\d{2}(?::\d{2})?)(?P<rest>\s+\S{1,6})?$"
)
# Zabbix's default messages: "10:00:00 on 2024.06.03"
_TIME_ON_DATE_RE = re.compile(
    r"^(\d{1,2}:\d{2}(?::\d{2})?)\s+on\s+(\d{4}[-/.]\d{1,2}[-/.]\d{1,2})$"
)
# an offset written after GMT/UTC (Huawei Cloud): "2024/06/03 10:00:00 GMT+08:00"
_GMT_OFFSET_RE = re.compile(r"\s(?:GMT|UTC)([+-]\d{1,2}(?::?\d{2})?)$", re.I)
_CJK_DATE_RE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})[日号]\s*")  # 2024年06月03日 10:00
_EPOCH_TEXT_RE = re.compile(r"^\d{10}(?:\d{3})?$")
_EPOCH_MS_THRESHOLD = 100_000_000_000  # numbers above this are milliseconds
_EPOCH_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


def parse_timestamp(value: object, *, naive_zone: tzinfo = UTC) -> datetime | None:
    """An aware UTC datetime for `value`, or None when it is missing, zero or unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    return _from_text(value, naive_zone)


# An alert storm repeats the same few stamps (an alert's `startsAt` stays while it fires; the
# zero `endsAt` of every firing one): each is read once. The results are immutable.
@lru_cache(maxsize=4096)
def _from_text(value: str, naive_zone: tzinfo) -> datetime | None:
    text = value.strip()
    if not text or len(text) > _MAX_LEN:
        return None
    if _EPOCH_TEXT_RE.match(text):  # "1717380000" / "1717380000000" printed as text
        return _from_epoch(float(text))
    match = _STAMP_RE.match(_dated_first(text))
    if not match:
        return _wordy(text, naive_zone)
    parts = match.groupdict()
    if int(parts["y"]) <= 1:
        return None  # Go's zero time: "not set"
    qualified = match.group(0).rstrip().endswith((")", "）"))
    offset = parts["z"] or (_padded(parts["qz"]) if parts["qz"] else "Z" if qualified else None)
    zone = _zone(offset, parts["abbr"], naive_zone)
    if zone is None:
        return None
    fraction = (parts["f"] or "0")[:6].ljust(6, "0")
    try:
        stamp = datetime(
            int(parts["y"]),
            int(parts["mo"]),
            int(parts["d"]),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            int(fraction),
            tzinfo=zone,
        )
        return stamp.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _dated_first(text: str) -> str:
    """`text` rewritten date first, as `_STAMP_RE` reads it: 2024年06月03日 10:00 →
    2024-06-03 10:00, RFC 2822 → 2024-06-03 02:00:00 +0000, Zabbix's "10:00:00 on 2024.06.03"
    → 2024.06.03 10:00:00."""
    mail = _RFC2822_RE.match(text)
    if mail and mail["mo"].lower() in _MONTHS:
        month = _MONTHS.index(mail["mo"].lower()) + 1
        return f"{mail['y']}-{month:02d}-{int(mail['d']):02d} {mail['t']}{mail['rest'] or ''}"
    zabbix = _TIME_ON_DATE_RE.match(text)
    if zabbix:
        return f"{zabbix[2]} {zabbix[1]}"
    text = _GMT_OFFSET_RE.sub(r" (UTC\1)", text)
    return _CJK_DATE_RE.sub(r"\1-\2-\3 ", text).strip()


def _wordy(text: str, naive_zone: tzinfo) -> datetime | None:
    """A time written with a month name (see `_WORDY_RE`), or None."""
    match = _WORDY_RE.match(text)
    year = match and (match["y"] or match["y2"])
    if not match or not year or match["mo"].lower() not in _MONTHS:
        return None
    hour = int(match["h"])
    if match["ampm"]:
        hour = hour % 12 + (12 if match["ampm"].lower() == "pm" else 0)
    zone = _zone(None, match["abbr"], naive_zone)
    try:
        stamp = datetime(
            int(year),
            _MONTHS.index(match["mo"].lower()) + 1,
            int(match["d"]),
            hour,
            int(match["mi"]),
            int(match["s"] or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return stamp.astimezone(UTC)


def _padded(offset: str) -> str:
    """ "+8" → "+08", "+8:00" → "+08:00": the offset form `_zone` reads."""
    hours, _, minutes = offset[1:].partition(":")
    return f"{offset[0]}{hours.zfill(2)}{':' + minutes if minutes else ''}"


def _zone(offset: str | None, abbreviation: str | None, naive_zone: tzinfo) -> tzinfo | None:
    if offset == "Z":
        return UTC
    if offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            return None
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    if abbreviation and abbreviation.upper() in ("UTC", "GMT", "Z"):
        return UTC
    return naive_zone


def _from_epoch(number: float) -> datetime | None:
    if number != number or number <= 0:  # NaN or not a time
        return None
    seconds = number / 1000 if number > _EPOCH_MS_THRESHOLD else number
    if seconds > _EPOCH_MAX_SECONDS:
        return None
    return datetime.fromtimestamp(seconds, UTC)
