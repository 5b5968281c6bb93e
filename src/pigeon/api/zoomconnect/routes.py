"""The Zoom Connect endpoints. Thin: parse, call the services, render.

Send endpoints are async and go through the accept batcher (group commit); the rest are plain
functions that FastAPI runs on its thread pool, each with its own short session.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.responses import Response

from pigeon.accounts import service as accounts
from pigeon.accounts.service import Principal, from_milli
from pigeon.api.formats import render
from pigeon.api.zoomconnect import present
from pigeon.api.zoomconnect.deps import PREFIX, PRINCIPAL_KEY, CurrentUser, runtime
from pigeon.api.zoomconnect.params import local_day, number_param, send_time
from pigeon.api.zoomconnect.schemas import AnalyseRequest, SendSmsRequest, SendSmsRequests, Unreadable
from pigeon.contacts import service as contacts
from pigeon.db import utcnow
from pigeon.delivery.queue import delete_message as delete_one
from pigeon.errors import Invalid, NotFound, Reason
from pigeon.messages import service as messages
from pigeon.messages.models import Direction, Message, Status
from pigeon.phone import normalise
from pigeon.runtime import Runtime
from pigeon.sending import idempotency
from pigeon.sending.idempotency import Remembered
from pigeon.sending.service import Outgoing
from pigeon.text import analyse, character_analysis

MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000  # beyond it, offsets overflow the databases' integers
router = APIRouter()


# -- sending -------------------------------------------------------------------------------

def _prepare(rt: Runtime, req: SendSmsRequest, send_at: dt.datetime | None = None) -> Outgoing:
    own = send_time(rt, req.dateToSend)
    return rt.sender.prepare(
        req.recipientNumber, req.message, campaign=req.campaign, data_field=req.dataField,
        send_at=own or send_at,
    )


IDEMPOTENCY_KEY = "idempotency-key"
CREDENTIAL_PARAMS = frozenset({"email", "token"})


async def _replayed(request: Request, user: Principal) -> tuple[Response | None, Remembered | None]:
    """For a send with an Idempotency-Key: the first answer, if this is a retry; else what to
    remember (its data is filled in by ``_submit``)."""
    keys = request.headers.getlist(IDEMPOTENCY_KEY)
    if not keys:
        return None, None
    if len(keys) > 1:
        raise Invalid("Send one Idempotency-Key header, not several")
    key = keys[0]
    idempotency.check_key(key)
    query = urlencode([(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True)
                       if k not in CREDENTIAL_PARAMS])  # a retry may sign in another way
    digest = idempotency.request_hash(request.method, request.url.path, query, await request.body())
    found = await _stored(request, user, key)
    if found is None:
        return None, Remembered(key, digest, 200, None)
    return _replay(request, found, digest), None


async def _stored(request: Request, user: Principal, key: str) -> Remembered | None:
    db = runtime(request).db

    def read() -> Remembered | None:
        with db.read() as session:
            return idempotency.lookup(session, user.user_id, key, utcnow())

    return await run_in_threadpool(read)


def _replay(request: Request, found: Remembered, digest: str) -> Response:
    root, data = idempotency.same_request(found, digest).data  # type: ignore[misc]
    response = render(request, data, root, found.status)
    response.headers["Idempotent-Replayed"] = "true"
    return response


async def _submit(request: Request, user: Principal, batch: list[Outgoing], remember: Remembered | None,
                  root: str, data: object) -> Response | None:
    """Accept the batch (remembering the answer under its key); a retry that raced this one
    and won gets its answer instead."""
    rt = runtime(request)
    if remember is not None:
        remember = Remembered(remember.key, remember.request_hash, 200, [root, data])
    try:
        await rt.batcher.submit(user, batch, remember, origin="zoomconnect")
    except idempotency.KeyTaken:
        assert remember is not None
        found = await _stored(request, user, remember.key)
        if found is None:
            raise
        return _replay(request, found, remember.request_hash)
    return None


async def _send_one(request: Request, user: Principal, req: SendSmsRequest, root: str, shape) -> Response:  # type: ignore[no-untyped-def]
    replay, remember = await _replayed(request, user)
    if replay is not None:
        return replay
    rt = runtime(request)
    outgoing = _prepare(rt, req)
    data = shape(outgoing.id)
    return await _submit(request, user, [outgoing], remember, root, data) or render(request, data, root)


EXAMPLE_SEND = {
    "recipientNumber": "+27821234567", "message": "Hello from Pigeon", "campaign": None,
    "dataField": None, "dateToSend": None,
}


@router.get("/sms/send", summary="An example of the data to POST to send a single message")
async def send_example(request: Request, user: CurrentUser) -> Response:
    return render(request, EXAMPLE_SEND, "webServiceSendSmsRequest")


@router.post("/sms/send", summary="Send a single message")
async def send(request: Request, user: CurrentUser, body: Annotated[SendSmsRequest | None, Body()] = None) -> Response:
    return await _send_one(request, user, body or SendSmsRequest(), "webServiceSendSmsResponse", _sent)


def _sent(message_id: str) -> dict:
    return {"messageId": message_id, "error": None}


@router.get("/sms/send-bulk", summary="An example of the data to POST to send many messages")
async def send_bulk_example(request: Request, user: CurrentUser) -> Response:
    example = {"sendSmsRequests": [EXAMPLE_SEND], "defaultDateToSend": None, "messagesPerMinute": 0}
    return render(request, example, "webServiceSendSmsRequests")


@router.post("/sms/send-bulk", summary="Send many messages in one transaction")
async def send_bulk(
    request: Request, user: CurrentUser, body: Annotated[SendSmsRequests | None, Body()] = None
) -> Response:
    return await _send_many(request, user, body or SendSmsRequests())


async def _send_many(request: Request, user: Principal, body: SendSmsRequests) -> Response:
    replay, remember = await _replayed(request, user)
    if replay is not None:
        return replay
    rt = runtime(request)
    default_at = send_time(rt, body.defaultDateToSend, "defaultDateToSend")
    pace = 60.0 / body.messagesPerMinute if body.messagesPerMinute else 0.0
    start = default_at or utcnow()
    results: list[dict] = []
    accepted: list[Outgoing] = []
    for entry in body.sendSmsRequests or []:
        if isinstance(entry, Unreadable):
            results.append({"messageId": None, "error": entry.detail})
            continue
        try:
            at = start + dt.timedelta(seconds=pace * len(accepted)) if pace else default_at
            outgoing = _prepare(rt, entry or SendSmsRequest(), at)
        except Invalid as exc:  # this one alone is refused
            results.append({"messageId": None, "error": exc.detail})
            continue
        accepted.append(outgoing)
        results.append({"messageId": outgoing.id, "error": None})
    data, root = {"sendSmsResponses": results}, "webServiceSendSmsResponses"
    if accepted:
        raced = await _submit(request, user, accepted, remember, root, data)
        if raced is not None:
            return raced
    return render(request, data, root)


async def _url_parameters(request: Request) -> SendSmsRequest:
    """The send's parameters from the query string and a form body; bytes that are not UTF-8
    are refused (400), never stored as replacement characters."""
    sources = [request.scope.get("query_string", b"")]
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        sources.append(await request.body())
    params: dict[str, str] = {}
    for raw in sources:
        try:
            params.update(parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict"))
        except UnicodeDecodeError:
            raise Invalid("Invalid request: parameters must be UTF-8") from None
    return SendSmsRequest.model_validate(params)


_url_params_doc = {
    "parameters": [
        {"name": name, "in": "query", "required": name in ("recipientNumber", "message"), "schema": {"type": "string"}}
        for name in ("recipientNumber", "message", "dateToSend", "campaign", "dataField")
    ]
}


@router.get("/sms/send-url-parameters", openapi_extra=_url_params_doc, operation_id="sendUrlParameters",
            summary="Send a single message given as URL parameters")
@router.post("/sms/send-url-parameters", openapi_extra=_url_params_doc, operation_id="sendUrlParametersPost",
             summary="Send a single message given as URL parameters")
async def send_url_parameters(request: Request, user: CurrentUser) -> Response:
    return await _send_one(request, user, await _url_parameters(request), "string", lambda message_id: message_id)


@router.get("/sms/send-url/{token}", openapi_extra=_url_params_doc, operation_id="sendUrl",
            summary="Send a single message with the URL-sending token, without other credentials")
@router.post("/sms/send-url/{token}", openapi_extra=_url_params_doc, operation_id="sendUrlPost",
             summary="Send a single message with the URL-sending token, without other credentials")
async def send_url(request: Request, token: str) -> Response:
    user = await request.app.state.auth.url_user(token)
    if user is None:
        raise HTTPException(401, "Unknown URL-sending token")
    return await _send_one(request, user, await _url_parameters(request), "string", lambda message_id: message_id)


# -- analysis ------------------------------------------------------------------------------

def _analysis(request: Request, body: AnalyseRequest | None, need_number: bool = False) -> dict:
    rt = runtime(request)
    body = body or AnalyseRequest()
    if body.message is None:
        raise Invalid("message is required", Reason.EMPTY_MESSAGE)
    region = None
    if body.recipientNumber is not None and need_number:
        region = normalise(body.recipientNumber, rt.settings.default_region).region
    result = analyse(body.message)
    return {
        "characterAnalysis": character_analysis(body.message),
        "messageCreditCost": from_milli(rt.sender.prices.cost(result.parts, region)),
        "messageEncoding": result.encoding,
        "messageLength": result.length,
        "messageLengthWithinMaximumAllowed": result.parts <= rt.sender.max_parts,
        "numberOfMessages": result.parts,
    }


Analyse = Annotated[AnalyseRequest | None, Body()]


@router.post("/messages/analyse/full", summary="Full analysis of a message")
def analyse_full(request: Request, user: CurrentUser, body: Analyse = None) -> Response:
    return render(request, _analysis(request, body, need_number=True), "webServiceAnalyseMessageResponse")


@router.post("/messages/analyse/message-credit-cost", summary="Credits a message would cost")
def analyse_cost(request: Request, user: CurrentUser, body: Analyse = None) -> Response:
    return render(request, _analysis(request, body, need_number=True)["messageCreditCost"], "double")


@router.post("/messages/analyse/message-encoding", summary="Encoding a message would be sent in")
def analyse_encoding(request: Request, user: CurrentUser, body: Analyse = None) -> Response:
    return render(request, _analysis(request, body)["messageEncoding"], "string")


@router.post("/messages/analyse/message-length", summary="Length of a message, in its encoding's units")
def analyse_length(request: Request, user: CurrentUser, body: Analyse = None) -> Response:
    return render(request, _analysis(request, body)["messageLength"], "int")


@router.post("/messages/analyse/message-length-within-max-allowed", summary="Whether a message is short enough")
def analyse_within(request: Request, user: CurrentUser, body: Analyse = None) -> Response:
    return render(request, _analysis(request, body)["messageLengthWithinMaximumAllowed"], "boolean")


@router.post("/messages/analyse/number-of-messages", summary="SMS parts a message would take")
def analyse_parts(request: Request, user: CurrentUser, body: Analyse = None) -> Response:
    return render(request, _analysis(request, body)["numberOfMessages"], "int")


# -- messages ------------------------------------------------------------------------------

@router.get("/messages/all", summary="A page of your messages, newest first")
def all_messages(
    request: Request,
    user: CurrentUser,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    pageSize: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    type: Direction | None = None,
    status: Status | None = None,
    fromDateTimeSent: str | None = None,
    toDateTimeSent: str | None = None,
    fromDateTimeReceived: str | None = None,
    toDateTimeReceived: str | None = None,
    fromNumber: str | None = None,
    toNumber: str | None = None,
    message: str | None = None,
    campaign: str | None = None,
    dataField: str | None = None,
    deleted: bool | None = False,
    read: bool | None = None,
    repliesToMessageId: str | None = None,
) -> Response:
    rt = runtime(request)
    flt = messages.MessageFilter(
        direction=type, status=status,
        sent_from=local_day(rt, fromDateTimeSent, "fromDateTimeSent"),
        sent_before=local_day(rt, toDateTimeSent, "toDateTimeSent", end=True),
        received_from=local_day(rt, fromDateTimeReceived, "fromDateTimeReceived"),
        received_before=local_day(rt, toDateTimeReceived, "toDateTimeReceived", end=True),
        from_number=number_param(rt, fromNumber), to_number=number_param(rt, toNumber),
        text=message or None, campaign=campaign, data_field=dataField,
        deleted=deleted, read=read, replies_to=repliesToMessageId,
    )
    with rt.db.read() as session:
        result = messages.page(session, user.user_id, flt, number=page, size=pageSize)
        items = _presented(session, user.user_id, result.items)
    body = {
        "elements": len(items),
        "page": page,
        "pageSize": pageSize,
        "totalElements": result.total,
        "totalPages": math.ceil(result.total / pageSize),
        "webServiceMessages": items,
        "links": [],
    }
    return render(request, body, "webServiceMessages")


def _presented(session: Session, user_id: int, found: list[Message]) -> list[dict]:
    """WebServiceMessages, each with the user's contact at its other end (one query in all)."""

    def party(m: Message) -> str | None:
        return m.from_number if m.direction == Direction.INBOUND else m.to_number

    ids = contacts.ids_by_number(session, user_id, {n for m in found if (n := party(m))})
    return [present.message(m, ids.get(party(m) or "")) for m in found]


