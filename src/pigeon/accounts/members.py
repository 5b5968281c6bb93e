"""A team's members as the console lists and changes them: its users by keyset pages, whom a
visitor acts as on an account, and passwords made for them.

The rules of who reaches whom stay in ``policy`` and ``team``; this module only finds rows and
names the principal those rules are applied to.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from pigeon.accounts.models import User
from pigeon.accounts.service import Principal, administrator
from pigeon.errors import Invalid

PAGE = 50
MADE_PASSWORD_BYTES = 12  # 16 URL-safe characters: past sessions.MIN_PASSWORD, and 96 bits


def page(session: Session, account_id: int, *, after: int | None = None, text: str | None = None,
         size: int = PAGE) -> tuple[list[User], int | None]:
    """The account's users in id order after the user ``after`` (read from the account's index,
    whose entries hold the id), those whose email contains ``text`` if given; and the id the
    next page starts after, or None on the last page."""
    query = select(User).where(User.account_id == account_id)
    if after is not None:
        query = query.where(User.id > after)
    if text:
        query = query.where(User.email.icontains(text.strip(), autoescape=True))
    found = list(session.scalars(query.order_by(User.id).limit(size + 1)))
    return found[:size], found[size - 1].id if len(found) > size else None


def acting(session: Session, caller: Principal, account_id: int) -> Principal:
    """Whom ``caller`` acts as on ``account_id`` (which the caller has been found to reach):
    itself on its own account; on another (the operator, a reseller's administrator), that
    account's administrator, whose balance gives a new user's opening credits as it would over
    the API. ``Invalid`` for an account with no administrator."""
    if account_id == caller.account_id:
        return caller
    admin_id = administrator(session, account_id)
    admin = session.get(User, admin_id) if admin_id is not None else None
    if admin is None:
        raise Invalid(f"Account {account_id} has no administrator to act as")
    return Principal(admin.id, admin.account_id, admin.email, True)


def made_password() -> str:
    """A password made for a user, to be shown once."""
    return secrets.token_urlsafe(MADE_PASSWORD_BYTES)
