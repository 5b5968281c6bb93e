"""Plain functions over a session: a user's message templates, and filling their placeholders.

A placeholder is a known field name in double braces, spaces allowed inside: ``{{firstName}}``,
``{{ lastName }}``, ``{{title}}``, ``{{contactNumber}}``. Names are case-sensitive. A template
using any other name is refused when saved; a contact's empty field renders as "".
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from pigeon.accounts.service import Principal
from pigeon.db import utcnow
from pigeon.db.paging import Listing, Page, paged
from pigeon.errors import Conflict, Invalid, Reason
from pigeon.templates.models import Template

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
FIELDS = {"firstName": "first_name", "lastName": "last_name", "title": "title", "contactNumber": "number"}
KNOWN = ", ".join(f"{{{{{name}}}}}" for name in FIELDS)
MAX_NAME = 255
TEMPLATES = Listing("templates", (Template.id,))
MAX_ID = 2**31 - 1


class Person(Protocol):
    """What placeholders are filled from: a Contact, or anything with its fields."""

    number: str
    title: str | None
    first_name: str | None
    last_name: str | None


def unknown_placeholders(body: str) -> list[str]:
    """The placeholder names in ``body`` that are not known fields, in order, once each."""
    names = (match.group(1) for match in PLACEHOLDER.finditer(body))
    return list(dict.fromkeys(name for name in names if name not in FIELDS))


def check_body(body: str | None, what: str = "Template text") -> str:
    """``body`` if it can be rendered, else ``Invalid`` saying why (EMPTY_MESSAGE if empty)."""
    if body is None or not body.strip():
        raise Invalid(f"{what} cannot be empty", Reason.EMPTY_MESSAGE)
    if "\x00" in body:  # PostgreSQL cannot store it in text
        raise Invalid(f"{what} cannot contain a NUL character (\\x00)")
    unknown = unknown_placeholders(body)
    if unknown:
        listed = ", ".join(f"{{{{{name}}}}}" for name in unknown)
        raise Invalid(f"Unknown placeholder {listed}; the known ones are {KNOWN}")
    return body


def check_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("Template name cannot be empty")
    if len(name) > MAX_NAME:
        raise Invalid(f"Template name is longer than {MAX_NAME} characters")
    if "\x00" in name:
        raise Invalid("Template name cannot contain a NUL character (\\x00)")
    return name


def render(body: str, contact: Person | None) -> str:
    """``body`` with each known placeholder replaced by the contact's field ("" if none)."""

    def fill(match: re.Match[str]) -> str:
        attribute = FIELDS.get(match.group(1))
        if attribute is None:
            return match.group(0)
        return (getattr(contact, attribute, None) or "") if contact is not None else ""

    return PLACEHOLDER.sub(fill, body)


def get(session: Session, user_id: int, template_id: int) -> Template | None:
    """A template of this user's, or None: another user's does not exist for them."""
    if not 0 < template_id <= MAX_ID:
        return None
    return session.scalar(select(Template).where(Template.id == template_id, Template.user_id == user_id))


def find(session: Session, user_id: int, ref: str) -> Template | None:
    """A template of this user's by id, else by name."""
    ref = ref.strip()
    if "\x00" in ref:
        return None
    if ref.isascii() and ref.isdigit():
        found = get(session, user_id, int(ref))
        if found is not None:
            return found
    return session.scalar(select(Template).where(Template.user_id == user_id, Template.name == ref))


def _name_taken(session: Session, user_id: int, name: str, other_than: int | None = None) -> bool:
    query = select(Template.id).where(Template.user_id == user_id, Template.name == name)
    if other_than is not None:
        query = query.where(Template.id != other_than)
    return session.scalar(query) is not None


def create(session: Session, principal: Principal, name: str | None, body: str | None) -> Template:
    """A new template; ``Invalid`` if invalid, ``Conflict`` if the name is taken."""
    name, body = check_name(name), check_body(body)
    if _name_taken(session, principal.user_id, name):
        raise Conflict(f"You already have a template named {name!r}")
    now = utcnow()
    template = Template(account_id=principal.account_id, user_id=principal.user_id, name=name, body=body,
                        created_at=now, updated_at=now)
    session.add(template)
    session.flush()
    return template


def update(session: Session, template: Template, *, name: str | None = None, body: str | None = None,
           now: dt.datetime | None = None) -> Template:
    """Change the name and/or text (None keeps it); same checks as ``create``."""
    if name is not None:
        name = check_name(name)
        if _name_taken(session, template.user_id, name, other_than=template.id):
            raise Conflict(f"You already have a template named {name!r}")
        template.name = name
    if body is not None:
        template.body = check_body(body)
    template.updated_at = now or utcnow()
    session.flush()
    return template


def delete(session: Session, user_id: int, template_id: int) -> bool:
    template = get(session, user_id, template_id)
    if template is None:
        return False
    session.delete(template)
    return True


def page(session: Session, user_id: int, *, number: int, size: int) -> Page[Template]:
    """One page (from 1) of a user's templates, oldest first (see pigeon.db.paging)."""
    return paged(session, TEMPLATES, user_id, select(Template).where(Template.user_id == user_id), number, size)
