"""Reading Zoom Connect's parameters: local dates (``yyyyMMddHHmm``, ``yyyyMMdd``) in the
configured time zone (``pigeon.localtime``), and phone numbers given as filters."""

from __future__ import annotations

import datetime as dt

from pigeon import localtime
from pigeon.errors import Invalid
from pigeon.phone import normalise
from pigeon.runtime import Runtime


def send_time(rt: Runtime, value: str | None, field: str = "dateToSend") -> dt.datetime | None:
    """A ``yyyyMMddHHmm`` send time, or None for 'now'; ``Invalid`` when malformed."""
    return localtime.send_time(value, rt.settings.timezone, field)


def local_day(rt: Runtime, value: str | None, field: str, *, end: bool = False) -> dt.datetime | None:
    """The start of a ``yyyyMMdd`` day (or of the next one, for an inclusive ``end``), or None
    when blank; ``Invalid`` (INVALID_DATE) when malformed."""
    if value is None or not value.strip():
        return None
    return localtime.local_day(value, rt.settings.timezone, field, end=end)


def number_param(rt: Runtime, value: str | None) -> str | None:
    """A number to filter on, in E.164 when it is one (else as given: it will match nothing)."""
    if value is None or not value.strip():
        return None
    try:
        return normalise(value, rt.settings.default_region).e164
    except Invalid:
        return value.strip()
