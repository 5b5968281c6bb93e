"""Contacts, groups and templates: the visitor's own address book (each user has one, as in the
Zoom Connect API: another user's contact, group or template does not exist for them), keyset
pages searched by number, name or title, a CSV import that reports each refused row, groups and
their members, and message templates whose placeholders are checked when saved. Every change is
audited in its own transaction; sending to a group is the Send screen's (``/send?group=ID``)."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon.api.console.web import PREFIX, Visitor, context, page, redirect, render
from pigeon.audit import service as audit
from pigeon.contacts import browse
from pigeon.contacts import service as contacts
from pigeon.contacts.importer import import_rows, read_csv
from pigeon.contacts.models import Contact, Group
from pigeon.db.paging import MAX_PAGE
from pigeon.db.races import lost_races
from pigeon.errors import Conflict, Invalid, NotFound
from pigeon.phone import normalise
from pigeon.templates import service as message_templates
from pigeon.templates.models import Template

PAGE_SIZE = 50
SHOWN_REFUSALS = 1000
FIELDS = ("number", "first_name", "last_name", "title")
DONE = {
    "created": "The contact was added.", "updated": "The contact was saved.", "deleted": "The contact was deleted.",
    "group-created": "The group was created.", "group-renamed": "The group was renamed.",
    "group-deleted": "The group was deleted; its contacts were kept.", "added": "Added to the group.",
    "removed": "Taken out of the group.", "template-created": "The template was saved.",
    "template-updated": "The template was saved.", "template-deleted": "The template was deleted.",
}


# -- plumbing --------------------------------------------------------------------------------

def _field(request: Request, name: str) -> str:
    value = request.state.form.get(name)
    return value if isinstance(value, str) else ""


def _notice(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done", ""))


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise Invalid(f"page is a whole number from 1 to {MAX_PAGE:,}")
    return int(raw)


def _e164(request: Request, raw: str) -> str:
    if not raw.strip():
        raise Invalid("A number is required")
    return normalise(raw, context(request).settings.default_region).e164


def _audit(session: Session, visitor: Visitor, action: str, subject: str, detail: str | None = None) -> None:
    audit.record(session, action, actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                 account_id=visitor.principal.account_id, subject=subject, detail=detail)


@contextmanager
def _writing(request: Request, conflict: str = "A record with these values already exists") -> Iterator[Session]:
    """A write in which a race lost to another writer is a refusal (Conflict, NotFound), never a 500."""
    with lost_races(conflict), context(request).db.write() as session:
        yield session


def _status(error: Exception) -> int:
    return 409 if isinstance(error, Conflict) else 404 if isinstance(error, NotFound) else 400


def _contact(session: Session, visitor: Visitor, contact_id: str) -> Contact:
    found = contacts.get_contact(session, visitor.principal.user_id, contact_id)
    if found is None:
        raise NotFound("No such contact in your address book")
    return found


def _group(session: Session, visitor: Visitor, group_id: str) -> Group:
    found = contacts.get_group(session, visitor.principal.user_id, group_id)
    if found is None:
        raise NotFound("No such group in your address book")
    return found


def _template(session: Session, visitor: Visitor, raw: str) -> Template:
    found = None
    if re.fullmatch(r"[0-9]{1,10}", raw):
        found = message_templates.get(session, visitor.principal.user_id, int(raw))
    if found is None:
        raise NotFound("No such template of yours")
    return found


def _name(c: Contact) -> str:
    return " ".join(part for part in (c.first_name, c.last_name) if part)


# -- contacts --------------------------------------------------------------------------------

def _search(request: Request) -> str:
    """The search as given; a phone number in any form is searched in E.164."""
    text = request.query_params.get("q", "").strip()
    if "\x00" in text:
        raise Invalid("A search cannot contain a NUL character (\\x00)")
    if re.fullmatch(r"[0-9+() -]{6,}", text):
        try:
            return normalise(text, context(request).settings.default_region).e164
        except Invalid:
            return text
    return text


def _cursor(raw: str | None) -> browse.Cursor | None:
    if not raw:
        return None
    at, _, contact_id = raw.partition("~")
    if "\x00" in contact_id:
        raise Invalid("That page's position is not valid: start the search again.")
    try:
        return dt.datetime.fromisoformat(at), contact_id
    except ValueError:
        raise Invalid("That page's position is not valid: start the search again.") from None


def _next_url(request: Request, cursor: browse.Cursor | None) -> str | None:
    if cursor is None:
        return None
    params = {"q": request.query_params.get("q", ""), "after": f"{cursor[0].isoformat()}~{cursor[1]}"}
    return f"{PREFIX}/contacts/rows?{urlencode(params)}"


def _contact_list(request: Request, visitor: Visitor, *, status: int = 200, error: str | None = None,
                  values: dict[str, str] | None = None) -> Response:
    with context(request).db.read() as session:
        rows, cursor = browse.page(session, visitor.principal.user_id, _search(request),
                                   _cursor(request.query_params.get("after")), PAGE_SIZE)
        return render(request, "contacts.html", visitor, status=status, rows=rows, more=_next_url(request, cursor),
                      q=request.query_params.get("q", ""), error=error, values=values or {},
                      notice=_notice(request), name_of=_name, tab="contacts")


@page
def contact_list(request: Request, visitor: Visitor) -> Response:
    return _contact_list(request, visitor)


@page
def contact_rows(request: Request, visitor: Visitor) -> Response:
    """The next page of rows, for the list's infinite scroll."""
    with context(request).db.read() as session:
        rows, cursor = browse.page(session, visitor.principal.user_id, _search(request),
                                   _cursor(request.query_params.get("after")), PAGE_SIZE)
        return render(request, "_contacts_rows.html", visitor, rows=rows, more=_next_url(request, cursor),
                      name_of=_name)


