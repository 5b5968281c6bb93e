"""Port-in orders (Listportednumbers, Getportednumbersdetails), over ``pigeon.numbers.porting``.
The operator makes and moves them on the command line (``pigeon numbers port``); an account's
token reads its own. An unknown order, like another account's, answers 400, code 400."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from pigeon.accounts.service import token_key
from pigeon.api.zoomnumbers import pages
from pigeon.api.zoomnumbers.deps import runtime, scoped
from pigeon.db import utcnow
from pigeon.numbers import porting
from pigeon.numbers.models import PortOrder

router = APIRouter(prefix="/accounts/{accountId}/number_management/ported_numbers/orders")
READ = "number_management_numbers:read:master"
MAX_PAGE, DEFAULT_PAGE = 100, 30


def present(order: PortOrder, *, details: bool = False) -> dict:
    shown = {"order_id": order.id, "numbers": orjson.loads(order.numbers),
             "replacing_numbers": orjson.loads(order.replacing), "status": order.status}
    if order.submitted_at is not None:
        shown["submission_date_time"] = order.submitted_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if details:
        shown.update(orjson.loads(order.details))
    return shown


@router.get("", operation_id="Listportednumbers", summary="List ported numbers")
async def list_orders(
    request: Request,
    account: Annotated[int, Depends(scoped(READ, "number_management:read:list_ported_numbers:master"))],
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    next_page_token: str | None = None,
) -> Response:
    listing, db = f"ported:{account}", runtime(request).db

    def read() -> dict:
        with db.read() as session:
            rows, token = pages.walk(
                token_key(session), listing, next_page_token, page_size, utcnow(),
                lambda after, limit: porting.orders(session, account, after=after, size=limit), lambda o: o.id)
            return {"next_page_token": token, "page_size": page_size, "total_records": porting.count(session, account),
                    "ported_numbers": [present(order) for order in rows]}

    return JSONResponse(await run_in_threadpool(read))


@router.get("/{orderId}", operation_id="Getportednumbersdetails", summary="Get a port order's details")
def get_order(request: Request, orderId: str,
              account: Annotated[int, Depends(scoped(READ, "number_management:read:ported_number:master"))]
              ) -> Response:
    with runtime(request).db.read() as session:
        return JSONResponse(present(porting.of_account(session, account, orderId), details=True))
