"""The console's conversations: one per customer number a scope has talked with, newest
activity first (the inbox), and a thread, the messages with one customer.

A message's customer is its recipient when it went out and its sender when it came in. The
inbox walks the scope's messages newest first down its listing index (``ix_messages_account``
for an account, ``ix_messages_list`` for a user), in chunks, keeping each customer's first
(newest) message; a page stops at ``size`` conversations or after ``WALK`` messages (a customer texted thousands of
times in a row fills pages with nothing else to show), so a page costs what the first one does
however many messages there are, and the next seeks from where it
stopped. A later page leaves out the customers an earlier one showed: those with a message newer
than where it starts, looked up by customer through ``ix_messages_to_created`` (what went out to
them) and ``ix_messages_list_from`` (what came from them). A thread reads the same two indexes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, column, false, func, select, table, true, tuple_, update
from sqlalchemy.orm import Session

from pigeon.messages.browse import Whose
from pigeon.messages.models import Direction, Message

M = Message.__table__
USERS = table("users", column("id"), column("account_id"))  # pigeon.accounts sits above: named, not imported
PAGE = 50
CHUNK = 200  # messages the walk reads at first; each further read takes twice as many, up to MAX_CHUNK
MAX_CHUNK = 4_000
WALK = 20_000  # messages one inbox page reads at most
OUT, IN = Direction.OUTBOUND.value, Direction.INBOUND.value

Cursor = tuple[dt.datetime, str]
"""A position in the newest-first order: a message's creation time and id."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """A customer number, the newest message with it, and how many of theirs are unread."""

    customer: str
    last: Message
    unread: int


def customer_of(direction: str, from_number: str | None, to_number: str | None) -> str | None:
    return from_number if direction == IN else to_number


def _scope(whose: Whose) -> list[ColumnElement[bool]]:
    where = [M.c.account_id == whose.account_id, M.c.deleted == false()]
    if whose.user_id is not None:
        where.append(M.c.user_id == whose.user_id)
    return where


def _users(whose: Whose) -> ColumnElement[bool]:
    """The scope's users, as ``ix_messages_list_from`` leads with them."""
    if whose.user_id is not None:
        return M.c.user_id == whose.user_id
    return M.c.user_id.in_(select(USERS.c.id).where(USERS.c.account_id == whose.account_id).scalar_subquery())


def _sent_to(whose: Whose, customers: list[str]) -> Select:
    """What the scope sent to these customers (``ix_messages_to_created``)."""
    return (select(M).where(M.c.to_number.in_(customers), M.c.direction == OUT, *_scope(whose))
            .with_hint(M, "INDEXED BY ix_messages_to_created", "sqlite"))


def _came_from(whose: Whose, customers: list[str]) -> Select:
    """What these customers sent to the scope (``ix_messages_list_from``)."""
    return (select(M).where(_users(whose), M.c.deleted == false(), M.c.from_number.in_(customers),
                            M.c.direction == IN, M.c.account_id == whose.account_id)
            .with_hint(M, "INDEXED BY ix_messages_list_from", "sqlite"))


def _from(start: Cursor) -> list[ColumnElement[bool]]:
    """At ``start`` or newer."""
    return [M.c.created_at >= start[0], tuple_(M.c.created_at, M.c.id) >= tuple_(*start)]


def _older(before: Cursor) -> list[ColumnElement[bool]]:
    return [M.c.created_at <= before[0], tuple_(M.c.created_at, M.c.id) < tuple_(*before)]


NEWEST = (M.c.created_at.desc(), M.c.id.desc())


def _walk(whose: Whose, after: Cursor | None, limit: int) -> Select:
    index = "ix_messages_list" if whose.user_id is not None else "ix_messages_account"
    query = (select(M.c.id, M.c.created_at, M.c.direction, M.c.from_number, M.c.to_number).where(*_scope(whose))
             .with_hint(M, f"INDEXED BY {index}", "sqlite").order_by(*NEWEST).limit(limit))
    return query.where(*_older(after)) if after is not None else query


def _shown_before(session: Session, whose: Whose, customers: list[str], start: Cursor) -> set[str]:
    """Those of ``customers`` with a message at ``start`` or newer: an earlier page met them there."""
    sent = _sent_to(whose, customers).where(*_from(start)).with_only_columns(M.c.to_number).distinct()
    came = _came_from(whose, customers).where(*_from(start)).with_only_columns(M.c.from_number).distinct()
    return set(session.scalars(sent)) | set(session.scalars(came))


