"""A team's users as a caller sees them: found by id or email, created, changed, and credits
moved between them, each under the team's policy (``pigeon.accounts.policy``).

Creating a user is two steps, as a send is: ``prepare_user`` checks and hashes (scrypt is
slow: before any transaction), ``create_user`` writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from pigeon.accounts import policy
from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.accounts.service import Principal, Profile
from pigeon.errors import InsufficientCredits, Invalid, NotFound

MAX_USER_ID = 2**31 - 1  # users.id is an INTEGER


def by_id(session: Session, caller: Principal, raw_id: str) -> User:
    """The user an id names, if the caller may reach it; an id that is not a whole number in
    range is simply not found."""
    user_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 10 else 0
    found = accounts.team_user(session, caller.account_id, user_id) if 0 < user_id <= MAX_USER_ID else None
    return policy.reach(caller, found, raw_id)


def member(session: Session, caller: Principal, email: str) -> User:
    """A user of the caller's team, whoever the caller is; ``NotFound`` naming the email if none."""
    found = accounts.team_user_by_email(session, caller.account_id, email)
    if found is None:
        raise NotFound(f"No user {email} in your team")
    return found


def search(session: Session, caller: Principal, text: str) -> list[User]:
    """The users whose email contains ``text`` (ignoring case) that the caller may see."""
    return policy.visible(caller, accounts.search_team_users(session, caller.account_id, text))


def reported(session: Session, caller: Principal, email: str | None) -> list[User]:
    """The users a statistics report covers: the one named, if the caller may reach it; else
    the whole team for an administrator, the caller alone for anyone else."""
    if email:
        return [policy.reach(caller, member(session, caller, email), email)]
    if caller.is_admin:
        return accounts.team_users(session, caller.account_id)
    return [by_id(session, caller, str(caller.user_id))]


@dataclass(frozen=True, slots=True)
class PreparedUser:
    """A user checked and ready to write: its email, its columns (password hashed), and the
    opening balance to move from the administrator's."""

    email: str
    columns: dict[str, str]
    milli: int


def prepare_user(caller: Principal, profile: Profile, email: str | None, milli: int, region: str) -> PreparedUser:
    """``Forbidden`` unless the caller administers its team; ``Invalid`` unless every field a
    user needs is given and well formed."""
    policy.may_create_users(caller)
    checked = accounts.check_new_user(profile, email)
    return PreparedUser(checked, accounts.profile_columns(profile, region), milli)


def create_user(session: Session, caller: Principal, new: PreparedUser) -> User:
    """Write a prepared user (``Conflict`` if the email is anyone's; ``InsufficientCredits`` if
    the caller cannot give its opening balance)."""
    policy.may_create_users(caller)
    return accounts.create_sub_account(session, caller, new.email, new.columns, milli=new.milli)


def transfer(session: Session, caller: Principal, source_email: str, target_email: str, milli: int) -> User:
    """Move credits between two users of the caller's team, as the policy allows, all or
    nothing; the receiver, with its new balance, if the caller may see it, else the caller
    itself (who gave the credits): a transfer never shows a record the policy hides."""
    if accounts.normalise_email(source_email) == accounts.normalise_email(target_email):
        raise Invalid("transferFromEmailAddress and transferToEmailAddress are the same user")
    source, target = member(session, caller, source_email), member(session, caller, target_email)
    policy.may_spend(caller, source)
    try:
        accounts.transfer_credits(session, source.id, target.id, milli)
    except InsufficientCredits as exc:
        raise InsufficientCredits(f"{exc.detail} from {source.email}") from None
    shown = target if policy.sees(caller, target) else source
    session.refresh(shown)
    return shown
