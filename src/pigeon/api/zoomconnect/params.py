"""Reading Zoom Connect's parameters: local dates (``yyyyMMddHHmm``, ``yyyyMMdd``) in the
configured time zone, turned into naive UTC, and phone numbers given as filters."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pigeon.api.zoomconnect.errors import Code, ZoomError, refused
from pigeon.phone import InvalidNumber, normalise
from pigeon.runtime import Runtime
from pigeon.sending.service import Problem, SendError

PATTERNS = {"%Y%m%d%H%M": "yyyyMMddHHmm", "%Y%m%d": "yyyyMMdd"}


def parse_local(value: str, fmt: str, zone: str, field: str) -> dt.datetime:
    """``value`` in ``fmt`` (one of PATTERNS) read in ``zone``, as naive UTC; SendError if not."""
    pattern = PATTERNS[fmt]
    text = value.strip()
    try:
        if not (text.isdigit() and len(text) == len(pattern)):
            raise ValueError
        local = dt.datetime.strptime(text, fmt)
        return local.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved across a zone
        raise SendError(Problem.INVALID_DATE, f"{field} must be {pattern}, not {value!r}") from None


def send_time(rt: Runtime, value: str | None, field: str = "dateToSend") -> dt.datetime | None:
    """A ``yyyyMMddHHmm`` send time, or None for 'now'; SendError when malformed."""
    if value is None or not value.strip():
        return None
    return parse_local(value, "%Y%m%d%H%M", rt.settings.timezone, field)


def local_day(rt: Runtime, value: str | None, field: str, *, end: bool = False) -> dt.datetime | None:
    """The start of a ``yyyyMMdd`` day (or of the next one, for an inclusive ``end``);
    ZoomError code 6 when malformed."""
    if value is None or not value.strip():
        return None
    try:
        day = parse_local(value, "%Y%m%d", rt.settings.timezone, field)
        return day + dt.timedelta(days=1) if end else day
    except SendError as exc:
        raise refused(exc) from None
    except OverflowError:
        raise ZoomError(400, Code.INVALID_DATE, f"{field} is out of range: {value!r}") from None


def number_param(rt: Runtime, value: str | None) -> str | None:
    """A number to filter on, in E.164 when it is one (else as given: it will match nothing)."""
    if value is None or not value.strip():
        return None
    try:
        return normalise(value, rt.settings.default_region).e164
    except InvalidNumber:
        return value.strip()
