"""The dashboard's figures: a scope's messages of the last hours, counted per hour by direction
and status, with the credits they used, in one grouped query.

A scope is an account, or one user of it. Its hours are read from the index its lists are
read from (``ix_messages_account``: account, deleted, created_at; ``ix_messages_list``: user,
deleted, created_at), both values of ``deleted`` (a message hidden from the lists was still
sent and charged): a range of the index, and a lookup of each row in it. A message belongs to
the hour it was created (accepted) in, in UTC.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pigeon.lifecycle import FINAL, Status
from pigeon.messages.models import Direction, Message

M = Message.__table__
HOUR = dt.timedelta(hours=1)
REFUNDED = frozenset({Status.FAILED_REFUNDED.value, Status.FAILED_OPTOUT.value})
"""Statuses whose credits went back: they used none."""
OUTBOUND_FINAL = frozenset(s.value for s in FINAL)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose messages: an account's, or one of its users' (``user_id``)."""

    account_id: int
    user_id: int | None = None


@dataclass(slots=True)
class Hours:
    """A scope's last hours, oldest first: ``starts[i]`` is the start of hour i (naive UTC)."""

    starts: list[dt.datetime]
    outbound: dict[str, list[int]]  # status: messages created in each hour, one list per status
    received: list[int]  # inbound messages
    credits: list[int]  # thousandths of a credit used (refunded messages used none)
    totals: dict[str, int] = field(default_factory=dict)  # status: outbound messages over all the hours

    @property
    def sent(self) -> list[int]:
        """Outbound messages created in each hour, whatever their status."""
        return [sum(column) for column in zip(*self.outbound.values(), strict=True)]

    def delivery_rate(self) -> list[float | None]:
        """Delivered over final, per hour (None: no outbound message of that hour is final yet)."""
        delivered = self.outbound[Status.DELIVERED.value]
        final = [sum(self.outbound[s][i] for s in OUTBOUND_FINAL) for i in range(len(self.starts))]
        return [d / f if f else None for d, f in zip(delivered, final, strict=True)]

    def overall_rate(self) -> float | None:
        final = sum(self.totals[s] for s in OUTBOUND_FINAL)
        return self.totals[Status.DELIVERED.value] / final if final else None


def hour_of(when: dt.datetime) -> dt.datetime:
    return when.replace(minute=0, second=0, microsecond=0)


Counted = list[tuple[dt.datetime, str, str, int, int]]  # (hour, direction, status, messages, credits)


def counted(session: Session, scope: Scope, since: dt.datetime, until: dt.datetime | None = None) -> Counted:
    """The scope's messages created in ``[since, until)`` (until: no end), counted per hour,
    direction and status, with the credits they were charged."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    # SQLite keeps a datetime as text ('YYYY-MM-DD HH:MM:SS.ffffff'): its hour is the first 13
    bucket = func.substr(M.c.created_at, 1, 13) if sqlite else func.date_trunc("hour", M.c.created_at)
    owner = M.c.account_id == scope.account_id if scope.user_id is None else M.c.user_id == scope.user_id
    query = (
        select(bucket, M.c.direction, M.c.status, func.count(), func.coalesce(func.sum(M.c.credit_cost), 0))
        .where(owner, M.c.deleted.in_([False, True]), M.c.created_at >= since)
        .group_by(bucket, M.c.direction, M.c.status)
    )
    if until is not None:
        query = query.where(M.c.created_at < until)
    return [(dt.datetime.strptime(hour.replace("T", " "), "%Y-%m-%d %H") if sqlite else hour, direction, status,
             number, int(cost)) for hour, direction, status, number, cost in session.execute(query)]


def assemble(first: dt.datetime, count: int, rows: Counted) -> Hours:
    """``count`` hours from ``first`` out of ``counted`` rows (those outside them left out)."""
    found = Hours([first + i * HOUR for i in range(count)], {s.value: [0] * count for s in Status},
                  [0] * count, [0] * count)
    for start, direction, status, number, cost in rows:
        i = int((start - first) / HOUR)
        if not 0 <= i < count:
            continue
        if direction == Direction.INBOUND.value:
            found.received[i] += number
            continue
        found.outbound.setdefault(status, [0] * count)[i] += number
        if status not in REFUNDED:
            found.credits[i] += cost
    found.totals = {status: sum(column) for status, column in found.outbound.items()}
    return found


def hours(session: Session, scope: Scope, now: dt.datetime, count: int = 24) -> Hours:
    """The ``count`` hours up to ``now`` (the last one, the current hour, still going)."""
    first = hour_of(now) - (count - 1) * HOUR
    return assemble(first, count, counted(session, scope, first))


@dataclass(slots=True)
class _Kept:
    first: dt.datetime  # the rows are of the hours from this one
    split: dt.datetime  # up to this one
    rows: Counted
    until: float  # monotonic time after which they are read again


class Remembered:
    """``hours`` for a dashboard that asks every few seconds: the last ``fresh`` hours are read
    at every call; the older ones, where little changes any more (a late receipt), at most
    every ``keep`` seconds per scope. A realistic day is some 50,000 rows to visit; its last two
    hours, a tenth of that. Safe across threads (a race reads twice, no harm)."""

    def __init__(self, *, fresh: int = 2, keep: float = 60.0, scopes: int = 512):
        self.fresh, self.keep, self.scopes = fresh, keep, scopes
        self._kept: dict[Scope, _Kept] = {}

    def hours(self, session: Session, scope: Scope, now: dt.datetime, count: int = 24) -> Hours:
        first = hour_of(now) - (count - 1) * HOUR
        split = hour_of(now) - (self.fresh - 1) * HOUR
        clock = time.monotonic()
        kept = self._kept.get(scope)
        if kept is None or kept.split != split or kept.first != first or clock > kept.until:
            kept = _Kept(first, split, counted(session, scope, first, split), clock + self.keep)
            if len(self._kept) >= self.scopes:
                self._kept.clear()
            self._kept[scope] = kept
        return assemble(first, count, kept.rows + counted(session, scope, split))

    def forget(self) -> None:
        self._kept.clear()
