"""BYOC: the SIP groups and trunks an account may use (ListSIPgroups, ListBYOCSIPtrunks, from
the configuration's ``[[sip_groups]]`` and ``[[sip_trunks]]``), and the numbers it brings over
them (AddBYOCPhoneNumber), over ``pigeon.numbers.sip``.

The lists show those that serve the account and the product asked (COMMON ones serve both),
by id. Adding is all or nothing: the numbers refused are listed in one 400, code 1000, whose
message is the JSON list ``[{"phoneNumber", "reason"}]``. ``site_id`` is taken without effect;
``enable_pci_pal`` true is refused (200005): Pigeon runs no PCI PAL. Numbers added write one audit
entry in their transaction (number.add).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, StrictBool
from starlette.responses import JSONResponse, Response

from pigeon.accounts.service import token_key
from pigeon.api.actors import grant_actor, listed, named
from pigeon.api.zoomnumbers import pages
from pigeon.api.zoomnumbers.allocation import product_of
from pigeon.api.zoomnumbers.deps import runtime, scoped
from pigeon.carriers.settings import SipGroupSettings, SipTrunkSettings
from pigeon.db import utcnow
from pigeon.db.races import lost_races
from pigeon.errors import Invalid
from pigeon.numbers import sip

router = APIRouter(prefix="/accounts/{accountId}/number_management")
READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"
MAX_TRUNKS, MAX_GROUPS, DEFAULT_PAGE = 100, 300, 30


def present_trunk(trunk: SipTrunkSettings) -> dict:
    shown = {"sip_trunk_id": trunk.id, "name": trunk.name, "source_system": trunk.source_system}
    for field in ("carrier", "carrier_account", "region", "sbc_label"):
        if getattr(trunk, field) is not None:
            shown[field] = getattr(trunk, field)
    return shown


def present_group(group: SipGroupSettings, trunk: SipTrunkSettings) -> dict:
    shown = {"sip_group_id": group.id, "display_name": group.display_name,
             "send_sip_group_name": group.send_sip_group_name, "source_system": group.source_system,
             "sip_trunk": {"sip_trunk_id": trunk.id, "name": trunk.name, "type": trunk.type}}
    if group.description is not None:
        shown["description"] = group.description
    return shown


async def _page(request: Request, listing: str, token: str | None, rows: list, size: int) -> tuple[list, str]:  # type: ignore[type-arg]
    """The page of ``rows`` (sorted by id) a token names, and the next page's token."""
    db = runtime(request).db

    def read() -> tuple[list, str]:  # type: ignore[type-arg]
        with db.read() as session:
            key = token_key(session)
        return pages.walk(key, listing, token, size, utcnow(), lambda after, limit: sip.after(rows, after, limit),
                          lambda row: row.id)

    return await run_in_threadpool(read)


@router.get("/sip_groups", operation_id="ListSIPgroups", summary="List SIP groups")
async def list_groups(
    request: Request,
    account: Annotated[int, Depends(scoped(READ, "number_management:read:list_sip_groups:master"))],
    allocated_product: str | None = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_GROUPS)] = DEFAULT_PAGE,
    next_page_token: str | None = None,
) -> Response:
    product, settings = product_of(allocated_product, field="allocated_product"), runtime(request).settings
    found = sip.groups(settings, account, product)
    page, token = await _page(request, f"sip_groups:{account}:{product}", next_page_token, found, page_size)
    return JSONResponse({"next_page_token": token, "total_records": len(found),
                         "sip_groups": [present_group(g, sip.trunk_of(settings, g)) for g in page]})


@router.get("/sip_trunks", operation_id="ListBYOCSIPtrunks", summary="List BYOC SIP trunks")
async def list_trunks(
    request: Request,
    account: Annotated[int, Depends(scoped(READ, "number_management:read:list_sip_trunks:master"))],
    allocated_product: str | None = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_TRUNKS)] = DEFAULT_PAGE,
    next_page_token: str | None = None,
) -> Response:
    product = product_of(allocated_product, field="allocated_product")
    found = sip.trunks(runtime(request).settings, account, product)
    page, token = await _page(request, f"sip_trunks:{account}:{product}", next_page_token, found, page_size)
    return JSONResponse({"next_page_token": token, "total_records": len(found),
                         "byoc_sip_trunk": [present_trunk(t) for t in page]})


class ByocNumbers(BaseModel):
    model_config = ConfigDict(extra="ignore")
    allocated_product: str | None = None
    country_iso: str | None = None
    site_id: str | None = None
    phone_numbers: list[str] | None = None
    sip_group_id: str | None = None
    enable_pci_pal: StrictBool | None = None


@router.post("/byoc_numbers", operation_id="AddBYOCPhoneNumber", status_code=201, summary="Add BYOC phone numbers")
def add_numbers(request: Request, body: Annotated[ByocNumbers, Body()],
                account: Annotated[int, Depends(scoped(WRITE, "number_management:write:byoc_numbers:master",
                                                       label="MEDIUM"))]) -> Response:
    if not body.allocated_product:
        raise Invalid("Invalid field: allocated_product required")
    if body.enable_pci_pal:
        raise Invalid("Current sip group don't support PCIPal", subject="pci pal")
    rt = runtime(request)
    wanted = sip.Byoc(body.allocated_product, body.phone_numbers or [], body.country_iso, body.sip_group_id)
    with lost_races(sip.EXISTS), rt.db.write() as session:
        added = [row.number for row in sip.add_byoc(session, rt.settings, account, wanted)]
        grant_actor(session, request.state.grant).record(
            session, "number.add", account_id=account, subject=named(added),
            detail=f"added {listed(added, 'BYOC number')} for {wanted.product}"
                   + (f" over SIP group {wanted.sip_group_id}" if wanted.sip_group_id else ""))
    return Response(status_code=201)
