"""Phone numbers: list (filters, ``page_size``, ``next_page_token``), get, update, delete.

Pigeon's kinds, sources and states shown as Zoom names them: local ``Toll``, mobile
``Mobile``, toll-free ``TollFree``, short codes and sender IDs ``VirtualService``; purchased
``Zoom``, ported ``ZoomPorted``, BYOC ``BYOCCloud`` (``BYOCPremises`` finds them too), peering
``ThirdPartyNumber``; active ``Normal``, pending ``Pending``. SMS or MMS is the capability
``Messaging``; voice is ``Incoming`` and ``Outgoing``. An update or a deletion writes one audit
entry in its transaction (number.update, number.delete).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response

from pigeon.accounts.service import token_key
from pigeon.api.actors import grant_actor, listed, named
from pigeon.api.zoomnumbers import pages
from pigeon.api.zoomnumbers.deps import runtime, scoped
from pigeon.db import utcnow
from pigeon.errors import Invalid, NotFound, Reason
from pigeon.numbers import service as numbers
from pigeon.numbers import sip
from pigeon.numbers.models import PhoneNumber

router = APIRouter(prefix="/accounts/{accountId}/number_management")
READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"

KINDS = {"local": "Toll", "mobile": "Mobile", "toll_free": "TollFree", "short_code": "VirtualService",
         "alphanumeric": "VirtualService"}
SOURCES = {"purchased": "Zoom", "ported": "ZoomPorted", "byoc": "BYOCCloud", "peering": "ThirdPartyNumber"}
STATES = {"active": "Normal", "pending": "Pending"}
NUMBER_TYPES = ("Toll", "TollFree", "VirtualService", "Mobile", "SharedCost", "National", "ITFS")
NUMBER_SOURCES = ("Zoom", "ZoomPorted", "ZoomReserved", "ThirdPartyNumber", "BYOCCloud", "BYOCPremises")
MAX_PAGE, DEFAULT_PAGE, MAX_DELETE = 100, 30, 10


def present(row: PhoneNumber, sip_groups: Mapping[str, str] | None = None) -> dict:
    """A number as the API's ``numbers`` items and ``getPhoneNumber`` write it; a BYOC number's
    SIP group is named from ``sip_groups`` (display names by id: ``numbers.sip.group_names``)."""
    capability = (["Incoming", "Outgoing"] if row.voice else []) + (["Messaging"] if row.sms or row.mms else [])
    shown = {"id": row.id, "number": row.number, "allocated_product": row.product or "UNALLOCATED",
             "number_type": KINDS[row.kind], "capability": capability, "source": SOURCES[row.source],
             "status": STATES[row.state]}
    if row.display_name:
        shown["display_name"] = row.display_name
    if row.sip_group_id:
        name = (sip_groups or {}).get(row.sip_group_id)
        shown["sip_group"] = {"id": row.sip_group_id, **({"name": name} if name else {})}
    if row.carrier:
        shown["carrier"] = {"name": row.carrier}
    return shown


def _pigeon(values: dict[str, str], zoom: str | None, allowed: tuple[str, ...], field: str,
            also: dict[str, str] | None = None) -> tuple[str, ...] | None:
    """The Pigeon values a Zoom filter value stands for (None: no filter)."""
    if zoom is None or zoom == "":
        return None
    if zoom not in allowed:
        raise Invalid(f"Invalid value {zoom!r} for {field}: one of {', '.join(allowed)}")
    return tuple(key for key, value in values.items() if value == zoom) + tuple(
        key for key, value in (also or {}).items() if value == zoom)


@router.get("/numbers", operation_id="listPhoneNumbers", summary="List phone numbers")
async def list_numbers(
    request: Request,
    account: Annotated[int, Depends(scoped(READ, "number_management:read:list_numbers:master"))],
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    next_page_token: str | None = None,
    number_type: str | None = None,
    number_status: str | None = None,
    number_source: str | None = None,
    keyword: Annotated[str | None, Query(max_length=64)] = None,
    allocated_product: str | None = None,
) -> Response:
    if allocated_product not in (None, "", "UNALLOCATED", "ZOOM_PHONE", "ZOOM_CONTACT_CENTER"):
        raise Invalid(f"Invalid value {allocated_product!r} for allocated_product")
    status = _pigeon(STATES, number_status, ("Normal", "Pending"), "number_status")
    flt = numbers.Filter(
        kinds=_pigeon(KINDS, number_type, NUMBER_TYPES, "number_type"),
        sources=_pigeon(SOURCES, number_source, NUMBER_SOURCES, "number_source", {"byoc": "BYOCPremises"}),
        state=status[0] if status else None, text=(keyword or "").strip() or None,
        products=(allocated_product,) if allocated_product else None,
    )
    listing = f"numbers:{account}:{flt}"
    db = runtime(request).db

    def read() -> tuple[list[PhoneNumber], str]:
        with db.read() as session:
            return pages.walk(token_key(session), listing, next_page_token, page_size, utcnow(),
                              lambda after, limit: numbers.page(session, account, flt, after=after, size=limit),
                              lambda row: row.number)

    rows, token = await run_in_threadpool(read)
    groups = sip.group_names(runtime(request).settings)
    return JSONResponse({"next_page_token": token, "page_size": page_size,
                         "numbers": [present(r, groups) for r in rows]})


def _own(session, account: int, number_id: str) -> PhoneNumber:  # type: ignore[no-untyped-def]
    row = numbers.get(session, number_id)
    if row is None or row.account_id != account:
        raise NotFound(f"Phone number {number_id} not found")
    return row


@router.get("/numbers/{phoneNumberId}", operation_id="getPhoneNumber", summary="Get a phone number's details")
def get_number(request: Request, phoneNumberId: str,
               account: Annotated[int, Depends(scoped(READ, "number_management:read:numbers:master"))]) -> Response:
    with runtime(request).db.read() as session:
        return JSONResponse(present(_own(session, account, phoneNumberId), sip.group_names(runtime(request).settings)))


class Capability(BaseModel):
    model_config = ConfigDict(extra="ignore")
    incoming: bool | None = None
    outgoing: bool | None = None


class NumberUpdate(BaseModel):
    """updatePhoneNumberDetail's body; caller_id_name, sip_group_id and confirm_address_update
    concern voice products Pigeon does not run, and are taken without effect."""

    model_config = ConfigDict(extra="ignore")
    display_name: str | None = None
    caller_id_name: str | None = None
    sip_group_id: str | None = None
    confirm_address_update: bool | None = None
    capability: Capability | None = None


@router.patch("/numbers/{phoneNumberId}", operation_id="updatePhoneNumberDetail", status_code=204,
              summary="Update a phone number's details")
def update_number(request: Request, phoneNumberId: str,
                  account: Annotated[int, Depends(scoped(WRITE, "number_management:update:numbers:master"))],
                  body: Annotated[NumberUpdate | None, Body()] = None) -> Response:
    body = body or NumberUpdate()
    voice = None
    if body.capability is not None and (body.capability.incoming is not None or body.capability.outgoing is not None):
        voice = bool(body.capability.incoming or body.capability.outgoing)
    with runtime(request).db.write() as session:
        row = _own(session, account, phoneNumberId)
        name, had_voice = row.display_name, row.voice
        numbers.update_number(session, row, display_name=body.display_name, voice=voice)
        said = []
        if row.display_name != name:
            said.append(f"display name set to {row.display_name!r}" if row.display_name else "display name cleared")
        if row.voice != had_voice:
            said.append(f"voice {'on' if row.voice else 'off'}")
        grant_actor(session, request.state.grant).record(session, "number.update", account_id=account,
                                                         subject=row.number, detail="; ".join(said) or "nothing changed")
    return Response(status_code=204)


@router.delete("/numbers", operation_id="DeleteNumbers", status_code=204, summary="Delete phone numbers")
def delete_numbers(request: Request,
                   account: Annotated[int, Depends(scoped(WRITE, "number_management:delete:numbers:master", label="MEDIUM"))],
                   numbers_: Annotated[list[str] | None, Query(alias="numbers")] = None) -> Response:
    wanted = list(dict.fromkeys(numbers_ or []))
    if not wanted:
        raise Invalid("numbers is required: the ids of the phone numbers to delete")
    if len(wanted) > MAX_DELETE:
        raise Invalid(f"At most {MAX_DELETE} numbers at a time")
    with runtime(request).db.write() as session:  # all or none: an unknown one deletes nothing
        rows = [numbers.get(session, number_id) for number_id in wanted]
        unknown = [number_id for number_id, row in zip(wanted, rows) if row is None or row.account_id != account]
        if unknown:
            raise Invalid(f"Phone number not found: {', '.join(unknown)}", Reason.UNKNOWN_ITEM)
        gone = [row.number for row in rows]
        for row in rows:
            numbers.remove(session, row.id)
        grant_actor(session, request.state.grant).record(session, "number.delete", account_id=account,
                                                         subject=named(gone), detail=f"deleted {listed(gone, 'number')}")
    return Response(status_code=204)
