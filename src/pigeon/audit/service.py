"""Writing and reading the audit log: ``record`` adds a row in the caller's transaction, so a
change and its entry commit together or not at all."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, tuple_
from sqlalchemy.orm import Session

from pigeon.audit.models import AuditEntry

PAGE = 50


def record(session: Session, action: str, *, actor: str, actor_id: int | None = None, account_id: int | None = None,
           subject: str | None = None, detail: str | None = None) -> AuditEntry:
    entry = AuditEntry(action=action, actor=actor[:320], actor_id=actor_id, account_id=account_id,
                       subject=None if subject is None else subject[:255], detail=detail)
    session.add(entry)
    return entry


def _family(action: str) -> str | None:
    """The prefix an action filter names when it names a family ("contact", "contact.*"), else None."""
    if action.endswith(".*"):
        return action[:-1]
    return action + "." if "." not in action else None


def page(session: Session, *, account_id: int | None = None, action: str | None = None,
         before: tuple[dt.datetime, int] | None = None, size: int = PAGE) -> list[AuditEntry]:
    """Entries newest first, of one account or of all, after a keyset cursor (the last entry's
    time and id); ``action`` is one action ("contact.create") or a family of them ("contact",
    "contact.*"), met on the way down the time index."""
    query = select(AuditEntry)
    if account_id is not None:
        query = query.where(AuditEntry.account_id == account_id)
    if action:
        family = _family(action)
        if family is None:
            query = query.where(AuditEntry.action == action)
        else:
            escaped = family.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(or_(AuditEntry.action == family[:-1],  # "signin" is of the family "signin"
                                    AuditEntry.action.like(escaped + "%", escape="\\")))
    if before is not None:
        query = query.where(tuple_(AuditEntry.at, AuditEntry.id) < before)
    return list(session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(size)))