@page
def create_contact(request: Request, visitor: Visitor) -> Response:
    values = {name: _field(request, name) for name in FIELDS}
    try:
        number = _e164(request, values["number"])
        with _writing(request, f"You already have a contact with number {number}") as session:
            made = contacts.create_contact(session, visitor.principal, number, title=values["title"],
                                           first_name=values["first_name"], last_name=values["last_name"])
            _audit(session, visitor, "contact.create", number, f"contact {made.id}")
    except (Invalid, Conflict) as error:
        return _contact_list(request, visitor, status=_status(error), error=error.detail, values=values)
    return redirect(request, "/contacts?done=created")


def _contact_page(request: Request, visitor: Visitor, contact_id: str, *, status: int = 200,
                  error: str | None = None, values: dict[str, str] | None = None) -> Response:
    with context(request).db.read() as session:
        found = _contact(session, visitor, contact_id)
        member_of = browse.groups_of(session, found.id)
        inside = {g.id for g in member_of}
        choices = [g for g in browse.group_choices(session, visitor.principal.user_id) if g.id not in inside]
        shown = values or {"number": found.number, "first_name": found.first_name or "",
                           "last_name": found.last_name or "", "title": found.title or ""}
        return render(request, "contacts_contact.html", visitor, status=status, c=found, values=shown, error=error,
                      groups=member_of, choices=choices, notice=_notice(request), tab="contacts")


@page
def contact(request: Request, visitor: Visitor) -> Response:
    return _contact_page(request, visitor, request.path_params["contact_id"])


@page
def update_contact(request: Request, visitor: Visitor) -> Response:
    contact_id = request.path_params["contact_id"]
    values = {name: _field(request, name) for name in FIELDS}
    try:
        number = _e164(request, values["number"])
        with _writing(request, f"You already have a contact with number {number}") as session:
            found = _contact(session, visitor, contact_id)
            before = {"number": found.number, "first_name": found.first_name, "last_name": found.last_name,
                      "title": found.title}
            contacts.update_contact(session, found, number=number, title=values["title"],
                                    first_name=values["first_name"], last_name=values["last_name"])
            changed = [name for name, value in before.items() if getattr(found, name) != value]
            _audit(session, visitor, "contact.update", found.number,
                   f"contact {found.id}: " + (", ".join(changed) or "nothing changed"))
    except (Invalid, Conflict) as error:
        return _contact_page(request, visitor, contact_id, status=_status(error), error=error.detail, values=values)
    return redirect(request, f"/contacts/{contact_id}?done=updated")


