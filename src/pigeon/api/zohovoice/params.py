"""A Zoho Voice request's parameters as applications send them: in the query string, a JSON
body, or a form (urlencoded or multipart), read into one mapping; and the values Zoho writes
loosely (numbers as strings, booleans as "true") read strictly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from pigeon.errors import Invalid, Reason

FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
SCHEDULE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


async def body_params(request: Request, *, max_files: int = 0) -> tuple[dict[str, Any], FormData | None]:
    """The query string's parameters, then the body's over them (a JSON object, or a form's
    fields), and the form itself when there was one (its files)."""
    params: dict[str, Any] = dict(request.query_params)
    kind = media_type(request)
    if kind in FORMS:
        form = await request.form(max_files=max_files, max_fields=100)
        params.update({key: value for key, value in form.multi_items() if isinstance(value, str)})
        return params, form
    raw = await request.body()
    if raw.strip():
        if kind and kind != "application/json" and not kind.endswith("+json") and kind != "text/plain":
            raise Invalid(f"Unsupported body: send application/json or a form, not {kind}")
        params.update(json_object(raw, "the body"))
    return params, None


def json_object(raw: str | bytes, what: str) -> dict[str, Any]:
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"{what} is not valid JSON ({exc})") from None
    if not isinstance(found, dict):
        raise Invalid(f"{what} must be a JSON object")
    return found


def files(form: FormData | None, field: str) -> list[UploadFile]:
    return [] if form is None else [value for value in form.getlist(field) if not isinstance(value, str)]


def text(params: Mapping[str, Any], name: str) -> str | None:
    """A text parameter (a number given as JSON is its digits); None when absent or null."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f"{name} must be a string, not {type(value).__name__}")
    return str(value)


def integer(params: Mapping[str, Any], name: str, *, low: int, high: int, subject: str | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{name} must be a whole number from {low:,} to {high:,}, not {value!r}", subject=subject)
    return value


def boolean(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Invalid(f"{name} must be true or false, not {value!r}")


def zone(name: str | None, default: str) -> str:
    """An IANA time zone's name (``Asia/Kolkata``); ``Invalid`` (BAD_SCHEDULE) for an unknown one."""
    if name is None or not name.strip():
        return default
    try:
        return ZoneInfo(name.strip()).key
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"timeZone {name!r} is not an IANA time zone (such as Asia/Kolkata)", Reason.BAD_SCHEDULE) from None


def local_time(value: str, zone_name: str, name: str) -> dt.datetime:
    """``yyyy-MM-dd HH:mm:ss`` (seconds optional) in ``zone_name``, as naive UTC."""
    for fmt in SCHEDULE_FORMATS:
        try:
            local = dt.datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        try:
            return local.replace(tzinfo=ZoneInfo(zone_name)).astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            break
    raise Invalid(f"{name} must be yyyy-MM-dd HH:mm:ss, not {value!r}", Reason.BAD_SCHEDULE)


def day(value: str | None, zone_name: str, name: str, *, end: bool = False) -> dt.datetime | None:
    """A ``yyyy-MM-dd`` day (or a ``yyyy-MM-dd HH:mm:ss`` time) in ``zone_name``, as naive UTC:
    its start, or for ``end`` the start of the next day (a time is taken as it is)."""
    if value is None or not value.strip():
        return None
    try:
        date = dt.datetime.strptime(value.strip(), "%Y-%m-%d")
    except ValueError:
        moment = local_time(value, zone_name, name)
        return moment + dt.timedelta(seconds=1) if end else moment
    try:
        start = date.replace(tzinfo=ZoneInfo(zone_name)).astimezone(dt.UTC).replace(tzinfo=None)
        return start + dt.timedelta(days=1) if end else start
    except OverflowError:
        raise Invalid(f"{name} is out of range: {value!r}", Reason.INVALID_DATE) from None
