"""An OAuth client belongs to an account and holds scopes; an access token, granted to a
client, carries the account and the scopes it acts with until it expires. Secrets and tokens
are kept only as keyed hashes (``pigeon.accounts.security``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base, utcnow


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the client id, public
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text)  # space-separated, as OAuth writes them
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    carrier: Mapped[str | None] = mapped_column(String(32))  # a peering provider's: the carrier it speaks for
    #: a self-client's user (Zoho): its tokens act as that user, whose messages they send and read
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class OAuthToken(Base):
    __tablename__ = "oauth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id"), index=True)
    account_id: Mapped[int] = mapped_column(Integer)
    scopes: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(Integer)  # its client's user, if the client has one

    __table_args__ = (Index("ix_oauth_tokens_expires_at", "expires_at"),)


class OAuthGrantCode(Base):
    """A self-client's one-time grant code (Zoho's ``authorization_code``), short-lived."""

    __tablename__ = "oauth_grant_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id"), index=True)
    scopes: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class OAuthRefreshToken(Base):
    """A refresh token (Zoho's): good until revoked, it gets new access tokens with its scopes."""

    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id"), index=True)
    scopes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
