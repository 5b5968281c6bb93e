"""The messages as Zoho Voice lists them: a page of the log by offset, conversations (one per
account number and customer number, newest first), and scheduled sends. Each answers its rows
and the total the filters find.

A conversation's two numbers: for an outbound message its sender and recipient, for an
inbound one the number it came to and its sender. ``search`` finds whole words, in any case:
the database narrows by substring, and Python keeps the messages where it is a word.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from pigeon.lifecycle import Status
from pigeon.messages.models import Direction, Message

M = Message.__table__
OURS = case((M.c.direction == Direction.INBOUND.value, M.c.to_number), else_=M.c.from_number)
CUSTOMER = case((M.c.direction == Direction.INBOUND.value, M.c.from_number), else_=M.c.to_number)
NEWEST = (M.c.created_at.desc(), M.c.id.desc())


@dataclass(frozen=True, slots=True)
class LogFilter:
    start: dt.datetime | None = None  # naive UTC, inclusive
    end: dt.datetime | None = None  # naive UTC, exclusive
    direction: Direction | None = None
    customer: str | None = None  # E.164
    region: str | None = None  # ISO 3166, upper case


def _mine(user_id: int) -> ColumnElement[bool]:
    return and_(M.c.user_id == user_id, M.c.deleted.is_(False))


def _logged(user_id: int, f: LogFilter) -> Select:
    query = select(M).where(_mine(user_id))
    if f.start is not None:
        query = query.where(M.c.created_at >= f.start)
    if f.end is not None:
        query = query.where(M.c.created_at < f.end)
    if f.direction is not None:
        query = query.where(M.c.direction == f.direction.value)
    if f.customer is not None:
        query = query.where(or_(and_(M.c.direction == Direction.OUTBOUND.value, M.c.to_number == f.customer),
                                and_(M.c.direction == Direction.INBOUND.value, M.c.from_number == f.customer)))
    if f.region is not None:
        query = query.where(M.c.region == f.region)
    return query


def log_page(session: Session, user_id: int, f: LogFilter, *, offset: int, size: int) -> tuple[list, int]:
    """The user's messages the filter finds, newest first, ``size`` from ``offset``; and how many it finds."""
    query = _logged(user_id, f)
    rows = session.execute(query.order_by(*NEWEST).offset(offset).limit(size)).all()
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(M.c.id).subquery()))
    return rows, int(total or 0)


def words(text: str) -> re.Pattern[str]:
    """A search for ``text`` as whole words, in any case."""
    return re.compile(rf"(?<!\w){re.escape(text.strip())}(?!\w)", re.IGNORECASE)


def _containing(query: Select, text: str) -> Select:
    pattern = "%" + text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return query.where(func.lower(M.c.body).like(pattern, escape="\\"))


def conversations(session: Session, user_id: int, *, ours: Sequence[str] = (), search: str | None = None,
                  offset: int, size: int) -> tuple[list, int]:
    """One row per conversation of the user (its newest message, or with ``search`` its newest
    message with that word), newest first, ``size`` from ``offset``; and how many there are.
    ``ours``: only conversations on these account numbers."""
    where = [_mine(user_id)]
    if ours:
        where.append(OURS.in_(list(ours)))
    if search and search.strip():
        found = words(search)
        candidates = session.execute(_containing(select(M).where(*where), search).order_by(*NEWEST)).all()
        newest: dict[tuple, object] = {}
        for row in candidates:
            key = (row.to_number, row.from_number) if row.direction == Direction.INBOUND else (
                row.from_number, row.to_number)
            if key not in newest and found.search(row.body):
                newest[key] = row
        every = list(newest.values())
        return every[offset:offset + size], len(every)
    ranked = select(M, func.row_number().over(partition_by=(OURS, CUSTOMER), order_by=NEWEST).label("rank")).where(
        *where).subquery()
    rows = session.execute(select(ranked).where(ranked.c.rank == 1)
                           .order_by(ranked.c.created_at.desc(), ranked.c.id.desc()).offset(offset).limit(size)).all()
    total = session.scalar(select(func.count()).select_from(
        select(OURS.label("ours"), CUSTOMER.label("customer")).where(*where).distinct().subquery()))
    return rows, int(total or 0)


def scheduled(session: Session, user_id: int, *, start: dt.datetime | None, end: dt.datetime | None,
              search: str | None, offset: int, size: int) -> tuple[list, int]:
    """The user's scheduled sends still waiting (SCHEDULED, with a time to go), soonest first,
    those due from ``start`` (inclusive) to ``end`` (exclusive) with ``search`` as a word; and how many."""
    query = select(M).where(_mine(user_id), M.c.status == Status.SCHEDULED.value, M.c.scheduled_for.is_not(None),
                            M.c.direction == Direction.OUTBOUND.value)
    if start is not None:
        query = query.where(M.c.scheduled_for >= start)
    if end is not None:
        query = query.where(M.c.scheduled_for < end)
    soonest = (M.c.scheduled_for, M.c.id)
    if search and search.strip():
        found = words(search)
        every = [row for row in session.execute(_containing(query, search).order_by(*soonest)).all()
                 if found.search(row.body)]
        return every[offset:offset + size], len(every)
    rows = session.execute(query.order_by(*soonest).offset(offset).limit(size)).all()
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(M.c.id).subquery()))
    return rows, int(total or 0)
