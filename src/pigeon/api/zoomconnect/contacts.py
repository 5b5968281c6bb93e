"""Contacts, groups and templates of the Zoom Connect API, and sending to a group or with a
template (Pigeon extensions). Thin: parse, call the services, render.

Lists are paginated with ``page`` (from 1 to 1,000,000) and ``pageSize`` (default 100, at most
1000) and carry Spring-HATEOAS-like links: ``self``, and ``prev``/``next`` where those pages exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

from fastapi import APIRouter, Body, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from pigeon.accounts.service import Principal
from pigeon.api.formats import FORMAT_KEY, render
from pigeon.api.zoomconnect.deps import CurrentUser, runtime
from pigeon.api.zoomconnect.params import send_time
from pigeon.api.zoomconnect.routes import MAX_PAGE_SIZE
from pigeon.api.zoomconnect.schemas import Body as BodyModel
from pigeon.api.zoomconnect.schemas import Text
from pigeon.contacts import service as contacts
from pigeon.contacts.models import Contact, Group
from pigeon.db.paging import MAX_PAGE
from pigeon.db.races import lost_races
from pigeon.errors import Conflict, Invalid, NotFound, Reason
from pigeon.phone import normalise
from pigeon.runtime import Runtime
from pigeon.sending.service import Outgoing
from pigeon.templates import service as templates
from pigeon.templates.models import Template
from pigeon.usecases import group_send, template_send

EXTENSION = "Pigeon extensions"
router = APIRouter()
T = TypeVar("T")


# -- bodies ----------------------------------------------------------------------------------

class ContactBody(BodyModel):
    """WebServiceContact; contactId and links are ignored."""

    contactId: Text = None
    title: Text = None
    firstName: Text = None
    lastName: Text = None
    contactNumber: Text = None


class GroupBody(BodyModel):
    """WebServiceGroup; groupId and links are ignored."""

    groupId: Text = None
    name: Text = None


class TemplateBody(BodyModel):
    """WebServiceTemplate; templateId and links are ignored."""

    name: Text = None
    data: Text = None


class SendGroupRequest(BodyModel):
    """A message, or a template, to every contact of a group."""

    groupId: Text = None
    message: Text = None
    templateId: Text = None
    campaign: Text = None
    dataField: Text = None
    dateToSend: Text = None


class SendTemplateRequest(BodyModel):
    """A template to one number, or to one contact, filled from that contact."""

    templateId: Text = None
    recipientNumber: Text = None
    contactId: Text = None
    campaign: Text = None
    dataField: Text = None
    dateToSend: Text = None


# -- presenters ------------------------------------------------------------------------------

def present_contact(c: Contact) -> dict:
    """WebServiceContact."""
    return {"contactId": c.id, "title": c.title, "firstName": c.first_name, "lastName": c.last_name,
            "contactNumber": c.number, "links": []}


def present_group(g: Group) -> dict:
    """WebServiceGroup."""
    return {"groupId": g.id, "name": g.name, "links": []}


def present_template(t: Template) -> dict:
    """WebServiceTemplate."""
    return {"templateId": t.id, "name": t.name, "data": t.body, "links": []}


def page_links(request: Request, page: int, size: int, total: int) -> list[dict]:
    """Links to this page and, where they exist, the ones before and after it."""
    path = request.url.path + (f".{request.scope[FORMAT_KEY]}" if FORMAT_KEY in request.scope else "")
    url = request.url.replace(path=path).remove_query_params(["email", "token"])

    def link(rel: str, number: int) -> dict:
        return {"rel": rel, "href": str(url.include_query_params(page=number, pageSize=size))}

    links = [link("self", page)]
    if page > 1 and total:
        links.append(link("prev", min(page - 1, -(-total // size))))
    if page * size < total:
        links.append(link("next", page + 1))
    return links


# -- plumbing --------------------------------------------------------------------------------

PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]


@contextmanager
def writing(request: Request, conflict: str = "A record with these values already exists") -> Iterator[Session]:
    """A write session in which a race lost to another writer is a refusal: a unique
    constraint a Conflict, a concurrent delete (a foreign key) a NotFound, never a 500."""
    with lost_races(conflict), runtime(request).db.write() as session:
        yield session


def _e164(rt: Runtime, raw: str | None, field: str = "contactNumber") -> str:
    if raw is None or not raw.strip():
        raise Invalid(f"{field} is required", Reason.INVALID_NUMBER)
    return normalise(raw, rt.settings.default_region).e164


def _not_found(what: str, ref: object) -> NotFound:
    return NotFound(f"No {what} {ref} in your account")


def _found(value: T | None, what: str, ref: object) -> T:
    if value is None:
        raise _not_found(what, ref)
    return value


def _template_id(raw: object) -> int:
    """A templateId as given in a path or body; a non-integer one names no template (404)."""
    text = str(raw).strip()
    if not re.fullmatch(r"-?[0-9]{1,19}", text):
        raise NotFound(f"No template {raw} in your account: a templateId is a whole number")
    return int(text)


# -- contacts --------------------------------------------------------------------------------

@router.get("/contacts/all", summary="A page of your contacts")
def all_contacts(request: Request, user: CurrentUser, page: PageNumber = 1, pageSize: PageSize = 100) -> Response:
    with runtime(request).db.read() as session:
        result = contacts.page_contacts(session, user.user_id, number=page, size=pageSize)
        body = {"webServiceContacts": [present_contact(c) for c in result.items],
                "links": page_links(request, page, pageSize, result.total)}
    return render(request, body, "webServiceContacts")


@router.post("/contacts/create", summary="Create a contact")
def create_contact(request: Request, user: CurrentUser, body: Annotated[ContactBody | None, Body()] = None) -> Response:
    body = body or ContactBody()
    number = _e164(runtime(request), body.contactNumber)
    with writing(request, f"You already have a contact with number {number}") as session:
        contact = contacts.create_contact(session, user, number, title=body.title, first_name=body.firstName,
                                          last_name=body.lastName)
    return render(request, present_contact(contact), "webServiceContact")


@router.get("/contacts/{contactId}", summary="One of your contacts")
def get_contact(request: Request, user: CurrentUser, contactId: str) -> Response:
    with runtime(request).db.read() as session:
        contact = _found(contacts.get_contact(session, user.user_id, contactId), "contact", contactId)
        return render(request, present_contact(contact), "webServiceContact")


@router.post("/contacts/{contactId}", summary="Update a contact; fields absent or null keep their value")
def update_contact(
    request: Request, user: CurrentUser, contactId: str, body: Annotated[ContactBody | None, Body()] = None
) -> Response:
    body = body or ContactBody()
    number = None if body.contactNumber is None else _e164(runtime(request), body.contactNumber)
    with writing(request, f"You already have a contact with number {number}") as session:
        contact = _found(contacts.get_contact(session, user.user_id, contactId), "contact", contactId)
        contacts.update_contact(session, contact, number=number, title=body.title, first_name=body.firstName,
                                last_name=body.lastName)
    return render(request, present_contact(contact), "webServiceContact")


@router.delete("/contacts/{contactId}", summary="Delete a contact (and its group memberships)")
def delete_contact(request: Request, user: CurrentUser, contactId: str) -> Response:
    with writing(request) as session:
        if not contacts.delete_contact(session, user.user_id, contactId):
            raise _not_found("contact", contactId)
    return Response(status_code=200)


def _membership(request: Request, user: Principal, group_id: str, contact_id: str, add: bool) -> Response:
    for attempt in (1, 2):  # two adding the same membership at once: the loser looks again
        try:
            with writing(request) as session:
                group = _found(contacts.get_group(session, user.user_id, group_id), "group", group_id)
                contact = _found(contacts.get_contact(session, user.user_id, contact_id), "contact", contact_id)
                if add:
                    contacts.add_members(session, group.id, [contact.id])
                else:
                    contacts.remove_member(session, group.id, contact.id)
            break
        except Conflict:
            if attempt == 2:
                raise
    return Response(status_code=200)


@router.get("/contacts/{contactId}/addToGroup/{groupId}", operation_id="contactAddToGroup",
            summary="Add a contact to a group")
@router.post("/contacts/{contactId}/addToGroup/{groupId}", operation_id="contactAddToGroupPost",
             summary="Add a contact to a group")
def contact_add_to_group(request: Request, user: CurrentUser, contactId: str, groupId: str) -> Response:
    return _membership(request, user, groupId, contactId, add=True)


@router.get("/contacts/{contactId}/addFromGroup/{groupId}", operation_id="contactRemoveFromGroup",
            summary="Remove a contact from a group (the API's name for it)")
@router.post("/contacts/{contactId}/addFromGroup/{groupId}", operation_id="contactRemoveFromGroupPost",
             summary="Remove a contact from a group (the API's name for it)")
def contact_remove_from_group(request: Request, user: CurrentUser, contactId: str, groupId: str) -> Response:
    return _membership(request, user, groupId, contactId, add=False)


# -- groups ----------------------------------------------------------------------------------

@router.get("/groups/all", summary="A page of your groups")
def all_groups(request: Request, user: CurrentUser, page: PageNumber = 1, pageSize: PageSize = 100) -> Response:
    with runtime(request).db.read() as session:
        result = contacts.page_groups(session, user.user_id, number=page, size=pageSize)
        body = {"webServiceGroups": [present_group(g) for g in result.items],
                "links": page_links(request, page, pageSize, result.total)}
    return render(request, body, "webServiceGroups")


@router.post("/groups/create", summary="Create a group")
def create_group(request: Request, user: CurrentUser, body: Annotated[GroupBody | None, Body()] = None) -> Response:
    body = body or GroupBody()
    with writing(request, f"You already have a group named {body.name!r}") as session:
        group = contacts.create_group(session, user, body.name)
    return render(request, present_group(group), "webServiceGroup")


@router.get("/groups/{groupId}", summary="One of your groups")
def get_group(request: Request, user: CurrentUser, groupId: str) -> Response:
    with runtime(request).db.read() as session:
        group = _found(contacts.get_group(session, user.user_id, groupId), "group", groupId)
        return render(request, present_group(group), "webServiceGroup")


@router.post("/groups/{groupId}", summary="Rename a group")
def update_group(
    request: Request, user: CurrentUser, groupId: str, body: Annotated[GroupBody | None, Body()] = None
) -> Response:
    body = body or GroupBody()
    with writing(request, f"You already have a group named {body.name!r}") as session:
        group = _found(contacts.get_group(session, user.user_id, groupId), "group", groupId)
        if body.name is not None:
            contacts.rename_group(session, group, body.name)
    return render(request, present_group(group), "webServiceGroup")


@router.delete("/groups/{groupId}", summary="Delete a group and its memberships, never the contacts")
def delete_group(request: Request, user: CurrentUser, groupId: str) -> Response:
    with writing(request) as session:
        if not contacts.delete_group(session, user.user_id, groupId):
            raise _not_found("group", groupId)
    return Response(status_code=200)


@router.get("/groups/{groupId}/addContact/{contactId}", operation_id="groupAddContact",
            summary="Add a contact to a group")
@router.post("/groups/{groupId}/addContact/{contactId}", operation_id="groupAddContactPost",
             summary="Add a contact to a group")
def group_add_contact(request: Request, user: CurrentUser, groupId: str, contactId: str) -> Response:
    return _membership(request, user, groupId, contactId, add=True)


@router.get("/groups/{groupId}/removeContact/{contactId}", operation_id="groupRemoveContact",
            summary="Remove a contact from a group")
@router.post("/groups/{groupId}/removeContact/{contactId}", operation_id="groupRemoveContactPost",
             summary="Remove a contact from a group")
def group_remove_contact(request: Request, user: CurrentUser, groupId: str, contactId: str) -> Response:
    return _membership(request, user, groupId, contactId, add=False)


@router.get("/groups/{groupId}/contacts", tags=[EXTENSION],
            summary="A page of the contacts in a group (a Pigeon extension)")
def group_contacts(request: Request, user: CurrentUser, groupId: str, page: PageNumber = 1, pageSize: PageSize = 100) -> Response:
    with runtime(request).db.read() as session:
        group = _found(contacts.get_group(session, user.user_id, groupId), "group", groupId)
        result = contacts.page_members(session, group.id, number=page, size=pageSize)
        body = {"webServiceContacts": [present_contact(c) for c in result.items],
                "links": page_links(request, page, pageSize, result.total)}
    return render(request, body, "webServiceContacts")


# -- templates -------------------------------------------------------------------------------

@router.get("/templates/all", summary="A page of your templates")
def all_templates(request: Request, user: CurrentUser, page: PageNumber = 1, pageSize: PageSize = 100) -> Response:
    with runtime(request).db.read() as session:
        result = templates.page(session, user.user_id, number=page, size=pageSize)
        body = {"webServiceTemplates": [present_template(t) for t in result.items],
                "links": page_links(request, page, pageSize, result.total)}
    return render(request, body, "webServiceTemplates")


@router.post("/templates/create", tags=[EXTENSION], summary="Create a template (a Pigeon extension)")
def create_template(request: Request, user: CurrentUser, body: Annotated[TemplateBody | None, Body()] = None) -> Response:
    body = body or TemplateBody()
    with writing(request, f"You already have a template named {body.name!r}") as session:
        template = templates.create(session, user, body.name, body.data)
    return render(request, present_template(template), "webServiceTemplate")


@router.get("/templates/{templateId}", summary="One of your templates")
def get_template(request: Request, user: CurrentUser, templateId: str) -> Response:
    with runtime(request).db.read() as session:
        template = _found(templates.get(session, user.user_id, _template_id(templateId)), "template", templateId)
        return render(request, present_template(template), "webServiceTemplate")


@router.post("/templates/{templateId}", tags=[EXTENSION],
             summary="Edit a template's name and/or text (a Pigeon extension)")
def update_template(
    request: Request, user: CurrentUser, templateId: str, body: Annotated[TemplateBody | None, Body()] = None
) -> Response:
    body = body or TemplateBody()
    number = _template_id(templateId)
    with writing(request, f"You already have a template named {body.name!r}") as session:
        template = _found(templates.get(session, user.user_id, number), "template", templateId)
        templates.update(session, template, name=body.name, body=body.data)
    return render(request, present_template(template), "webServiceTemplate")


@router.delete("/templates/{templateId}", summary="Delete a template")
def delete_template(request: Request, user: CurrentUser, templateId: str) -> Response:
    number = _template_id(templateId)
    with writing(request) as session:
        if not templates.delete(session, user.user_id, number):
            raise _not_found("template", templateId)
    return Response(status_code=200)


# -- sending to a group, and with a template ------------------------------------------------

def _group_send(rt: Runtime, user: Principal, body: SendGroupRequest) -> tuple[list[Outgoing], list[dict]]:
    """The group's messages, prepared (``pigeon.usecases.group_send``), and a response entry for
    each member (runs in a thread)."""
    if not body.groupId:
        raise Invalid("groupId is required")
    if body.message is not None and body.templateId is not None:
        raise Invalid("Give either message or templateId, not both")
    send_at = send_time(rt, body.dateToSend)
    with rt.db.read() as session:
        group = _found(contacts.get_group(session, user.user_id, body.groupId), "group", body.groupId)
        if body.templateId is not None:
            text = _found(templates.get(session, user.user_id, _template_id(body.templateId)), "template",
                          body.templateId).body
        else:
            text = body.message
        prepared = group_send.prepare(session, rt.sender, group, text, campaign=body.campaign,
                                      data_field=body.dataField, send_at=send_at)
    responses = [{"messageId": None, "error": result.detail, "recipientNumber": contact.number}
                 if isinstance(result, Invalid) else
                 {"messageId": result.id, "error": None, "recipientNumber": contact.number}
                 for contact, result in prepared.results]
    return prepared.outgoing, responses


@router.post("/sms/send-group", tags=[EXTENSION],
             summary=f"Send a message or a template to every contact of a group, at most {contacts.MAX_GROUP_SEND:,} "
                     "(a Pigeon extension)",
             description="A contact whose message cannot be prepared (an invalid number, a message too long) gets "
                         "an entry with its error; the messages to all the others are accepted in one transaction, "
                         "all or none (402 if the credits do not cover them all).")
async def send_group(request: Request, user: CurrentUser, body: Annotated[SendGroupRequest | None, Body()] = None) -> Response:
    rt = runtime(request)
    outgoing, responses = await run_in_threadpool(_group_send, rt, user, body or SendGroupRequest())
    if outgoing:
        await rt.batcher.submit(user, outgoing, origin="zoomconnect")
    return render(request, {"sendSmsResponses": responses}, "webServiceSendSmsResponses")


def _template_send(rt: Runtime, user: Principal, body: SendTemplateRequest) -> Outgoing:
    """The template's message, prepared (``pigeon.usecases.template_send``; runs in a thread)."""
    if body.templateId is None:
        raise Invalid("templateId is required")
    if body.contactId is not None and body.recipientNumber is not None:
        raise Invalid("Give either recipientNumber or contactId, not both")
    send_at = send_time(rt, body.dateToSend)
    with rt.db.read() as session:
        template = _found(templates.get(session, user.user_id, _template_id(body.templateId)), "template",
                          body.templateId)
        contact = number = None
        if body.contactId is not None:
            contact = _found(contacts.get_contact(session, user.user_id, body.contactId), "contact", body.contactId)
        else:
            number = _e164(rt, body.recipientNumber, "recipientNumber or contactId")
        return template_send.prepare(session, rt.sender, template, contact=contact, number=number,
                                     campaign=body.campaign, data_field=body.dataField, send_at=send_at)


@router.post("/sms/send-template", tags=[EXTENSION],
             summary="Send a template filled from a contact's fields (a Pigeon extension)")
async def send_template(
    request: Request, user: CurrentUser, body: Annotated[SendTemplateRequest | None, Body()] = None
) -> Response:
    rt = runtime(request)
    outgoing = await run_in_threadpool(_template_send, rt, user, body or SendTemplateRequest())
    await rt.batcher.submit(user, [outgoing], origin="zoomconnect")
    return render(request, {"messageId": outgoing.id, "error": None}, "webServiceSendSmsResponse")

