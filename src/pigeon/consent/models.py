"""An opt-out: a phone that asked, with a keyword, to get nothing more within a scope (a number
of Pigeon's, ``number:+E164``, or an account, ``account:ID``, for messages that go out from no
number of its own). Every keyword event is kept."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base


class OptOut(Base):
    __tablename__ = "opt_outs"

    scope: Mapped[str] = mapped_column(String(48), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    keyword: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(DateTime)


class KeywordEvent(Base):
    __tablename__ = "keyword_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(Integer)
    scope: Mapped[str] = mapped_column(String(48))
    phone: Mapped[str] = mapped_column(String(32))
    number: Mapped[str | None] = mapped_column(String(32))  # the number texted, as stored
    keyword: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(String(24))
    at: Mapped[dt.datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_keyword_events_account_at", "account_id", "at"),)
