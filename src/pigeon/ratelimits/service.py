"""Counting a request against its key's limit, in the caller's transaction.

``hit`` is one upsert that returns the new count: the first request of a key opens a window of
``window`` seconds; once the window holds ``limit`` requests, the next ones are refused until
it closes. Processes sharing the database share the counts (PostgreSQL serialises the upserts
of one key on its row; SQLite has one writer).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import case, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pigeon.ratelimits.models import RateCount

TABLE = RateCount.__table__


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # whole seconds until the window closes (when refused)


def hit(session: Session, key: str, limit: int, window: dt.timedelta, now: dt.datetime) -> Decision:
    """Count one request of ``key``; whether it is within ``limit`` for the current window."""
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    insert = dialect.insert(TABLE).values(key=key[:120], window_start=now, count=1)
    closed = TABLE.c.window_start <= now - window
    upsert = insert.on_conflict_do_update(index_elements=[TABLE.c.key], set_={
        "count": case((closed, 1), else_=TABLE.c.count + 1),
        "window_start": case((closed, insert.excluded.window_start), else_=TABLE.c.window_start),
    }).returning(TABLE.c.count, TABLE.c.window_start)
    count, start = session.execute(upsert).one()
    left = (start + window - now).total_seconds()
    return Decision(count <= limit, limit, max(0, limit - count), max(1, math.ceil(left)))


def purge(session: Session, before: dt.datetime) -> int:
    """Forget the counts of windows that opened before ``before``."""
    return session.execute(delete(TABLE).where(TABLE.c.window_start < before)).rowcount
