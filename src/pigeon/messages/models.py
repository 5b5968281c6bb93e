"""The message record, one row per SMS sent or received."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    TextClause,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base, utcnow
from pigeon.lifecycle import Status

__all__ = ["Direction", "Message", "Status"]  # Status lives in pigeon.lifecycle


class Direction(StrEnum):
    OUTBOUND = "OUTBOUND"
    INBOUND = "INBOUND"


DATA_FIELD_HEAD = 64
DATA_FIELD_KEY = f"substr(data_field, 1, {DATA_FIELD_HEAD})"
"""What the data field's index holds, its head: the whole of it may be longer than an index
entry can be."""
ONLY_INBOUND = "direction = 'INBOUND'"
ONLY_READ = {"sqlite": "read = 1", "postgresql": "read"}
"""The rows some indexes hold, as their WHERE and as a query's condition that matches it
(SQLite takes a partial index only for a condition written as its WHERE is)."""


def _listing(name: str, *middle: str | TextClause, where: str | dict[str, str] | None = None) -> Index:
    by_dialect = where if isinstance(where, dict) else {"sqlite": where, "postgresql": where}
    condition = {} if where is None else {f"{d}_where": text(w) for d, w in by_dialect.items()}
    return Index(name, "user_id", "deleted", *middle, "created_at", "id", **condition)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    direction: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    from_number: Mapped[str | None] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))
    parts: Mapped[int] = mapped_column(Integer)
    credit_cost: Mapped[int] = mapped_column(BigInteger, default=0)  # thousandths of a credit
    campaign: Mapped[str | None] = mapped_column(String(255))
    data_field: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    final_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    received_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    replied_to_id: Mapped[str | None] = mapped_column(String(24))
    carrier: Mapped[str | None] = mapped_column(String(64))
    carrier_ref: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_detail: Mapped[str | None] = mapped_column(String(255))
    # What a send may ask beyond the text (Zoho Voice's parameters); None on most messages.
    region: Mapped[str | None] = mapped_column(String(2))  # the other party's country (ISO 3166), as priced
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # its validity period's end: not sent after
    flash: Mapped[bool | None] = mapped_column(Boolean)  # message class 0: shown at once, not stored
    data_coding: Mapped[int | None] = mapped_column(SmallInteger)  # forced: 0 GSM, 1 binary (body in hex), 2 UCS-2
    status_callback: Mapped[str | None] = mapped_column(Text)  # each status change is POSTed here, as JSON
    time_zone: Mapped[str | None] = mapped_column(String(64))  # the zone its scheduled time was given in
    mms: Mapped[bool | None] = mapped_column(Boolean)  # carries media (``pigeon.media``): only MMS carriers take it

    __table_args__ = (
        # The lists (messages/all), newest first. Each index starts with (user_id, deleted),
        # which every listing asks for, then what one filter asks for, and ends in the order,
        # so that a page is a seek and a walk of the page's rows. Each holds only the rows its
        # filter finds where the others are many (inbound, read, with a campaign...), so that
        # sending a message writes to none but ix_messages_list and those of its campaign and
        # data field, the carrier's answer to ix_messages_list_sent, and a receipt to none
        # (bench/list_indexes.py measured each). Statuses, outbound, unread and the text are
        # met on the way down ix_messages_list. See pigeon.messages.service.page.
        _listing("ix_messages_list"),
        _listing("ix_messages_list_inbound", where=ONLY_INBOUND),
        _listing("ix_messages_list_read", where=ONLY_READ),
        _listing("ix_messages_list_from", "from_number", where="from_number IS NOT NULL"),
        _listing("ix_messages_list_campaign", "campaign", where="campaign IS NOT NULL"),
        _listing("ix_messages_list_data_field", text(DATA_FIELD_KEY), where="data_field IS NOT NULL"),
        _listing("ix_messages_list_replies", "replied_to_id", where="replied_to_id IS NOT NULL"),
        _listing("ix_messages_list_sent", "sent_at", where="sent_at IS NOT NULL"),
        _listing("ix_messages_list_received", "received_at", where="received_at IS NOT NULL"),
        # the newest message to a number: inbound replies find their user by it, and the list
        # filtered by toNumber walks it
        Index("ix_messages_to_created", "to_number", "created_at"),
        # the console's account-wide list (an administrator's view of the whole team)
        Index("ix_messages_account", "account_id", "deleted", "created_at", "id"),
        Index("ix_messages_carrier_ref", "carrier", "carrier_ref"),
    )
