"""Plain functions over a session: create accounts and users, authenticate, read balances."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pigeon.accounts.models import MILLI, Account, User
from pigeon.accounts.security import hash_token, new_token, token_matches


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the authenticated user and its team."""

    user_id: int
    account_id: int
    email: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user just created, with the only copies of its tokens that will ever exist."""

    user: User
    token: str
    url_token: str


class EmailTaken(ValueError):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def to_milli(credits: float) -> int:
    return round(credits * MILLI)


def from_milli(milli: int) -> float:
    return milli / MILLI


def create_account(
    session: Session, email: str, *, credits: float = 0.0, name: str | None = None
) -> NewUser:
    """A new team with one user, its administrator."""
    account = Account(name=name or email)
    session.add(account)
    session.flush()
    return create_user(session, account.id, email, credits=credits, is_admin=True)


def create_user(
    session: Session,
    account_id: int,
    email: str,
    *,
    credits: float = 0.0,
    is_admin: bool = False,
    **profile: str | None,
) -> NewUser:
    email = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise EmailTaken(f"a user with email {email} already exists")
    token, url_token = new_token(), new_token()
    user = User(
        account_id=account_id,
        email=email,
        is_admin=is_admin,
        token_hash=hash_token(token),
        url_token_hash=hash_token(url_token),
        credit_balance=to_milli(credits),
        **profile,
    )
    session.add(user)
    session.flush()
    return NewUser(user, token, url_token)


def rotate_tokens(session: Session, email: str) -> NewUser | None:
    """New API and URL-sending tokens for a user; the old ones stop working."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        return None
    token, url_token = new_token(), new_token()
    user.token_hash, user.url_token_hash = hash_token(token), hash_token(url_token)
    return NewUser(user, token, url_token)


def authenticate(session: Session, email: str, token: str) -> Principal | None:
    """The user whose email and API token these are, or None."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        token_matches(token, "0" * 64)  # same work whether or not the email exists
        return None
    if not token_matches(token, user.token_hash):
        return None
    return _principal(user)


def authenticate_url_token(session: Session, url_token: str) -> Principal | None:
    """The user whose URL-sending token this is, or None."""
    user = session.scalar(select(User).where(User.url_token_hash == hash_token(url_token)))
    return None if user is None else _principal(user)


def _principal(user: User) -> Principal:
    return Principal(user.id, user.account_id, user.email, user.is_admin)


def balance(session: Session, user_id: int) -> float:
    return from_milli(session.scalar(select(User.credit_balance).where(User.id == user_id)) or 0)


def add_credits(session: Session, user_id: int, milli: int) -> None:
    session.execute(
        update(User).where(User.id == user_id).values(credit_balance=User.credit_balance + milli)
    )


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0
