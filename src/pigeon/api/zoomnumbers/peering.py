"""Peering numbers, over ``pigeon.numbers.peering``: a provider exchange partner (a configured
carrier) lists, adds, updates and removes its numbers in its customers' accounts, and lists
them across every account (``carrier/peering_numbers``).

The carrier a request speaks for is its OAuth client's (``pigeon oauth client create
--carrier``), taken only when the client is the operator's master account's (else 403: a client
made elsewhere before that was refused, or an account no longer the master); ``carrier_code``
names a configured carrier by its ``code``, and must be the client's own carrier when the client
has one (else 403); a client without a carrier writes for one by its code only from the
operator's master account (else 403). Neither: 400, code 1001. Listing an account's peering
numbers needs no carrier: without one, it shows every carrier's, and ``carrier_code`` filters.
Adding, updating and removing write one audit entry each, in their transaction, on the account
whose numbers they are (number.add, number.update, number.delete).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response

from pigeon.accounts.models import Account
from pigeon.accounts.policy import is_operator
from pigeon.accounts.service import token_key
from pigeon.api.actors import grant_actor, listed, named
from pigeon.api.zoomnumbers import pages
from pigeon.api.zoomnumbers.deps import runtime, scoped
from pigeon.carriers.factory import carrier_settings
from pigeon.db import utcnow
from pigeon.db.races import lost_races
from pigeon.errors import Forbidden, Invalid, Reason
from pigeon.numbers import peering
from pigeon.numbers.models import PhoneNumber, State
from pigeon.oauth.service import Grant

router = APIRouter(prefix="/accounts/{accountId}/number_management")
READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"
MAX_PAGE, DEFAULT_PAGE = 300, 30
NOT_FOUND = "Carrier not found"


def carrier_of(request: Request, code: int | None, *, writes: bool = True) -> str | None:
    """The configured carrier the request speaks for: its client's (only a client of the
    operator's master account speaks for one: else ``Forbidden``), or the one ``code`` names
    (which must then be its client's own, if it has one; to write for a carrier by its code
    alone, the client must be the operator's master account's). None only for a read."""
    grant: Grant = request.state.grant
    if grant.carrier is not None and not _is_operator(request, grant.account_id):
        raise Forbidden(f"Your client speaks for carrier {grant.carrier}, but only the operator's master account's "
                        "clients may: ask the operator for a new client")
    settings = runtime(request).settings
    configured = carrier_settings(settings.carriers, settings.carrier_url)
    if code is not None:
        named = next((c.name for c in configured if c.code is not None and c.code == code), None)
        if named is None:
            raise Invalid(f"{NOT_FOUND}: no carrier has the code {code}", Reason.NO_CARRIER)
        if grant.carrier is not None and grant.carrier != named:
            raise Forbidden(f"carrier_code {code} is not the carrier your client speaks for")
        if grant.carrier is None and writes and not _is_operator(request, grant.account_id):
            raise Forbidden(f"Only a carrier's client, or the operator's, may act for carrier_code {code}")
        return named
    if grant.carrier is not None:
        if grant.carrier not in {c.name for c in configured}:
            raise Invalid(f"{NOT_FOUND}: {grant.carrier} is no longer configured", Reason.NO_CARRIER)
        return grant.carrier
    if writes:
        raise Invalid(f"{NOT_FOUND}: name it with carrier_code, or use a carrier's OAuth client", Reason.NO_CARRIER)
    return None


def _is_operator(request: Request, account_id: int) -> bool:
    with runtime(request).db.read() as session:
        return is_operator(session, account_id)


def present(row: PhoneNumber, account: Account | None = None, *, customer: bool = False) -> dict:
    """A peering number as the lists write it; ``customer``: with the account that holds it."""
    shown: dict[str, object] = {"phone_number": row.number, "allocated_product": row.product,
                                "assigned": row.account_id is not None, "sip_trunk_name": row.sip_trunk_name or "",
                                "status": row.state == State.ACTIVE.value}
    if row.billing_ref_id:
        shown["billing_ref_id"] = row.billing_ref_id
    if row.service_info:
        shown["service_info"] = row.service_info
    if customer:
        del shown["allocated_product"]
        if account is not None:
            shown["customer_account_name"] = account.name
            shown["customer_account_number"] = str(account.id)
    return shown


def _number(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    number = peering.e164(raw)
    if number is None:
        raise Invalid(f"Invalid phone_number {raw!r}: E.164, such as +12097654882", Reason.INVALID_NUMBER)
    return number


async def _listed(request: Request, listing: peering.Listing, page_size: int, token: str | None, *,
                  customer: bool) -> Response:
    name = f"peering:{listing}"
    db = runtime(request).db

    def read() -> dict:
        with db.read() as session:
            rows, following = pages.walk(
                token_key(session), name, token, page_size, utcnow(),
                lambda after, limit: peering.page(session, listing, after=after, size=limit), lambda r: r[0].number)
            return {"next_page_token": following, "page_size": page_size, "total_records": peering.count(session, listing),
                    "numbers": [present(row, account, customer=customer) for row, account in rows]}

    return JSONResponse(await run_in_threadpool(read))


@router.get("/peering_numbers", operation_id="listPeeringPhoneNumbers", summary="List peering phone numbers")
async def list_peering(
    request: Request,
    account: Annotated[int, Depends(scoped(READ, "number_management:read:list_peering_numbers:master"))],
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    next_page_token: str | None = None,
    phone_number: Annotated[str | None, Query(max_length=32)] = None,
    carrier_code: int | None = None,
) -> Response:
    carrier = carrier_of(request, carrier_code, writes=False)
    listing = peering.Listing(account_id=account, carrier=carrier, number=_number(phone_number))
    return await _listed(request, listing, page_size, next_page_token, customer=False)


@router.get("/carrier/peering_numbers", operation_id="Listpeeringphonenumbersforprovider",
            summary="List peering phone numbers for provider")
async def list_for_provider(
    request: Request,
    account: Annotated[int, Depends(scoped(READ, "number_management:read:list_carrier_peering_numbers:master"))],
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    next_page_token: str | None = None,
    phone_number: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    grant: Grant = request.state.grant
    if grant.carrier is None:
        raise Invalid(f"{NOT_FOUND}: only a carrier's OAuth client lists its numbers", Reason.NO_CARRIER)
    listing = peering.Listing(carrier=carrier_of(request, None), number=_number(phone_number))
    return await _listed(request, listing, page_size, next_page_token, customer=True)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")
    carrier_code: int | None = None
    allocated_product: str | None = None
    phone_numbers: list[Any] | None = None  # each item is checked on its own, and refused with its reason


@router.post("/peering_numbers", operation_id="addPeeringPhoneNumbers", status_code=201,
             summary="Add peering phone numbers")
def add_peering(request: Request,
                account: Annotated[int, Depends(scoped(WRITE, "number_management:write:peering_number:master"))],
                body: Annotated[_Body | None, Body()] = None) -> Response:
    body = body or _Body()
    carrier = carrier_of(request, body.carrier_code)
    assert carrier is not None
    if body.allocated_product is None:
        raise Invalid("allocated_product is required: UNALLOCATED, ZOOM_PHONE or ZOOM_CONTACT_CENTER")
    with lost_races("Phone Number already exists"), runtime(request).db.write() as session:
        added = [row.number for row in peering.add(session, account, carrier, body.allocated_product,
                                                    body.phone_numbers or [])]
        grant_actor(session, request.state.grant).record(
            session, "number.add", account_id=account, subject=named(added),
            detail=f"added {listed(added, 'peering number')} of carrier {carrier} for {body.allocated_product}")
    return Response(status_code=201)


@router.patch("/peering_numbers", operation_id="updatePeeringPhoneNumbers", status_code=204,
              summary="Update peering phone numbers")
def update_peering(request: Request,
                   account: Annotated[int, Depends(scoped(WRITE, "number_management:update:peering_number:master"))],
                   body: Annotated[_Body | None, Body()] = None) -> Response:
    body = body or _Body()
    carrier = carrier_of(request, body.carrier_code)
    assert carrier is not None
    with runtime(request).db.write() as session:
        changed = [row.number for row in peering.update(session, account, carrier, body.allocated_product,
                                                         body.phone_numbers or [])]
        grant_actor(session, request.state.grant).record(
            session, "number.update", account_id=account, subject=named(changed),
            detail=f"updated {listed(changed, 'peering number')} of carrier {carrier}"
                   + (f", allocated to {body.allocated_product}" if body.allocated_product is not None else ""))
    return Response(status_code=204)


@router.delete("/peering_numbers", operation_id="deletePeeringPhoneNumbers", status_code=200,
               summary="Remove peering phone numbers")
def delete_peering(request: Request,
                   account: Annotated[int, Depends(scoped(WRITE, "number_management:delete:peering_number:master"))],
                   phone_numbers: Annotated[list[str] | None, Query()] = None,
                   carrier_code: int | None = None) -> Response:
    carrier = carrier_of(request, carrier_code)
    assert carrier is not None
    wanted = [n for given in phone_numbers or [] for n in given.split(",") if n]
    with runtime(request).db.write() as session:
        peering.delete(session, account, carrier, wanted)
        gone = [peering.e164(n) or n for n in wanted]  # all of them were found: it deletes all or none
        grant_actor(session, request.state.grant).record(
            session, "number.delete", account_id=account, subject=named(gone),
            detail=f"removed {listed(gone, 'peering number')} of carrier {carrier}")
    return Response(status_code=200)