@page
def delete_contact(request: Request, visitor: Visitor) -> Response:
    with _writing(request) as session:
        found = _contact(session, visitor, request.path_params["contact_id"])
        number, contact_id = found.number, found.id
        contacts.delete_contact(session, visitor.principal.user_id, contact_id)
        _audit(session, visitor, "contact.delete", number, f"contact {contact_id}")
    return redirect(request, "/contacts?done=deleted")


# -- import ----------------------------------------------------------------------------------

@page
def import_form(request: Request, visitor: Visitor) -> Response:
    with context(request).db.read() as session:
        choices = browse.group_choices(session, visitor.principal.user_id)
    return render(request, "contacts_import.html", visitor, choices=choices, summary=None, tab="import")


def _rows_of(upload: Any) -> list:
    """The file's rows (read whole before anything is written, so a file the parser gives up
    on is refused as a whole); ``Invalid`` for no file or one that is not UTF-8 CSV."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Invalid("Choose a CSV file to import")
    upload.file.seek(0)
    stream = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
    try:
        return list(read_csv(stream))
    except UnicodeDecodeError:
        raise Invalid(f"{upload.filename} is not UTF-8 text: save it as CSV (UTF-8)") from None
    finally:
        stream.detach()


@page
def import_contacts(request: Request, visitor: Visitor) -> Response:
    """Import a CSV file with the importer ``pigeon contacts import`` uses: its chunks are
    written in transactions of their own, each refused row reported with its line and reason;
    the import's entry in the audit log (counts and group) is written once it is done."""
    ctx = context(request)
    upload = request.state.form.get("file")
    group_id = _field(request, "group") or None
    with ctx.db.read() as session:
        group = _group(session, visitor, group_id) if group_id else None
        choices = browse.group_choices(session, visitor.principal.user_id)
    rows = _rows_of(upload)
    name = (upload.filename if isinstance(upload, UploadFile) else "") or "CSV file"

    def written(session: Session, count: int) -> None:  # in each chunk's transaction: audited or not written
        _audit(session, visitor, "contact.import", name,
               f"imported {count}" + (f" into group {group.name!r}" if group else ""))

    summary = import_rows(ctx.db, visitor.principal, rows, default_region=ctx.settings.default_region,
                          group_id=group.id if group else None, written=written)
    return render(request, "contacts_import.html", visitor, choices=choices, summary=summary, group=group,
                  refused=summary.refused[:SHOWN_REFUSALS], tab="import")


# -- groups ----------------------------------------------------------------------------------

def _group_list(request: Request, visitor: Visitor, *, status: int = 200, error: str | None = None,
                typed: str = "") -> Response:
    number = _page_number(request)
    with context(request).db.read() as session:
        listed = contacts.page_groups(session, visitor.principal.user_id, number=number, size=PAGE_SIZE)
        return render(request, "contacts_groups.html", visitor, status=status, listed=listed, number=number,
                      error=error, typed=typed, notice=_notice(request), tab="groups")


@page
def group_list(request: Request, visitor: Visitor) -> Response:
    return _group_list(request, visitor)


@page
def create_group(request: Request, visitor: Visitor) -> Response:
    name = _field(request, "name")
    try:
        with _writing(request, f"You already have a group named {name.strip()!r}") as session:
            made = contacts.create_group(session, visitor.principal, name)
            _audit(session, visitor, "group.create", made.name, f"group {made.id}")
    except (Invalid, Conflict) as error:
        return _group_list(request, visitor, status=_status(error), error=error.detail, typed=name)
    return redirect(request, f"/contacts/groups/{made.id}?done=group-created")


