"""The webhook outbox: one row per event to push, written in the transaction that caused it.

A row is PENDING until its receiver answers 2xx (DELIVERED) or its retries run out (FAILED).
``available_at`` is when it may next be tried; the dispatcher leases a row by pushing it out.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base, utcnow


class Kind(StrEnum):
    REPLY = "REPLY"  # to the user's reply URL, form-encoded and signed (Zoom Connect)
    REPORT = "REPORT"  # to the user's delivery report URL, likewise
    CALLBACK = "CALLBACK"  # to the message's own status callback URL, as given: a JSON body (Zoho Voice)


class State(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class WebhookEvent(Base):
    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, sent as the nonce
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[str] = mapped_column(String(24))
    url: Mapped[str] = mapped_column(String(2048))
    receiver: Mapped[str] = mapped_column(String(300))  # scheme://host:port, the unit of isolation
    params: Mapped[str] = mapped_column(Text)  # JSON object of the parameters, without nonce and checksum
    state: Mapped[str] = mapped_column(String(16), default=State.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    available_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_webhook_events_due", "state", "available_at"),
        Index("ix_webhook_events_receiver_due", "receiver", "state", "available_at"),
        Index("ix_webhook_events_user", "user_id", "created_at"),
        Index("ix_webhook_events_message", "message_id"),  # a message's deliveries, in the console
    )
