"""An opt-out: a phone that asked, with a keyword, to get nothing more within a scope (a consent
policy, ``policy:ID``; a number of Pigeon's under none, ``number:+E164``; or an account,
``account:ID``, for messages that go out from no number of its own). Consent policies, and
every keyword event."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base


class OptOut(Base):
    __tablename__ = "opt_outs"

    scope: Mapped[str] = mapped_column(String(48), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    keyword: Mapped[str] = mapped_column(String(16))  # or how it was set: IMPORT, API, CLI
    at: Mapped[dt.datetime] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_opt_outs_account", "account_id", "phone"),
        Index("ix_opt_outs_account_at", "account_id", "at"),  # the console's list, newest first
    )


class ConsentPolicy(Base):
    """An account's consent policy: its keywords (beside the standard ones, which it cannot
    remove) and texts hold for every number assigned to it, and an opt-out holds for them all."""

    __tablename__ = "consent_policies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)  # who made it
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    opt_in_prompt: Mapped[str] = mapped_column(String(500))
    opt_in_keywords: Mapped[str] = mapped_column(Text)  # JSON lists, as given
    opt_in_message: Mapped[str] = mapped_column(String(500))
    opt_out_keywords: Mapped[str] = mapped_column(Text)
    opt_out_message: Mapped[str] = mapped_column(String(500))
    help_keywords: Mapped[str] = mapped_column(Text)
    help_message: Mapped[str] = mapped_column(String(500))
    disclaimer: Mapped[str] = mapped_column(String(500))
    disclaimer_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class FirstContact(Base):
    """A phone a scope has sent to: its first message carried the policy's disclaimer."""

    __tablename__ = "consent_contacts"

    scope: Mapped[str] = mapped_column(String(48), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_at: Mapped[dt.datetime] = mapped_column(DateTime)


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
