"""Local dates as people write them (``yyyyMMddHHmm``, ``yyyyMMdd``), read in a time zone and
turned into naive UTC, as the database stores them. Pure: every edge reads dates with these."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pigeon.errors import Invalid, Reason

PATTERNS = {"%Y%m%d%H%M": "yyyyMMddHHmm", "%Y%m%d": "yyyyMMdd"}


def parse_local(value: str, fmt: str, zone: str, field: str) -> dt.datetime:
    """``value`` in ``fmt`` (one of PATTERNS) read in ``zone``, as naive UTC; ``Invalid`` (INVALID_DATE) if not."""
    pattern = PATTERNS[fmt]
    text = value.strip()
    try:
        if not (text.isdigit() and len(text) == len(pattern)):
            raise ValueError
        local = dt.datetime.strptime(text, fmt)
        return local.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved across a zone
        raise Invalid(f"{field} must be {pattern}, not {value!r}", Reason.INVALID_DATE) from None


def send_time(value: str | None, zone: str, field: str) -> dt.datetime | None:
    """A ``yyyyMMddHHmm`` send time in ``zone``, or None (blank) for 'now'; ``Invalid`` when malformed."""
    if value is None or not value.strip():
        return None
    return parse_local(value, "%Y%m%d%H%M", zone, field)


def local_day(value: str, zone: str, field: str, *, end: bool = False) -> dt.datetime:
    """The start of a ``yyyyMMdd`` day in ``zone`` (or of the next one, for an inclusive
    ``end``), as naive UTC; ``Invalid`` (INVALID_DATE) when malformed or out of range."""
    day = parse_local(value, "%Y%m%d", zone, field)
    try:
        return day + dt.timedelta(days=1) if end else day
    except OverflowError:
        raise Invalid(f"{field} is out of range: {value!r}", Reason.INVALID_DATE) from None
