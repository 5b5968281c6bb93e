"""Plain functions over a session: one user's contacts and groups, and who is in which group.

Everything is scoped to the user: another user's contact or group does not exist for them.
Numbers arrive here already in E.164 (``pigeon.phone.normalise``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from pigeon.accounts.service import Principal
from pigeon.contacts.models import Contact, Group, GroupMember
from pigeon.db import utcnow
from pigeon.db.paging import Listing, Page, paged
from pigeon.errors import Conflict, Invalid
from pigeon.ids import new_id

CONTACTS = Listing("contacts", (Contact.created_at, Contact.id))
GROUPS = Listing("groups", (Group.created_at, Group.id))
MEMBERS = Listing("group members", (GroupMember.contact_created_at, GroupMember.contact_id), row_id=Contact.id)
LIMITS = {"title": 64, "first_name": 255, "last_name": 255}
LABELS = {"title": "title", "first_name": "firstName", "last_name": "lastName"}
MAX_GROUP_NAME = 255
MAX_GROUP_SEND = 10_000  # members a group send reaches at most: send-bulk's cap
NUL = "\x00"  # PostgreSQL cannot store it in text


def clean_fields(**fields: str | None) -> dict[str, str | None]:
    """Names and title stripped, empty as None; ``Invalid`` if one is too long or holds a NUL."""
    cleaned: dict[str, str | None] = {}
    for field, value in fields.items():
        value = value.strip() if value is not None else None
        if value and len(value) > LIMITS[field]:
            raise Invalid(f"{LABELS[field]} is longer than {LIMITS[field]} characters")
        if value and NUL in value:
            raise Invalid(f"{LABELS[field]} cannot contain a NUL character (\\x00)")
        cleaned[field] = value or None
    return cleaned


# -- contacts --------------------------------------------------------------------------------

def get_contact(session: Session, user_id: int, contact_id: str) -> Contact | None:
    if NUL in contact_id:  # names nothing; PostgreSQL would refuse the query
        return None
    return session.scalar(select(Contact).where(Contact.id == contact_id, Contact.user_id == user_id))


def contact_by_number(session: Session, user_id: int, number: str) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.user_id == user_id, Contact.number == number))


def ids_by_number(session: Session, user_id: int, numbers: Iterable[str]) -> dict[str, str]:
    """The contactId of each of these numbers that is in the user's address book (a page's worth)."""
    wanted = list(set(numbers))
    if not wanted:
        return {}
    query = select(Contact.number, Contact.id).where(Contact.user_id == user_id, Contact.number.in_(wanted))
    return {number: contact_id for number, contact_id in session.execute(query)}


def _check_number_free(session: Session, user_id: int, number: str, other_than: str | None = None) -> None:
    found = contact_by_number(session, user_id, number)
    if found is not None and found.id != other_than:
        raise Conflict(f"You already have a contact with number {number}: contactId {found.id}")


def create_contact(
    session: Session, principal: Principal, number: str, *,
    title: str | None = None, first_name: str | None = None, last_name: str | None = None,
) -> Contact:
    """A new contact; ``Conflict`` if the number is already one, ``Invalid`` if a field is too long."""
    fields = clean_fields(title=title, first_name=first_name, last_name=last_name)
    _check_number_free(session, principal.user_id, number)
    contact = Contact(id=new_id(), account_id=principal.account_id, user_id=principal.user_id, number=number,
                      created_at=utcnow(), **fields)
    session.add(contact)
    session.flush()
    return contact


def update_contact(session: Session, contact: Contact, *, number: str | None = None, **fields: str | None) -> Contact:
    """Change the fields given (None keeps a value, "" clears a name); same checks as create."""
    given = {field: value for field, value in fields.items() if value is not None}
    for field, value in clean_fields(**given).items():
        setattr(contact, field, value)
    if number is not None and number != contact.number:
        _check_number_free(session, contact.user_id, number, other_than=contact.id)
        contact.number = number
    session.flush()
    return contact


def delete_contact(session: Session, user_id: int, contact_id: str) -> bool:
    """Delete a contact and its memberships (never the groups)."""
    contact = get_contact(session, user_id, contact_id)
    if contact is None:
        return False
    session.execute(delete(GroupMember).where(GroupMember.contact_id == contact.id))
    session.delete(contact)
    return True


def page_contacts(session: Session, user_id: int, *, number: int, size: int) -> Page[Contact]:
    """One page (from 1) of the user's contacts, oldest first (see pigeon.db.paging)."""
    query = select(Contact).where(Contact.user_id == user_id)
    return paged(session, CONTACTS, user_id, query, number, size)


# -- groups ----------------------------------------------------------------------------------

