"""An account is a team; each user of a team has its own tokens and credit balance. Beside
them, what signing in needs: the server key of the token hashes, and failed sign-ins counted
per client address and per email (pigeon.accounts.throttle)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.credits import MILLI
from pigeon.db import Base, utcnow

__all__ = ["MILLI", "Account", "ServerKey", "SigninFailures", "User", "WebSession"]


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)  # a reseller's customer
    is_master: Mapped[bool] = mapped_column(Boolean, default=False)  # the operator's: above every account


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    contact_number: Mapped[str | None] = mapped_column(String(32))
    company: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    token_hash: Mapped[str] = mapped_column(String(64))
    url_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    credit_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    reply_url: Mapped[str | None] = mapped_column(String(2048))  # developer settings: webhooks
    report_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_secret: Mapped[str | None] = mapped_column(String(255))  # HMAC key: must be kept readable
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ServerKey(Base):
    """Secrets every process sharing the database must agree on; ``token`` is the key of the
    token hashes when PIGEON_TOKEN_KEY is not set (made by migration 0005)."""

    __tablename__ = "server_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class SigninFailures(Base):
    """Failed sign-ins of one client address (``a:``) or one email (``e:`` and its SHA-256),
    counted from ``window_start`` for one window."""

    __tablename__ = "signin_failures"
    __table_args__ = (Index("ix_signin_failures_window_start", "window_start"),)

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime)
    failures: Mapped[int] = mapped_column(Integer)


class WebSession(Base):
    """A user signed in to the console: found by the keyed hash of its cookie's token (the token
    itself is never stored), with the CSRF token its forms carry. It ends when signed out, when
    idle or old past the configured limits, and when the user's password changes."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