def inbox(session: Session, whose: Whose, after: Cursor | None = None, size: int = PAGE,
          walk: int = WALK) -> tuple[list[Conversation], Cursor | None]:
    """A page of conversations, newest activity first, from ``after`` (where the page before
    stopped); and where the next page starts (None: this was the last)."""
    newest: dict[str, str] = {}  # customer -> its newest message's id, in the page's order
    met: set[str] = set()
    shown: set[str] = set()  # met here, and shown by an earlier page
    position, walked, chunk = after, 0, CHUNK
    while len(newest) < size and walked < walk:
        limit, chunk = min(chunk, walk - walked), min(2 * chunk, MAX_CHUNK)
        rows = [(at, message_id, sender if direction == IN else recipient) for message_id, at, direction, sender,
                recipient in session.execute(_walk(whose, position, limit))]
        fresh = []
        for *_, customer in rows:
            if customer and customer not in met:
                met.add(customer)
                fresh.append(customer)
        if after is not None and fresh:
            shown |= _shown_before(session, whose, fresh, after)
        read = 0
        for _, message_id, customer in rows:
            read += 1
            if customer and customer not in shown and customer not in newest:
                newest[customer] = message_id
                if len(newest) == size:
                    break
        if read:
            position = rows[read - 1][:2]
        walked += read
        if len(rows) < limit and read == len(rows):  # the scope's last message was read
            return _conversations(session, whose, newest), None
    return _conversations(session, whose, newest), position


def _conversations(session: Session, whose: Whose, newest: dict[str, str]) -> list[Conversation]:
    if not newest:
        return []
    by_id = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(list(newest.values()))))}
    unread = dict(session.execute(
        _came_from(whose, list(newest)).where(M.c.read == false())
        .with_only_columns(M.c.from_number, func.count()).group_by(M.c.from_number)).all())
    return [Conversation(customer, by_id[message_id], unread.get(customer, 0))
            for customer, message_id in newest.items() if message_id in by_id]


def thread(session: Session, whose: Whose, customer: str, before: Cursor | None = None,
           size: int = PAGE) -> tuple[list[Message], Cursor | None]:
    """The newest ``size`` messages with ``customer`` (older than ``before``), oldest first;
    and the cursor of the page before them (None: there is none)."""
    found = []
    for side in (_sent_to(whose, [customer]), _came_from(whose, [customer])):
        query = side.order_by(*NEWEST).limit(size + 1)
        query = query.where(*_older(before)) if before is not None else query
        found.extend(session.execute(select(Message).from_statement(query)).scalars())
    found.sort(key=lambda m: (m.created_at, m.id), reverse=True)
    more = len(found) > size
    page = found[:size]
    return page[::-1], ((page[-1].created_at, page[-1].id) if more else None)


def since(session: Session, whose: Whose, customer: str, at: dt.datetime, limit: int = 200) -> list[Message]:
    """The messages with ``customer`` created at ``at`` or later, oldest first (at most ``limit``)."""
    found = []
    for side in (_sent_to(whose, [customer]), _came_from(whose, [customer])):
        query = side.where(M.c.created_at >= at).order_by(M.c.created_at, M.c.id).limit(limit)
        found.extend(session.execute(select(Message).from_statement(query)).scalars())
    found.sort(key=lambda m: (m.created_at, m.id))
    return found[:limit]


def answered_on(session: Session, whose: Whose, customer: str) -> str | None:
    """Our number the customer last wrote to; else the one we last wrote to them from; else None."""
    came = session.execute(_came_from(whose, [customer]).where(M.c.to_number != "")
                           .with_only_columns(M.c.to_number).order_by(*NEWEST).limit(1)).scalar()
    if came:
        return came
    return session.execute(_sent_to(whose, [customer]).where(M.c.from_number.is_not(None))
                           .with_only_columns(M.c.from_number).order_by(*NEWEST).limit(1)).scalar()


def mark_read(session: Session, whose: Whose, customer: str) -> int:
    """Mark what the customer sent to the scope read; how many messages that changed."""
    return session.execute(
        update(M).where(_users(whose), M.c.deleted == false(), M.c.from_number == customer, M.c.direction == IN,
                        M.c.account_id == whose.account_id, M.c.read == false())
        .values(read=true())).rowcount
