"""Sending, Zoho's way: ``POST /v1/sms/send`` (SMS) and ``POST /v2/sms/send`` (MMS, or SMS).

Sends go through the accept batcher, as Zoom Connect's do (group commit); an MMS's media are
stored, and the answer's log entries read, in the transaction that accepts its messages.

One request sends one message to up to 10 customer numbers (each phone once, however it is
written), all or none: a number that is not
a phone number, one that opted out of the sender, a sender not the account's, too few credits,
and nothing is written. The answer's ``send`` is the first number's log entry, as Zoho's is
for one number; ``sends`` (Pigeon's) lists every number's entry, in the request's order.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.responses import Response

from pigeon.api.zohovoice import params
from pigeon.api.zohovoice.deps import Caller, creator, runtime
from pigeon.api.zohovoice.errors import SUCCESS, json_response
from pigeon.config import Settings
from pigeon.errors import Invalid, Reason
from pigeon.media import service as media
from pigeon.messages import entries
from pigeon.messages.models import Message
from pigeon.sending.service import MAX_VALIDITY_MINUTES, Accepted, Options, Outgoing
from pigeon.webhooks.urls import RefusedUrl, check_url

MAX_NUMBERS = 10
M = Message.__table__
router = APIRouter()


@router.post("/v1/sms/send", summary="Send an SMS to up to 10 numbers")
async def send_sms(request: Request, caller: Caller = Depends(creator)) -> Response:
    found, _ = await params.body_params(request)
    return await _send(request, caller, found, [])


@router.post("/v2/sms/send", summary="Send an MMS (sms_data and mms_media files) or an SMS to up to 10 numbers")
async def send_mms(request: Request, caller: Caller = Depends(creator)) -> Response:
    limits = runtime(request).settings.mms
    found, form = await params.body_params(request, max_files=limits.max_files + 1)
    data = found.pop("sms_data", None)
    if isinstance(data, str):
        data = params.json_object(data, "sms_data")
    if data is not None and not isinstance(data, dict):
        raise Invalid("sms_data must be a JSON object")
    if data is None and form is not None:
        raise Invalid("sms_data is required: a JSON object with customerNumber, message and senderId")
    merged = {**found, **(data or {})}  # sms_data's fields over the form's own (scheduledTime, timeZone)
    uploads = [media.Upload(f.filename or "file", f.content_type or "", await f.read())
               for f in params.files(form, "mms_media")]
    if uploads:
        media.check(uploads, limits)
    elif params.boolean(merged, "mms"):
        raise Invalid("mms is true, and no mms_media file came with it", Reason.MEDIA)
    return await _send(request, caller, merged, uploads)


def numbers_of(value: Any) -> list[str]:
    """customerNumber as written: one number, or several separated by commas (or a JSON list),
    in order; ``Invalid`` for none, or far more than a send may have."""
    items = value if isinstance(value, list) else [value] if value is not None else []
    found: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise Invalid(f"customerNumber must be a number or numbers separated by commas, not {item!r}",
                          Reason.INVALID_NUMBER)
        found += [part.strip() for part in str(item).split(",") if part.strip()]
    if not found:
        raise Invalid("customerNumber is required", Reason.INVALID_NUMBER)
    if len(found) > 10 * MAX_NUMBERS:
        raise _too_many(len(found))
    return found


def _too_many(count: int) -> Invalid:
    return Invalid(f"At most {MAX_NUMBERS} customer numbers in one send; this one has {count}: nothing was sent",
                   Reason.TOO_MANY_ITEMS)


def once_each(batch: list[Outgoing]) -> list[Outgoing]:
    """The batch with each phone once (the first of its spellings), at most MAX_NUMBERS of them."""
    first: dict[str, Outgoing] = {}
    for m in batch:
        first.setdefault(m.to, m)
    unique = list(first.values())  # dicts keep the order of first insertion
    if len(unique) > MAX_NUMBERS:
        raise _too_many(len(unique))
    return unique


async def _options(settings: Settings, found: dict[str, Any], mms: bool) -> tuple[Options, Any]:
    """The send's options, and its scheduled time (naive UTC) if any."""
    zone = params.zone(params.text(found, "timeZone"), settings.timezone)
    when = params.text(found, "scheduledTime")
    send_at = params.local_time(when, zone, "scheduledTime") if when and when.strip() else None
    callback = params.text(found, "statusCallback")
    if callback is not None and callback.strip():
        try:
            callback = await run_in_threadpool(check_url, callback, allow_private=settings.webhooks_allow_private)
        except RefusedUrl as exc:
            raise Invalid(f"statusCallback: {exc}", subject="statusCallback") from None
    else:
        callback = None
    options = Options(
        data_coding=params.integer(found, "dataCoding", low=0, high=2, subject="dataCoding"),
        flash=params.boolean(found, "flash"),
        validity_minutes=params.integer(found, "validityPeriod", low=0, high=MAX_VALIDITY_MINUTES,
                                        subject="validityPeriod"),
        status_callback=callback,
        time_zone=zone if send_at is not None else None,
        mms=mms,
    )
    return options, send_at


async def _send(request: Request, caller: Caller, found: dict[str, Any], uploads: list[media.Upload]) -> Response:
    rt = runtime(request)
    if uploads and not rt.carrier.carries_mms:
        raise Invalid("No carrier of this platform can carry MMS: send it without media", Reason.NO_MMS_CARRIER)
    options, send_at = await _options(rt.settings, found, bool(uploads))
    message = found.get("message")
    if message is not None and not isinstance(message, str):
        raise Invalid("message must be a string")
    sender = params.text(found, "senderId")
    batch = once_each([rt.sender.prepare(number, message, sender=sender, send_at=send_at, options=options)
                       for number in numbers_of(found.get("customerNumber"))])
    stored = functools.partial(_stored, caller, [m.id for m in batch], uploads, rt.settings.timezone)
    assert rt.batcher is not None, "a process that serves the API accepts sends"
    sent = await rt.batcher.submit(caller.principal, batch, refuse_opted_out=True, then=stored, origin="zohovoice")
    return json_response({"code": SUCCESS, "send": sent[0], "sends": sent, "status": "SUCCESS"})


def _stored(caller: Caller, ids: list[str], uploads: list[media.Upload], zone: str, session: Session,
            now: dt.datetime, accepted: Accepted) -> list[dict]:
    """In the transaction that accepted the messages: their media, and their log entries (from
    the rows as written: nothing is read back)."""
    files = []
    if uploads:
        files = media.store(session, caller.account_id, uploads, now)
        media.attach(session, ids, [f.id for f in files])
    rows, meta = accepted.rows_by_id(), [f.as_zoho() for f in files]
    return [entries.entry(rows[i], caller, zone=zone, media=meta) for i in ids]
