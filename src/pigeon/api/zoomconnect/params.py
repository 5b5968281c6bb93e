"""Reading Zoom Connect's parameters: local dates (``yyyyMMddHHmm``, ``yyyyMMdd``) in the
configured time zone (``pigeon.localtime``), as the API's errors, and phone numbers given as filters."""

from __future__ import annotations

import datetime as dt

from pigeon import localtime
from pigeon.api.zoomconnect.errors import Code, ZoomError, refused
from pigeon.phone import InvalidNumber, normalise
from pigeon.runtime import Runtime
from pigeon.sending.service import SendError


def send_time(rt: Runtime, value: str | None, field: str = "dateToSend") -> dt.datetime | None:
    """A ``yyyyMMddHHmm`` send time, or None for 'now'; SendError when malformed."""
    return localtime.send_time(value, rt.settings.timezone, field)


def local_day(rt: Runtime, value: str | None, field: str, *, end: bool = False) -> dt.datetime | None:
    """The start of a ``yyyyMMdd`` day (or of the next one, for an inclusive ``end``);
    ZoomError code 6 when malformed."""
    if value is None or not value.strip():
        return None
    try:
        day = localtime.parse_local(value, "%Y%m%d", rt.settings.timezone, field)
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