def _not_found(message_id: str) -> NotFound:
    return NotFound(f"No message {message_id} in your account")


@router.get("/messages/{messageId}", summary="One of your messages")
def get_message(request: Request, user: CurrentUser, messageId: str) -> Response:
    with runtime(request).db.read() as session:
        found = messages.get(session, user.user_id, messageId)
        if found is None:
            raise _not_found(messageId)
        return render(request, _presented(session, user.user_id, [found])[0], "webServiceMessage")


@router.delete("/messages/{messageId}", summary="Delete a message; one not yet sent is cancelled and refunded")
def delete_message(request: Request, user: CurrentUser, messageId: str) -> Response:
    with runtime(request).db.write() as session:
        if not delete_one(session, user.user_id, messageId, utcnow()):
            raise _not_found(messageId)
    return Response(status_code=200)


def _mark(request: Request, user: Principal, message_id: str, read: bool) -> Response:
    with runtime(request).db.write() as session:
        found = messages.set_read(session, user.user_id, message_id, read)
        if found is None:
            raise _not_found(message_id)
        session.flush()
        return render(request, _presented(session, user.user_id, [found])[0], "webServiceMessage")


@router.put("/messages/{messageId}/markRead", operation_id="markRead", summary="Mark a message read")
@router.post("/messages/{messageId}/markRead", operation_id="markReadPost", summary="Mark a message read")
def mark_read(request: Request, user: CurrentUser, messageId: str) -> Response:
    return _mark(request, user, messageId, True)


