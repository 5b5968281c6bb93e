"""Who made a change through an API, as the audit log names them: ``Actor``, from a dialect's
signed-in user (``user_actor``) or an OAuth token's grant (``grant_actor``); and ``listed`` and
``named``, which write a bulk change's items in one entry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from pigeon.accounts.models import User
from pigeon.accounts.service import Principal
from pigeon.audit import service as audit
from pigeon.oauth.service import Grant

T = TypeVar("T")

SHOWN = 3  # the items a bulk change's entry names; the rest are counted


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change through an API, as the audit log names them: ``api:<email>`` for a
    user (a dialect's credentials, or an OAuth token issued for a user), ``oauth:<client_id>``
    for an OAuth client acting for its account with no user."""

    name: str
    user_id: int | None = None

    def record(self, session: Session, action: str, *, account_id: int, subject: str | None,
               detail: str | None = None) -> None:
        """One entry, in the caller's transaction: the change and its entry commit together."""
        audit.record(session, action, actor=self.name, actor_id=self.user_id, account_id=account_id,
                     subject=subject, detail=detail)


def user_actor(principal: Principal) -> Actor:
    return Actor(f"api:{principal.email}", principal.user_id)


def grant_actor(session: Session, grant: Grant) -> Actor:
    """The caller of an OAuth access token: its user, if it was issued for one, else its client."""
    if grant.user_id is not None:
        user = session.get(User, grant.user_id)
        if user is not None:
            return Actor(f"api:{user.email}", user.id)
    return Actor(f"oauth:{grant.client_id}")


def named(items: Sequence[T], name: Callable[[T], str] = str) -> str:  # type: ignore[assignment]
    """The first few items, named, and how many more: "+1415..., +1415..., +1415... and 2 more"."""
    shown = ", ".join(name(item) for item in items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def listed(items: Sequence[T], noun: str, name: Callable[[T], str] = str,  # type: ignore[assignment]
           plural: str | None = None) -> str:
    """How many items a bulk change touched, and the first few: "5 numbers: +1..., +1..., +1... and 2 more"."""
    return f"{len(items)} {noun if len(items) == 1 else plural or noun + 's'}: {named(items, name)}"
