"""The console's address book: keyset pages of a user's contacts, newest first, optionally
searched; and the groups a contact is in. A page seeks from the last row of the one before it
on ``ix_contacts_list`` (user, created_at, id), so the 100,000th contact costs what the first
does; a search is met on the way down that index."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, tuple_
from sqlalchemy.orm import Session

from pigeon.contacts.models import Contact, Group, GroupMember

PAGE = 50
MAX_SEARCH = 100

Cursor = tuple[dt.datetime, str]
"""Where a page ends: its last contact's creation time and id."""


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def page(session: Session, user_id: int, text: str | None = None, after: Cursor | None = None,
         size: int = PAGE) -> tuple[list[Contact], Cursor | None]:
    """One page of the user's contacts after ``after``, newest first, whose number, names or
    title contain ``text`` (any case); and the cursor of the next page (None: this was the last)."""
    query = select(Contact).where(Contact.user_id == user_id).with_hint(Contact, "INDEXED BY ix_contacts_list",
                                                                         "sqlite")
    if text:
        like = _like(text[:MAX_SEARCH])
        query = query.where(or_(Contact.number.like(like, escape="\\"), Contact.first_name.ilike(like, escape="\\"),
                                Contact.last_name.ilike(like, escape="\\"), Contact.title.ilike(like, escape="\\")))
    if after is not None:
        query = query.where(tuple_(Contact.created_at, Contact.id) < tuple_(*after))
    rows = list(session.scalars(query.order_by(Contact.created_at.desc(), Contact.id.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, ((rows[-1].created_at, rows[-1].id) if more else None)


def groups_of(session: Session, contact_id: str) -> list[Group]:
    """The groups a contact is in, by name (from ``ix_group_members_contact``)."""
    query = select(Group).join(GroupMember, GroupMember.group_id == Group.id).where(GroupMember.contact_id == contact_id)
    return list(session.scalars(query.order_by(Group.name)))


def group_choices(session: Session, user_id: int, limit: int = 500) -> list[Group]:
    """The user's groups by name, at most ``limit`` of them (a form's choice of groups)."""
    return list(session.scalars(select(Group).where(Group.user_id == user_id).order_by(Group.name).limit(limit)))
