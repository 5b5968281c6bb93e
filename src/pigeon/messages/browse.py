"""The console's message list: keyset pages of an account's messages (or one user's), newest
first, under any mix of filters. A page seeks from the last row of the one before it, so the
100,000th message costs what the first does; the account-wide list reads
``ix_messages_account``, a user's ``ix_messages_list``; the dates bound that walk, and the other
filters are met on the way down.

A filter no index serves (a word of the text, a status, a number) may match one message in a
hundred thousand, and a page that had to find fifty of them would read the whole account. So a
filtered page walks at most ``WALK`` messages down the index: it finds where that walk would end
(read from the index alone), then seeks only that far, stopping early when it has its page; it may
come back short, even empty, with a cursor where its walk stopped, and the next page goes on from
there. Every page costs at most that walk, however rare the match (no text index is kept: it would
cost every send, ``bench/list_indexes.py --trigram``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, false, or_, select, tuple_
from sqlalchemy.orm import Session

from pigeon.messages.models import Message

PAGE = 50
WALK = 10_000  # messages a filtered page walks at most


@dataclass(frozen=True, slots=True)
class Whose:
    """Whose messages: an account's, or one user's of it."""

    account_id: int
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """What the console's filters ask; None: any."""

    status: str | None = None
    direction: str | None = None
    number: str | None = None  # either party's
    text: str | None = None
    campaign: str | None = None
    since: dt.datetime | None = None  # created at or after
    until: dt.datetime | None = None  # created before


Cursor = tuple[dt.datetime, str]
"""Where a page ends: its last message's creation time and id."""


def _scope(whose: Whose, search: Search) -> Select:
    """The scope's messages in the dates asked, newest first, down its listing index."""
    q = select(Message).where(Message.account_id == whose.account_id, Message.deleted == false())
    if whose.user_id is not None:
        q = q.where(Message.user_id == whose.user_id).with_hint(Message, "INDEXED BY ix_messages_list", "sqlite")
    else:
        q = q.with_hint(Message, "INDEXED BY ix_messages_account", "sqlite")
    if search.since is not None:
        q = q.where(Message.created_at >= search.since)
    if search.until is not None:
        q = q.where(Message.created_at < search.until)
    return q.order_by(Message.created_at.desc(), Message.id.desc())


def _filters(search: Search) -> list[ColumnElement[bool]]:
    """What a message must meet besides its scope and dates (met row by row: no index serves it)."""
    where: list[ColumnElement[bool]] = []
    if search.status:
        where.append(Message.status == search.status)
    if search.direction:
        where.append(Message.direction == search.direction)
    if search.number:
        where.append(or_(Message.to_number == search.number, Message.from_number == search.number))
    if search.text:
        escaped = search.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(Message.body.ilike(f"%{escaped}%", escape="\\"))
    if search.campaign:
        where.append(Message.campaign == search.campaign)
    return where


def query(whose: Whose, search: Search) -> Select:
    """The matching messages, newest first (no limit, no cursor)."""
    return _scope(whose, search).where(*_filters(search))


def _older(after: Cursor) -> ColumnElement[bool]:
    return tuple_(Message.created_at, Message.id) < tuple_(*after)


def page(session: Session, whose: Whose, search: Search, after: Cursor | None = None,
         size: int = PAGE, walk: int | None = WALK) -> tuple[list[Message], Cursor | None]:
    """One page after ``after``, and the cursor of the next (None: this was the last). A
    filtered page walks at most ``walk`` messages (None: as far as it takes) and may come back
    short: then the cursor is where its walk stopped."""
    if not _filters(search) or walk is None:
        q = query(whose, search)
        if after is not None:
            q = q.where(_older(after))
        rows = list(session.scalars(q.limit(size + 1)))
        more = len(rows) > size
        rows = rows[:size]
        return rows, ((rows[-1].created_at, rows[-1].id) if more else None)
    stretch = _scope(whose, search)
    if after is not None:
        stretch = stretch.where(_older(after))
    end = session.execute(stretch.with_only_columns(Message.created_at, Message.id)
                          .offset(walk - 1).limit(1)).first()  # where the walk stops (None: at the end)
    matching = stretch.where(*_filters(search))
    if end is not None:
        matching = matching.where(tuple_(Message.created_at, Message.id) >= tuple_(*end))
    rows = list(session.scalars(matching.limit(size + 1)))
    if len(rows) > size:
        rows = rows[:size]
        return rows, (rows[-1].created_at, rows[-1].id)
    return rows, ((end.created_at, end.id) if end is not None else None)


def find(session: Session, whose: Whose, message_id: str) -> Message | None:
    """A message in ``whose`` scope, or None (another account's message does not exist here)."""
    if "\x00" in message_id:
        return None
    q = select(Message).where(Message.id == message_id, Message.account_id == whose.account_id)
    if whose.user_id is not None:
        q = q.where(Message.user_id == whose.user_id)
    return session.scalar(q)
