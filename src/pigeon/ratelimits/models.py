"""One count per key (a dialect's name for who and what it limits) in its current window."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base


class RateCount(Base):
    __tablename__ = "rate_counts"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime)
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_rate_counts_window_start", "window_start"),)
