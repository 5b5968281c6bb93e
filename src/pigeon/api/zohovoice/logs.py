"""Reading, Zoho's way: the SMS log (``GET /v1/sms/logs``), conversations
(``GET /v1/sms/chatlist``) and scheduled sends (``GET /v1/sms/schedule``, and Pigeon's
``DELETE /v1/sms/schedule/{jobId}`` to cancel one). Thin: parse, read, present."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from pigeon.api.zohovoice import params
from pigeon.api.zohovoice.deps import Caller, creator, reader, runtime
from pigeon.api.zohovoice.errors import SUCCESS
from pigeon.consent import service as consent
from pigeon.db import utcnow
from pigeon.delivery.queue import cancel_message
from pigeon.errors import Invalid, NotFound, Reason
from pigeon.lifecycle import Status
from pigeon.media import service as media
from pigeon.messages import entries, logs
from pigeon.messages.models import Direction, Message
from pigeon.phone import normalise

MAX_SIZE = 1000  # a larger size is read as this
MAX_OFFSET = 1_000_000
DIRECTIONS = {"all": None, "incoming": Direction.INBOUND, "outgoing": Direction.OUTBOUND}
M = Message.__table__
router = APIRouter()


def _window(found: dict, *, offset_name: str) -> tuple[int, int]:
    size = params.integer(found, "size", low=1, high=1_000_000) or 100
    start = params.integer(found, offset_name, low=0 if offset_name == "from" else 1, high=MAX_OFFSET)
    if offset_name == "page":
        return ((start or 1) - 1) * min(size, MAX_SIZE), min(size, MAX_SIZE)
    return start or 0, min(size, MAX_SIZE)


def _present(session: Session, caller: Caller, rows: Sequence, zone: str) -> list[dict]:
    """Each row's log entry, with its media and whether its customer is blocked, read in one go."""
    files = media.meta_of(session, [row.id for row in rows if row.mms])
    pairs = {row.id: (row.to_number, row.from_number) if row.direction == Direction.INBOUND else (
        row.from_number, row.to_number) for row in rows}
    out = consent.blocked(session, caller.account_id, pairs.values())
    return [entries.entry(row, caller, zone=zone, media=[m.as_zoho() for m in files.get(row.id, ())],
                          blocked=row.status == Status.FAILED_OPTOUT or pairs[row.id] in out)
            for row in rows]


@router.get("/v1/sms/logs", summary="The SMS log: from, size, fromDate, toDate, messageType, customerNumber, country")
def sms_logs(request: Request, caller: Caller = Depends(reader)) -> dict:
    rt = runtime(request)
    found, zone = dict(request.query_params), rt.settings.timezone
    offset, size = _window(found, offset_name="from")
    kind = (found.get("messageType") or "all").strip().lower()
    if kind not in DIRECTIONS:
        raise Invalid(f"messageType must be all, incoming or outgoing, not {found.get('messageType')!r}")
    customer = found.get("customerNumber")
    country = (found.get("country") or "").strip().upper() or None
    if country is not None and not (len(country) == 2 and country.isalpha()):
        raise Invalid(f"country must be a two-letter country code (US, IN), not {found.get('country')!r}")
    flt = logs.LogFilter(
        start=params.day(found.get("fromDate"), zone, "fromDate"),
        end=params.day(found.get("toDate"), zone, "toDate", end=True),
        direction=DIRECTIONS[kind],
        customer=normalise(customer, rt.settings.default_region).e164 if customer and customer.strip() else None,
        region=country,
    )
    with rt.db.read() as session:
        rows, total = logs.log_page(session, caller.user_id, flt, offset=offset, size=size)
        return {"smsLogQuery": _present(session, caller, rows, zone), "meta": {"total": total}, "status": "success",
                "code": SUCCESS}


@router.get("/v1/sms/chatlist", summary="Conversations, newest first: page, size, shortCode, longCode, search")
def chatlist(request: Request, caller: Caller = Depends(reader)) -> dict:
    rt = runtime(request)
    found = dict(request.query_params)
    offset, size = _window(found, offset_name="page")
    ours = []
    for name in ("shortCode", "longCode"):
        value = (found.get(name) or "").strip()
        if value:
            try:
                ours.append(normalise(value, rt.settings.default_region).e164)
            except Invalid:
                ours.append(value)  # a short code is stored as it is written
    with rt.db.read() as session:
        rows, total = logs.conversations(session, caller.user_id, ours=ours, search=found.get("search"),
                                         offset=offset, size=size)
        return {"chatlist": _present(session, caller, rows, rt.settings.timezone),
                "meta": {"total": total, "totalPages": -(-total // size)}, "status": "success", "code": SUCCESS}


@router.get("/v1/sms/schedule", summary="Scheduled sends still waiting: from, size, fromDate, toDate, searchtext")
def schedule(request: Request, caller: Caller = Depends(reader)) -> dict:
    rt = runtime(request)
    found, zone = dict(request.query_params), rt.settings.timezone
    offset, size = _window(found, offset_name="from")
    start = params.day(found.get("fromDate"), zone, "fromDate")
    end = params.day(found.get("toDate"), zone, "toDate", end=True)
    with rt.db.read() as session:
        rows, total = logs.scheduled(session, caller.user_id, start=start, end=end, search=found.get("searchtext"),
                                     offset=offset, size=size)
        return {"schedule": _present(session, caller, rows, zone), "meta": {"total": total}, "code": "200",
                "status": "SUCCESS"}


@router.delete("/v1/sms/schedule/{jobId}", summary="Cancel a scheduled send (a Pigeon extension)")
def cancel(request: Request, jobId: str, caller: Caller = Depends(creator)) -> dict:
    rt = runtime(request)
    with rt.db.write() as session:
        row = session.execute(select(M.c.user_id, M.c.deleted, M.c.status).where(M.c.id == jobId)).first() if len(
            jobId) <= 64 else None
        if row is None or row.user_id != caller.user_id or row.deleted:
            raise NotFound(f"No scheduled message {jobId}")
        if not cancel_message(session, jobId, utcnow()):
            raise Invalid(f"Message {jobId} is no longer scheduled: it is being sent, or was sent or cancelled",
                          Reason.BAD_SCHEDULE)
    return {"code": SUCCESS, "status": "SUCCESS", "message": f"Scheduled message {jobId} was cancelled"}
