"""A Zoho Voice request's parameters as applications send them: in the query string, a JSON
body, or a form (urlencoded or multipart), read into one mapping; and the values Zoho writes
loosely (numbers as strings, booleans as "true") read strictly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import orjson
from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from pigeon.errors import Invalid, Reason

EARLIEST, LATEST = 1970, 9998  # the years a scheduled time may name (every database stores them alike)
SCHEDULE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


async def body_params(request: Request, *, max_files: int = 0) -> tuple[dict[str, Any], FormData | None]:
    """The query string's parameters, then the body's over them (a JSON object, or a form's
    fields), and the multipart form itself when there was one (its files). Percent-encoded
    text must be UTF-8 (else ``Invalid``, as a JSON body's must); a body of another type is 415."""
    params: dict[str, Any] = dict(_pairs(request.url.query, "the query string"))
    kind = media_type(request)
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=max_files, max_fields=100)
        except UnicodeDecodeError:
            raise Invalid("A form field is not UTF-8 text") from None
        params.update({key: value for key, value in form.multi_items() if isinstance(value, str)})
        return params, form
    raw = await request.body()
    if kind == "application/x-www-form-urlencoded":
        try:
            params.update(_pairs(raw.decode("utf-8"), "the form body"))
        except UnicodeDecodeError:
            raise Invalid("The form body is not UTF-8") from None
        return params, None
    if raw.strip():
        if kind and kind != "application/json" and not kind.endswith("+json") and kind != "text/plain":
            raise HTTPException(415, f"Unsupported media type {kind!r}: send application/json, "
                                     "application/x-www-form-urlencoded or multipart/form-data")
        params.update(json_object(raw, "the body"))
    return params, None


def _pairs(text: str, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise Invalid(f"{where} has percent-encoded text that is not UTF-8") from None


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


@cache
def _zones() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def zone(name: str | None, default: str) -> str:
    """An IANA time zone's name, in any case (Zoho's pages write ``Asia/kolkata``);
    ``Invalid`` (BAD_SCHEDULE) for an unknown one."""
    if name is None or not name.strip():
        return default
    found = _zones().get(name.strip().lower())
    if found is None:
        try:
            found = ZoneInfo(name.strip()).key
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(f"timeZone {name!r} is not an IANA time zone (such as Asia/Kolkata)",
                          Reason.BAD_SCHEDULE) from None
    return found


def local_time(value: str, zone_name: str, name: str) -> dt.datetime:
    """``yyyy-MM-dd HH:mm:ss`` (seconds optional) in ``zone_name``, as naive UTC. A time the
    zone skips (a spring-forward gap) is moved on by the gap."""
    for fmt in SCHEDULE_FORMATS:
        try:
            local = dt.datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        if not EARLIEST <= local.year <= LATEST:
            raise Invalid(f"{name} must be in the years {EARLIEST} to {LATEST}, not {value!r}", Reason.BAD_SCHEDULE)
        return local.replace(tzinfo=ZoneInfo(zone_name)).astimezone(dt.UTC).replace(tzinfo=None)
    raise Invalid(f"{name} must be yyyy-MM-dd HH:mm:ss, not {value!r}", Reason.BAD_SCHEDULE)


def day(value: str | None, zone_name: str, name: str, *, end: bool = False) -> dt.datetime | None:
    """A ``yyyy-MM-dd`` day (or a ``yyyy-MM-dd HH:mm:ss`` time) in ``zone_name``, as naive UTC:
    its start, or for ``end`` the start of the next day (a time: the second after it). An end
    past the last year is no end at all."""
    if value is None or not value.strip():
        return None
    try:
        date = dt.datetime.strptime(value.strip(), "%Y-%m-%d")
    except ValueError:
        try:
            moment = local_time(value, zone_name, name)
        except Invalid:
            raise Invalid(f"{name} must be yyyy-MM-dd (or yyyy-MM-dd HH:mm:ss), not {value!r}",
                          Reason.INVALID_DATE) from None
        return moment + dt.timedelta(seconds=1) if end else moment
    if date.year > LATEST:  # past anything stored: no end, or a start nothing comes after
        return None if end else dt.datetime(LATEST, 12, 31)
    if date.year < EARLIEST:  # before anything stored: no start, or an end nothing comes before
        return dt.datetime(EARLIEST, 1, 1) if end else None
    start = date.replace(tzinfo=ZoneInfo(zone_name)).astimezone(dt.UTC).replace(tzinfo=None)
    return start + dt.timedelta(days=1) if end else start