def check_group_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("Group name cannot be empty")
    if len(name) > MAX_GROUP_NAME:
        raise Invalid(f"Group name is longer than {MAX_GROUP_NAME} characters")
    if NUL in name:
        raise Invalid("Group name cannot contain a NUL character (\\x00)")
    return name


def get_group(session: Session, user_id: int, group_id: str) -> Group | None:
    if NUL in group_id:
        return None
    return session.scalar(select(Group).where(Group.id == group_id, Group.user_id == user_id))


def find_group(session: Session, user_id: int, ref: str) -> Group | None:
    """A group of the user's by id, else by name."""
    if NUL in ref:
        return None
    return get_group(session, user_id, ref) or session.scalar(
        select(Group).where(Group.user_id == user_id, Group.name == ref.strip())
    )


def _check_group_name_free(session: Session, user_id: int, name: str, other_than: str | None = None) -> None:
    found = session.scalar(select(Group.id).where(Group.user_id == user_id, Group.name == name))
    if found is not None and found != other_than:
        raise Conflict(f"You already have a group named {name!r}: groupId {found}")


def create_group(session: Session, principal: Principal, name: str | None) -> Group:
    """A new group; ``Invalid`` if the name is empty, ``Conflict`` if it is taken."""
    name = check_group_name(name)
    _check_group_name_free(session, principal.user_id, name)
    group = Group(id=new_id(), account_id=principal.account_id, user_id=principal.user_id, name=name,
                  created_at=utcnow())
    session.add(group)
    session.flush()
    return group


def rename_group(session: Session, group: Group, name: str) -> Group:
    name = check_group_name(name)
    _check_group_name_free(session, group.user_id, name, other_than=group.id)
    group.name = name
    session.flush()
    return group


def delete_group(session: Session, user_id: int, group_id: str) -> bool:
    """Delete a group and its memberships (never the contacts)."""
    group = get_group(session, user_id, group_id)
    if group is None:
        return False
    session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    session.delete(group)
    return True


def page_groups(session: Session, user_id: int, *, number: int, size: int) -> Page[Group]:
    """One page (from 1) of the user's groups, oldest first."""
    query = select(Group).where(Group.user_id == user_id)
    return paged(session, GROUPS, user_id, query, number, size)


# -- membership ------------------------------------------------------------------------------

def add_members(session: Session, group_id: str, contact_ids: Iterable[str]) -> None:
    """Put contacts (the group's owner's) in the group; those already in it stay as they are."""
    wanted = list(dict.fromkeys(contact_ids))
    if not wanted:
        return
    present = set(session.scalars(
        select(GroupMember.contact_id).where(GroupMember.group_id == group_id, GroupMember.contact_id.in_(wanted))
    ))
    created = dict(session.execute(select(Contact.id, Contact.created_at).where(Contact.id.in_(wanted))).all())
    rows = [{"group_id": group_id, "contact_id": cid, "contact_created_at": created[cid]}
            for cid in wanted if cid not in present and cid in created]
    if rows:
        session.execute(insert(GroupMember), rows)


def remove_member(session: Session, group_id: str, contact_id: str) -> None:
    """Take a contact out of a group; nothing happens if it was not in it."""
    session.execute(delete(GroupMember).where(GroupMember.group_id == group_id, GroupMember.contact_id == contact_id))


def count_members(session: Session, group_id: str) -> int:
    return session.scalar(select(func.count()).where(GroupMember.group_id == group_id)) or 0


def members(session: Session, group_id: str) -> list[Contact]:
    """Every contact in the group, oldest first."""
    query = select(Contact).join(GroupMember, GroupMember.contact_id == Contact.id).where(GroupMember.group_id == group_id)
    return list(session.scalars(query.order_by(Contact.created_at, Contact.id)))


def members_to_send(session: Session, group: Group) -> list[Contact]:
    """Every contact in the group, to send to; ``Invalid`` if there are more than
    MAX_GROUP_SEND (counted first, so that a huge group is never loaded)."""
    count = count_members(session, group.id)
    if count > MAX_GROUP_SEND:
        raise Invalid(f"Group {group.name!r} has {count:,} contacts; a group send reaches at most "
                           f"{MAX_GROUP_SEND:,}: split it into smaller groups")
    return members(session, group.id)


def page_members(session: Session, group_id: str, *, number: int, size: int) -> Page[Contact]:
    """One page (from 1) of the group's contacts, in the contacts' order (oldest first), from
    the members' own index (each member row holds its contact's created_at)."""
    query = select(Contact).join(GroupMember, GroupMember.contact_id == Contact.id).where(GroupMember.group_id == group_id)
    keys = select(GroupMember.contact_created_at, GroupMember.contact_id).where(GroupMember.group_id == group_id)
    return paged(session, MEMBERS, group_id, query, number, size, keys=keys)
