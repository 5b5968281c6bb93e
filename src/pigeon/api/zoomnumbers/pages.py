"""Zoom's ``next_page_token``: where the next page starts, sealed. Pure.

The token is the position (the last number of the page) and the list it belongs to, with the
time it was made, signed with HMAC-SHA256 under a key of the server's: opaque to clients, and
refused (``Invalid``, reason PAGE_TOKEN: Zoom's code 1003100) when forged, when it belongs to
another list, or after ``LIFETIME`` (15 minutes, as Zoom's).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from typing import TypeVar

import orjson

from pigeon.errors import Invalid, Reason

T = TypeVar("T")
LIFETIME = dt.timedelta(minutes=15)
INVALID = "The next page token is either invalid or has expired"


def _sign(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"next_page_token\x00" + body, hashlib.sha256).digest()[:16]


def seal(key: bytes, listing: str, after: str, now: dt.datetime) -> str:
    """The token of the page after ``after`` in ``listing`` (a name of the list and its filter)."""
    body = orjson.dumps([listing, after, int(now.replace(tzinfo=dt.UTC).timestamp())])
    return base64.urlsafe_b64encode(_sign(key, body) + body).rstrip(b"=").decode()


def open_token(key: bytes, listing: str, token: str, now: dt.datetime) -> str:
    """Where the page a token names starts; ``Invalid`` (PAGE_TOKEN) if it is not one of ours
    for this list, or too old."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, body = raw[:16], raw[16:]
        if len(mac) != 16 or not hmac.compare_digest(mac, _sign(key, body)):
            raise ValueError
        named, after, made = orjson.loads(body)
        if named != listing or not isinstance(after, str) or not isinstance(made, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise Invalid(INVALID, Reason.PAGE_TOKEN) from None
    age = now - dt.datetime.fromtimestamp(made, dt.UTC).replace(tzinfo=None)
    if not dt.timedelta(seconds=-60) <= age <= LIFETIME:
        raise Invalid(INVALID, Reason.PAGE_TOKEN)
    return after


def walk(key: bytes, listing: str, token: str | None, size: int, now: dt.datetime,
         fetch: Callable[[str | None, int], list[T]], position: Callable[[T], str]) -> tuple[list[T], str]:
    """One page of a keyset listing: up to ``size`` rows from ``fetch(after, limit)``, after the
    position the ``token`` names (from the start without one), and the next page's token ("" on
    the last page). ``position`` is a row's key in the listing's order."""
    after = open_token(key, listing, token, now) if token else None
    rows = fetch(after, size + 1)
    more, rows = len(rows) > size, rows[:size]
    return rows, seal(key, listing, position(rows[-1]), now) if more else ""
