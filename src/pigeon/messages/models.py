"""The message record, one row per SMS sent or received."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base, utcnow


class Direction(StrEnum):
    OUTBOUND = "OUTBOUND"
    INBOUND = "INBOUND"


class Status(StrEnum):
    """The Zoom Connect statuses, which every dialect maps from."""

    SCHEDULED = "SCHEDULED"  # accepted, waiting in the outbound queue
    SENT = "SENT"  # the carrier took it; no receipt yet
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    FAILED_REFUNDED = "FAILED_REFUNDED"  # failed, and its credits went back
    FAILED_OPTOUT = "FAILED_OPTOUT"
    UNKNOWN = "UNKNOWN"  # the carrier could not tell


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

    __table_args__ = (
        Index("ix_messages_user_created", "user_id", "created_at"),
        Index("ix_messages_to_created", "to_number", "created_at"),
        Index("ix_messages_carrier_ref", "carrier", "carrier_ref"),
    )
