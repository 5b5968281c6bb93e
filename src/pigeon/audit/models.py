"""The audit log: an append-only row per change, in the transaction that made it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    account_id: Mapped[int | None] = mapped_column(Integer)  # the account changed (None: the platform's settings)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # the user who changed it (None: the command line)
    actor: Mapped[str] = mapped_column(String(320))  # their email then; "api:<email>", "oauth:<client>", "cli:<login>"
    action: Mapped[str] = mapped_column(String(64))  # "password.change", "token.rotate", "opt_out.add", ...
    subject: Mapped[str | None] = mapped_column(String(255))  # what it was done to: a user, a number, a phone
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_audit_log_at", "at", "id"),
        Index("ix_audit_log_account_at", "account_id", "at", "id"),
    )
