"""The outbound queue: one row per message still to hand to a carrier.

A row is claimable when ``available_at`` has passed. Claiming pushes ``available_at`` out by
the lease, so a worker that dies mid-batch lets its rows fall back to the others; handing the
message over deletes the row in the same transaction that records the carrier's answer.
Scheduled sends are rows whose ``available_at`` lies in the future.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base


class QueueEntry(Base):
    __tablename__ = "outbound_queue"

    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    available_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