def _group_page(request: Request, visitor: Visitor, group_id: str, *, status: int = 200,
                error: str | None = None) -> Response:
    number = _page_number(request)
    with context(request).db.read() as session:
        found = _group(session, visitor, group_id)
        listed = contacts.page_members(session, found.id, number=number, size=PAGE_SIZE)
        return render(request, "contacts_group.html", visitor, status=status, g=found, listed=listed, number=number,
                      error=error, notice=_notice(request), name_of=_name, tab="groups")


@page
def group(request: Request, visitor: Visitor) -> Response:
    return _group_page(request, visitor, request.path_params["group_id"])


@page
def rename_group(request: Request, visitor: Visitor) -> Response:
    group_id, name = request.path_params["group_id"], _field(request, "name")
    try:
        with _writing(request, f"You already have a group named {name.strip()!r}") as session:
            found = _group(session, visitor, group_id)
            old = found.name
            contacts.rename_group(session, found, name)
            _audit(session, visitor, "group.rename", found.name, f"group {found.id}, was {old!r}")
    except (Invalid, Conflict) as error:
        return _group_page(request, visitor, group_id, status=_status(error), error=error.detail)
    return redirect(request, f"/contacts/groups/{group_id}?done=group-renamed")


@page
def delete_group(request: Request, visitor: Visitor) -> Response:
    with _writing(request) as session:
        found = _group(session, visitor, request.path_params["group_id"])
        name, group_id = found.name, found.id
        contacts.delete_group(session, visitor.principal.user_id, group_id)
        _audit(session, visitor, "group.delete", name, f"group {group_id}")
    return redirect(request, "/contacts/groups?done=group-deleted")


def _membership(request: Request, visitor: Visitor, group_id: str, *, contact_id: str | None = None,
                number: str | None = None, add: bool) -> None:
    """Put a contact (by id, or by its number) in one of the visitor's groups, or take it out."""
    for attempt in (1, 2):  # two adding the same membership at once: the loser looks again
        try:
            with _writing(request) as session:
                found = _group(session, visitor, group_id)
                if number is not None:
                    member = contacts.contact_by_number(session, visitor.principal.user_id, number)
                    if member is None:
                        raise NotFound(f"No contact with number {number} in your address book: add it first")
                else:
                    member = _contact(session, visitor, contact_id or "")
                if add:
                    contacts.add_members(session, found.id, [member.id])
                else:
                    contacts.remove_member(session, found.id, member.id)
                _audit(session, visitor, "group.add_member" if add else "group.remove_member", found.name,
                       f"group {found.id}, contact {member.number}")
            return
        except Conflict:
            if attempt == 2:
                raise


@page
def add_member(request: Request, visitor: Visitor) -> Response:
    """From the group's page: a contact by number."""
    group_id = request.path_params["group_id"]
    _membership(request, visitor, group_id, number=_e164(request, _field(request, "number")), add=True)
    return redirect(request, f"/contacts/groups/{group_id}?done=added")


@page
def join_group(request: Request, visitor: Visitor) -> Response:
    """From the contact's page: into one of the visitor's groups."""
    contact_id = request.path_params["contact_id"]
    group_id = _field(request, "group")
    if not group_id:
        raise Invalid("Choose a group")
    _membership(request, visitor, group_id, contact_id=contact_id, add=True)
    return redirect(request, f"/contacts/{contact_id}?done=added")


@page
def remove_member(request: Request, visitor: Visitor) -> Response:
    group_id, contact_id = request.path_params["group_id"], request.path_params["contact_id"]
    _membership(request, visitor, group_id, contact_id=contact_id, add=False)
    if _field(request, "back") == "contact":
        return redirect(request, f"/contacts/{contact_id}?done=removed")
    return redirect(request, f"/contacts/groups/{group_id}?done=removed")


# -- templates -------------------------------------------------------------------------------

def _template_list(request: Request, visitor: Visitor, *, status: int = 200, error: str | None = None,
                   values: dict[str, str] | None = None) -> Response:
    number = _page_number(request)
    with context(request).db.read() as session:
        listed = message_templates.page(session, visitor.principal.user_id, number=number, size=PAGE_SIZE)
        return render(request, "templates.html", visitor, status=status, listed=listed, number=number, error=error,
                      values=values or {}, known=message_templates.KNOWN, notice=_notice(request), tab="templates")


