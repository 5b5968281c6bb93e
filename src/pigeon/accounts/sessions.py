"""Signing in to the console with a password, and the web sessions that follow.

A session's token (32 random bytes, in an HttpOnly cookie) is kept only as its keyed hash,
like API tokens (``security.keyed_hash``), so a copy of the database opens no session. Each
session has its own CSRF token, which every form and htmx request of the console carries. A
session ends when signed out, after ``idle`` without a request or ``lifetime`` in all, and
every session of a user ends when their password changes (but the one that changed it).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from pigeon.accounts.models import User, WebSession
from pigeon.accounts.security import hash_password, keyed_hash, password_matches
from pigeon.accounts.service import Principal, normalise_email, token_key
from pigeon.errors import Invalid

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
UNUSABLE = hash_password(secrets.token_urlsafe(32))
"""What a password is checked against when there is no such user or they have no password:
the same scrypt work, never a match."""
TOUCH_EVERY = dt.timedelta(minutes=1)
"""A session's last-seen time is written at most this often (not on every request)."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A session just opened: the only copy of its token, and its CSRF token."""

    token: str
    csrf: str


@dataclass(frozen=True, slots=True)
class Found:
    principal: Principal
    csrf: str
    token_hash: str
    stale: bool  # its last-seen time is due to be brought forward (``touch_session``)


@dataclass(frozen=True, slots=True)
class Candidate:
    """Who an email names and their stored password hash, read before the (slow) check, so
    that no transaction is held while scrypt runs."""

    principal: Principal | None
    stored: str


def candidate(session: Session, email: str) -> Candidate:
    """The user of this email and their password hash; for nobody (or no password), a hash
    that never matches, so that ``matches`` does the same work either way."""
    user = None if "\x00" in email else session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not user.password_hash:
        return Candidate(None, UNUSABLE)
    return Candidate(Principal(user.id, user.account_id, user.email, user.is_admin), user.password_hash)


def matches(found: Candidate, password: str) -> Principal | None:
    """The candidate's principal if the password is theirs (one scrypt, whoever it is)."""
    right = password_matches(password[:MAX_PASSWORD], found.stored)
    return found.principal if right and found.principal is not None else None


def check_password(session: Session, email: str, password: str) -> Principal | None:
    """The user with this email and password, or None; the same scrypt work either way."""
    return matches(candidate(session, email), password)


def check_new_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"A password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise Invalid(f"A password has at most {MAX_PASSWORD} characters")
    return password


def hashed(password: str) -> str:
    """A new password checked and hashed (scrypt: hash it before opening a write)."""
    return hash_password(check_new_password(password))


def set_password(session: Session, user_id: int, password: str, *, keep: str | None = None,
                 digest: str | None = None) -> None:
    """A new password for a user (or its ``digest``, from ``hashed``); their other sessions end
    (all but ``keep``, a token hash)."""
    session.execute(update(User).where(User.id == user_id).values(password_hash=digest or hashed(password)))
    ended = delete(WebSession).where(WebSession.user_id == user_id)
    if keep is not None:
        ended = ended.where(WebSession.token_hash != keep)
    session.execute(ended)


def open_session(session: Session, principal: Principal, address: str | None, now: dt.datetime) -> Opened:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=keyed_hash(token_key(session), token), user_id=principal.user_id, csrf=csrf,
                           address=(address or "")[:64] or None, created_at=now, seen_at=now))
    return Opened(token, csrf)


def find_session(session: Session, token: str, now: dt.datetime, *, idle: dt.timedelta,
                 lifetime: dt.timedelta) -> Found | None:
    """The live session of this token, or None if there is none or it has lapsed. A read only:
    when ``stale``, the caller brings its last-seen time forward with ``touch_session`` (at
    most once a minute, so that pages cost no write)."""
    digest = keyed_hash(token_key(session), token[:64])
    row = session.execute(
        select(WebSession.csrf, WebSession.seen_at, WebSession.created_at, User.id, User.account_id, User.email,
               User.is_admin)
        .join(User, User.id == WebSession.user_id).where(WebSession.token_hash == digest)).first()
    if row is None or row.seen_at + idle < now or row.created_at + lifetime < now:
        return None
    return Found(Principal(row.id, row.account_id, row.email, row.is_admin), row.csrf, digest,
                 now - row.seen_at > TOUCH_EVERY)


def touch_session(session: Session, token_hash: str, now: dt.datetime) -> None:
    session.execute(update(WebSession).where(WebSession.token_hash == token_hash).values(seen_at=now))


def close_session(session: Session, token_hash: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))


def purge_sessions(session: Session, now: dt.datetime, *, idle: dt.timedelta, lifetime: dt.timedelta) -> int:
    """Forget lapsed sessions; how many."""
    result = session.execute(delete(WebSession).where(or_(WebSession.seen_at < now - idle,
                                                          WebSession.created_at < now - lifetime)))
    return result.rowcount or 0
