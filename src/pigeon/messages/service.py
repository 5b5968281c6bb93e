"""Plain functions over a session: find, page and mark messages (their statuses are written
by ``pigeon.delivery.statuses``, deletion is ``pigeon.delivery.queue.delete_message``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple, dataclass

from sqlalchemy import ColumnElement, Select, func, literal_column, select, text
from sqlalchemy.orm import Session

from pigeon.db import paging
from pigeon.messages.models import (
    DATA_FIELD_HEAD,
    DATA_FIELD_KEY,
    ONLY_INBOUND,
    Direction,
    Message,
    Status,
)

M = Message.__table__


@dataclass(slots=True)
class MessageFilter:
    """What /messages/all and its kin can ask for; None means 'any'."""

    direction: Direction | None = None
    status: Status | None = None
    sent_from: dt.datetime | None = None
    sent_before: dt.datetime | None = None
    received_from: dt.datetime | None = None
    received_before: dt.datetime | None = None
    from_number: str | None = None
    to_number: str | None = None
    text: str | None = None
    campaign: str | None = None
    data_field: str | None = None
    deleted: bool | None = False
    read: bool | None = None
    replies_to: str | None = None


MESSAGES = paging.Listing("messages", (Message.created_at, Message.id), descending=True)
SORT_UP_TO = 20_000
"""A date range that holds at most this many of the user's messages is listed from its own
index (its keys sorted: a few milliseconds); a larger one by walking the messages newest
first, which meets the range's rows soon (see ``CLOCK_SLACK``)."""
CLOCK_SLACK = dt.timedelta(days=1)
"""How far a message's creation may follow its sending or its receipt: a message is created
before it is sent, and stored as soon as it is received; a day allows for clocks that
disagree and a database down for hours. A walk for a large date range starts this long after
the range's end."""
RANGES = (("sent_at", "sent_from", "sent_before", "ix_messages_list_sent"),
          ("received_at", "received_from", "received_before", "ix_messages_list_received"))


def get(session: Session, user_id: int, message_id: str) -> Message | None:
    """A message of this user's, or None: another user's message does not exist for them (nor
    does an id holding NUL, which PostgreSQL could not even compare)."""
    if "\x00" in message_id:
        return None
    return session.scalar(select(Message).where(Message.id == message_id, Message.user_id == user_id))


def page(session: Session, user_id: int, flt: MessageFilter, *, number: int, size: int) -> paging.Page[Message]:
    """One page (from 1) of a user's messages, newest first, and how many there are (see
    ``pigeon.db.paging``), from the index that ``_index`` picks for the filter; date ranges
    as ``RANGES`` says."""
    base = select(Message).where(Message.user_id == user_id)
    query = _filtered(base, flt)
    keys = counted = _hinted(query.with_only_columns(Message.created_at, Message.id), _index(flt))
    ranged = False
    for column, since, before, index in RANGES:
        start, end = getattr(flt, since), getattr(flt, before)
        if start is None and end is None:
            continue
        counted = _hinted(query.with_only_columns(Message.created_at, Message.id), index)
        held = session.scalar(select(func.count()).select_from(counted.limit(SORT_UP_TO + 1).subquery())) or 0
        if held <= SORT_UP_TO:
            keys, ranged = counted, True
            break
        # a walk, newest first: the range's own index must not be taken for it (a sort of all
        # it holds), so its conditions are written so that no index matches them
        keys = _hinted(_filtered(base, flt, unindexed={column}).with_only_columns(Message.created_at, Message.id),
                       _index(flt))
        if end is not None:
            keys = keys.where(Message.created_at < end + CLOCK_SLACK)
        break
    return paging.paged(session, MESSAGES, (user_id, astuple(flt)), query, number, size, keys=keys, counted=counted,
                        remember=not _counted_by_index(flt), sort=ranged)


ALONE = {"from_number", "to_number", "campaign", "data_field", "replies_to"}
RANGE_FIELDS = ({"sent_from", "sent_before"}, {"received_from", "received_before"})