@router.put("/messages/{messageId}/markUnread", operation_id="markUnread", summary="Mark a message unread")
@router.post("/messages/{messageId}/markUnread", operation_id="markUnreadPost", summary="Mark a message unread")
def mark_unread(request: Request, user: CurrentUser, messageId: str) -> Response:
    return _mark(request, user, messageId, False)


# -- account -------------------------------------------------------------------------------

@router.get("/account/balance", summary="Your credit balance")
def balance(request: Request, user: CurrentUser) -> Response:
    with runtime(request).db.read() as session:
        credits = accounts.balance(session, user.user_id)
    return render(request, {"creditBalance": credits, "links": []}, "webServiceAccount")


# -- lean routes (pigeon.api.fast) ------------------------------------------------------------

def _json_body(request: Request, body: bytes, model: type[BaseModel]) -> BaseModel | None:
    """The body as ``model`` when the request is the common case (JSON, no Idempotency-Key),
    else None: the full route answers it."""
    headers = request.headers
    kind = headers.get("content-type", "").partition(";")[0].strip().lower()
    if IDEMPOTENCY_KEY in headers or not (kind == "application/json" or
                                          (kind.startswith("application/") and kind.endswith("+json"))):
        return None  # the media types FastAPI reads as JSON, and no others
    try:
        return model.model_validate_json(body) if body else model()
    except ValidationError:
        return None


async def _send_lean(request: Request, body: bytes) -> Response | None:
    req = _json_body(request, body, SendSmsRequest)
    if req is None:
        return None
    return await _send_one(request, request.scope[PRINCIPAL_KEY], req, "webServiceSendSmsResponse", _sent)


async def _send_bulk_lean(request: Request, body: bytes) -> Response | None:
    req = _json_body(request, body, SendSmsRequests)
    if req is None:
        return None
    return await _send_many(request, request.scope[PRINCIPAL_KEY], req)


LEAN = {("POST", PREFIX + "/sms/send"): _send_lean, ("POST", PREFIX + "/sms/send-bulk"): _send_bulk_lean}
