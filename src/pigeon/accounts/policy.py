"""Who may do what in a team: the permissions, as plain functions of the caller and the user
it names, raising the core's kinds of error.

An administrator reaches every user of its team; anyone else only itself. A user of another
team, like an unknown one, does not exist for the caller (``NotFound``), so ids and emails of
other teams reveal nothing; a team-mate the caller may not reach is ``Forbidden``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from pigeon.accounts.models import Account, User
from pigeon.accounts.service import Principal
from pigeon.errors import Forbidden, NotFound


def reach(caller: Principal, user: User | None, name: object) -> User:
    """``user`` if the caller may see and change it; ``name`` is how the request named it."""
    if user is None or user.account_id != caller.account_id:
        raise NotFound(f"No user {name} in your team")
    if not caller.is_admin and user.id != caller.user_id:
        raise Forbidden(f"Only a team administrator can reach user {name}")
    return user


def is_operator(session: Session, account_id: int) -> bool:
    """Whether the account is the operator's master account (``is_master``, under no other):
    the one that takes numbers from the pool, and whose OAuth clients may speak for a carrier."""
    found = session.get(Account, account_id)
    return found is not None and found.is_master and found.parent_id is None


def reaches_account(session: Session, actor: int, target: int) -> bool:
    """Whether an account may act on another: itself; every account, for the operator's master
    account; the accounts under it (its customers, theirs...), for a reseller."""
    if actor == target:
        return True
    found = session.get(Account, actor)
    if found is None:
        return False
    if found.is_master and found.parent_id is None:  # the operator's, as is_operator says: under no account
        return session.get(Account, target) is not None
    seen, current = set(), session.get(Account, target)
    while current is not None and current.parent_id is not None and current.id not in seen:
        if current.parent_id == actor:
            return True
        seen.add(current.id)
        current = session.get(Account, current.parent_id)
    return False


def sees(caller: Principal, user: User) -> bool:
    """Whether the caller may see ``user``'s record (its balance included)."""
    return user.account_id == caller.account_id and (caller.is_admin or user.id == caller.user_id)


def visible(caller: Principal, users: Iterable[User]) -> list[User]:
    """Those of ``users`` the caller may see."""
    return [user for user in users if sees(caller, user)]


def may_create_users(caller: Principal) -> None:
    if not caller.is_admin:
        raise Forbidden("Only a team administrator can create users")


def may_spend(caller: Principal, source: User) -> None:
    """Whether the caller may move credits out of ``source``'s balance: its own, or any of its
    team's if it is an administrator."""
    if not caller.is_admin and source.id != caller.user_id:
        raise Forbidden("Only a team administrator can transfer another user's credits")
