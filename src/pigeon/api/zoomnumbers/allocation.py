"""Allocation (AllocateNumber) and the number plan (Listphonenumberplaninformation), over
``pigeon.numbers.allocation``.

The path's account is the target. ZOOM_PHONE or ZOOM_CONTACT_CENTER: each number is the
target's own (its product switches) or in the operator's pool, which only a token of the
operator's master account takes from; UNALLOCATED returns the target's numbers to the pool
(the master account only: 403, code 200, for any other). All or nothing: an id that is unknown,
another account's, or not the caller's to take answers 400, code 100002. ``site_id`` is taken
without effect (Pigeon has no sites). A BYOC number switches only to a product its SIP group
serves (else 400, code 200002), and is never returned to the pool. The plan is one entry per kind of number the account holds
under the product. An allocation writes one audit entry in its transaction, on the target
account (number.allocate).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response

from pigeon.accounts import policy
from pigeon.accounts.service import token_key
from pigeon.api.actors import grant_actor, listed, named
from pigeon.api.zoomnumbers import pages
from pigeon.api.zoomnumbers.deps import runtime, scoped
from pigeon.db import utcnow
from pigeon.errors import Invalid
from pigeon.numbers import allocation, sip
from pigeon.numbers import service as numbers

router = APIRouter(prefix="/accounts/{accountId}/number_management")
READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"
MAX_IDS, MAX_PAGE, DEFAULT_PAGE = 10, 200, 30


class Allocation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    numbers: list[str] | None = None
    allocated_product: str | None = None
    site_id: str | None = None


@router.patch("/allocation", operation_id="AllocateNumber", status_code=204,
              summary="Allocate or unallocate phone numbers")
def allocate(request: Request, body: Annotated[Allocation, Body()],
             account: Annotated[int, Depends(scoped(WRITE, "number_management:write:numbers:master", label="HEAVY"))]
             ) -> Response:
    wanted = list(dict.fromkeys(body.numbers or []))
    if not wanted:
        raise Invalid("Invalid field: numbers required")
    if len(wanted) > MAX_IDS:
        raise Invalid(f"Invalid field: numbers holds {MAX_IDS} at most")
    if not body.allocated_product:
        raise Invalid("Invalid field: allocated_product required")
    actor, rt = request.state.grant.account_id, runtime(request)
    groups = [group.id for group in sip.groups(rt.settings, account, body.allocated_product)]
    with rt.db.write() as session:
        operator = policy.is_operator(session, actor)  # it reaches every account
        allocation.allocate(session, account, wanted, body.allocated_product, operator=operator, sip_groups=groups)
        moved = [row.number for row in (numbers.get(session, number_id) for number_id in wanted) if row is not None]
        where = ("returned to the operator's pool" if body.allocated_product == allocation.UNALLOCATED
                 else f"allocated to {body.allocated_product}")
        grant_actor(session, request.state.grant).record(session, "number.allocate", account_id=account,
                                                         subject=named(moved), detail=f"{listed(moved, 'number')} {where}")
    return Response(status_code=204)


def product_of(product: str | None, choices: tuple[str, ...] = allocation.PRODUCTS, field: str = "product") -> str:
    """A product a query names: 1002006 when missing or empty, 999 when not one of ``choices``."""
    if product is None or not product.strip():
        raise Invalid("product cannot be empty", subject="product")
    if product not in choices:
        raise Invalid(f"Invalid param ({field}): one of {', '.join(choices)}")
    return product


@router.get("/plan", operation_id="Listphonenumberplaninformation", summary="List phone number plan information")
async def plan(
    request: Request,
    account: Annotated[int, Depends(scoped(READ, "number_management:read:numbers_plan:master"))],
    product: str | None = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    next_page_token: str | None = None,
) -> Response:
    chosen = product_of(product)
    listing, db = f"plan:{account}:{chosen}", runtime(request).db

    def read() -> dict:
        with db.read() as session:
            rows, token = pages.walk(
                token_key(session), listing, next_page_token, page_size, utcnow(),
                lambda after, limit: allocation.plans(session, account, chosen, after=after, size=limit),
                lambda plan: plan.kind)
            return {"next_page_token": token, "page_size": page_size,
                    "plans": [{"name": p.name, "subscribed": p.subscribed, "assigned": p.assigned,
                               "available": p.available, "is_unlimited": False} for p in rows]}

    return JSONResponse(await run_in_threadpool(read))
