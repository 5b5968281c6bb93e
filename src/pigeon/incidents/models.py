"""One row per incident: an item set aside by a batched write, or a message in doubt."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base, utcnow


class Kind(StrEnum):
    #: an item that failed on its own inside a batched write; the rest of its batch went on
    SET_ASIDE = "set_aside"
    #: a message handed to a carrier whose answer was never recorded (a crash, a dropped link)
    IN_DOUBT = "in_doubt"


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    #: set aside: the write it failed in (record, receipt, inbound, webhook); in doubt: how it
    #: was found and what was done (resend or unknown: a lapsed claim; link: a dropped link)
    stage: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(128))  # a message id, a carrier reference, an event id
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)  # the item, as JSON, for the operator to act on
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        Index("ix_incidents_kind_created", "kind", "created_at"),
        Index("ix_incidents_subject", "subject"),
    )