def _counted_by_index(f: MessageFilter) -> bool:
    """Whether the filter's index holds its rows and no others (then counting them reads at
    most ``paging.Totals.exact_up_to`` index entries, and the total is exact on every page);
    else counting reads every row of the user's, and the total is remembered for a while."""
    if f.deleted is None:
        return False
    given = {name for name in f.__slots__ if getattr(f, name) is not None} - {"deleted"}
    if not given or any(given <= fields for fields in RANGE_FIELDS):
        return True
    if len(given) > 1:
        return False
    (name,) = given
    return (name in ALONE or (name == "direction" and f.direction == Direction.INBOUND)
            or (name == "read" and f.read is True))


def _index(f: MessageFilter) -> str | None:
    """The index a filter's page is read from: the one of its filter that holds the fewest
    rows, most likely (the planners would guess; SQLite, without statistics, not well)."""
    if f.deleted is None:
        return None
    if f.data_field is not None:
        return "ix_messages_list_data_field"
    if f.replies_to is not None:
        return "ix_messages_list_replies"
    if f.to_number is not None:
        return "ix_messages_to_created"
    if f.from_number is not None:
        return "ix_messages_list_from"
    if f.campaign is not None:
        return "ix_messages_list_campaign"
    if f.read:
        return "ix_messages_list_read"
    if f.direction == Direction.INBOUND:
        return "ix_messages_list_inbound"
    return "ix_messages_list"


def _hinted(query: Select, index: str | None) -> Select:
    return query if index is None else query.with_hint(Message, f"INDEXED BY {index}", "sqlite")


def _filtered(query: Select, f: MessageFilter, *, unindexed: set[str] = frozenset()) -> Select:
    """The filter's conditions; those of the rows a partial index holds written as its WHERE is."""
    def col(name: str) -> ColumnElement:
        column = getattr(Message, name)
        return func.coalesce(column, column) if name in unindexed else column

    conditions = [
        (f.direction, lambda v: text(ONLY_INBOUND) if v == Direction.INBOUND else Message.direction == v),
        (f.status, lambda v: Message.status == v),
        (f.sent_from, lambda v: col("sent_at") >= v),
        (f.sent_before, lambda v: col("sent_at") < v),
        (f.received_from, lambda v: col("received_at") >= v),
        (f.received_before, lambda v: col("received_at") < v),
        (f.from_number, lambda v: Message.from_number == v),
        (f.to_number, lambda v: Message.to_number == v),
        (f.text, lambda v: Message.body.ilike(f"%{_escape_like(v)}%", escape="\\")),
        (f.campaign, lambda v: Message.campaign == v),
        (f.data_field, _data_field_is),
        (f.deleted, lambda v: Message.deleted == v),
        (f.read, lambda v: Message.read == v),
        (f.replies_to, lambda v: Message.replied_to_id == v),
    ]
    for value, condition in conditions:
        if value is not None:
            query = query.where(condition(value))
    return query


def _data_field_is(value: str) -> ColumnElement[bool]:
    """The data field's index holds its head: a value shorter than that is matched by the
    head alone; a longer one is then compared whole, written so that SQLite does not put the
    value in place of the column in the head's expression (constant propagation), which
    would no longer match the index."""
    condition = (literal_column(DATA_FIELD_KEY) == value[:DATA_FIELD_HEAD]) & Message.data_field.is_not(None)
    if len(value) >= DATA_FIELD_HEAD:
        condition &= func.coalesce(Message.data_field, Message.data_field) == value
    return condition


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def set_read(session: Session, user_id: int, message_id: str, read: bool) -> Message | None:
    message = get(session, user_id, message_id)
    if message is not None:
        message.read = read
    return message


def last_sent_to(session: Session, number: str, account_id: int | None = None) -> Message | None:
    """The most recent outbound message to this number, from any user (of ``account_id`` if given)."""
    query = select(Message).where(Message.to_number == number, Message.direction == Direction.OUTBOUND)
    if account_id is not None:
        query = query.where(Message.account_id == account_id)
    return session.scalar(query.order_by(Message.created_at.desc(), Message.id.desc()).limit(1))