@page
def template_list(request: Request, visitor: Visitor) -> Response:
    return _template_list(request, visitor)


@page
def create_template(request: Request, visitor: Visitor) -> Response:
    values = {"name": _field(request, "name"), "body": _field(request, "body")}
    try:
        with _writing(request, f"You already have a template named {values['name'].strip()!r}") as session:
            made = message_templates.create(session, visitor.principal, values["name"], values["body"])
            _audit(session, visitor, "template.create", made.name, f"template {made.id}")
    except (Invalid, Conflict) as error:
        return _template_list(request, visitor, status=_status(error), error=error.detail, values=values)
    return redirect(request, "/contacts/templates?done=template-created")


def _template_page(request: Request, visitor: Visitor, raw: str, *, status: int = 200, error: str | None = None,
                   values: dict[str, str] | None = None) -> Response:
    with context(request).db.read() as session:
        found = _template(session, visitor, raw)
        shown = values or {"name": found.name, "body": found.body}
        return render(request, "templates_template.html", visitor, status=status, t=found, values=shown,
                      error=error, known=message_templates.KNOWN, notice=_notice(request), tab="templates")


@page
def template(request: Request, visitor: Visitor) -> Response:
    return _template_page(request, visitor, request.path_params["template_id"])


@page
def update_template(request: Request, visitor: Visitor) -> Response:
    raw = request.path_params["template_id"]
    values = {"name": _field(request, "name"), "body": _field(request, "body")}
    try:
        with _writing(request, f"You already have a template named {values['name'].strip()!r}") as session:
            found = _template(session, visitor, raw)
            message_templates.update(session, found, name=values["name"], body=values["body"])
            _audit(session, visitor, "template.update", found.name, f"template {found.id}")
    except (Invalid, Conflict) as error:
        return _template_page(request, visitor, raw, status=_status(error), error=error.detail, values=values)
    return redirect(request, f"/contacts/templates/{raw}?done=template-updated")


@page
def delete_template(request: Request, visitor: Visitor) -> Response:
    with _writing(request) as session:
        found = _template(session, visitor, request.path_params["template_id"])
        name, template_id = found.name, found.id
        message_templates.delete(session, visitor.principal.user_id, template_id)
        _audit(session, visitor, "template.delete", name, f"template {template_id}")
    return redirect(request, "/contacts/templates?done=template-deleted")


NAV = [("contacts", "Contacts")]
ROUTES = [
    Route("/contacts", contact_list, methods=["GET"]),
    Route("/contacts", create_contact, methods=["POST"]),
    Route("/contacts/rows", contact_rows, methods=["GET"]),
    Route("/contacts/import", import_form, methods=["GET"]),
    Route("/contacts/import", import_contacts, methods=["POST"]),
    Route("/contacts/groups", group_list, methods=["GET"]),
    Route("/contacts/groups", create_group, methods=["POST"]),
    Route("/contacts/groups/{group_id}", group, methods=["GET"]),
    Route("/contacts/groups/{group_id}", rename_group, methods=["POST"]),
    Route("/contacts/groups/{group_id}/delete", delete_group, methods=["POST"]),
    Route("/contacts/groups/{group_id}/members", add_member, methods=["POST"]),
    Route("/contacts/groups/{group_id}/members/{contact_id}/remove", remove_member, methods=["POST"]),
    Route("/contacts/templates", template_list, methods=["GET"]),
    Route("/contacts/templates", create_template, methods=["POST"]),
    Route("/contacts/templates/{template_id}", template, methods=["GET"]),
    Route("/contacts/templates/{template_id}", update_template, methods=["POST"]),
    Route("/contacts/templates/{template_id}/delete", delete_template, methods=["POST"]),
    Route("/contacts/{contact_id}", contact, methods=["GET"]),
    Route("/contacts/{contact_id}", update_contact, methods=["POST"]),
    Route("/contacts/{contact_id}/delete", delete_contact, methods=["POST"]),
    Route("/contacts/{contact_id}/groups", join_group, methods=["POST"]),
]
