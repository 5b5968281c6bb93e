"""The console's message list: keyset pages of an account's messages (or one user's), newest
first, under any mix of filters. A page seeks from the last row of the one before it, so the
100,000th message costs what the first does; the account-wide list reads
``ix_messages_account``, a user's ``ix_messages_list``; the filters are met on the way down."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, false, or_, select, tuple_
from sqlalchemy.orm import Session

from pigeon.messages.models import Message

PAGE = 50


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


def query(whose: Whose, search: Search) -> Select:
    """The matching messages, newest first (no limit, no cursor)."""
    q = select(Message).where(Message.account_id == whose.account_id, Message.deleted == false())
    if whose.user_id is not None:
        q = q.where(Message.user_id == whose.user_id).with_hint(Message, "INDEXED BY ix_messages_list", "sqlite")
    else:
        q = q.with_hint(Message, "INDEXED BY ix_messages_account", "sqlite")
    if search.status:
        q = q.where(Message.status == search.status)
    if search.direction:
        q = q.where(Message.direction == search.direction)
    if search.number:
        q = q.where(or_(Message.to_number == search.number, Message.from_number == search.number))
    if search.text:
        escaped = search.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(Message.body.ilike(f"%{escaped}%", escape="\\"))
    if search.campaign:
        q = q.where(Message.campaign == search.campaign)
    if search.since is not None:
        q = q.where(Message.created_at >= search.since)
    if search.until is not None:
        q = q.where(Message.created_at < search.until)
    return q.order_by(Message.created_at.desc(), Message.id.desc())


def page(session: Session, whose: Whose, search: Search, after: Cursor | None = None,
         size: int = PAGE) -> tuple[list[Message], Cursor | None]:
    """One page after ``after``, and the cursor of the next (None: this was the last)."""
    q = query(whose, search)
    if after is not None:
        q = q.where(tuple_(Message.created_at, Message.id) < tuple_(*after))
    rows = list(session.scalars(q.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, ((rows[-1].created_at, rows[-1].id) if more else None)


def find(session: Session, whose: Whose, message_id: str) -> Message | None:
    """A message in ``whose`` scope, or None (another account's message does not exist here)."""
    if "\x00" in message_id:
        return None
    q = select(Message).where(Message.id == message_id, Message.account_id == whose.account_id)
    if whose.user_id is not None:
        q = q.where(Message.user_id == whose.user_id)
    return session.scalar(q)
