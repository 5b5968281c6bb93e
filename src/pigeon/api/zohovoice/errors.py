"""Zoho Voice's error body, ``{"status": "ERROR", "code": "ZVSMS-....", "message": ...}``, and
the one table from the core's kinds and reasons to its codes. The codes are Pigeon's choice
where Zoho's pages give none (ZVSMS-4027 "Bad Request" is theirs); they are listed in the
README and kept stable."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pigeon.api.errors import Refusal, headers_of
from pigeon.errors import Kind, Reason

SUCCESS = "ZVSMS-2000"

KINDS = {
    Kind.INVALID: ("ZVSMS-4027", 400),  # Zoho's "Bad Request"
    Kind.NOT_FOUND: ("ZVSMS-4004", 404),
    Kind.CONFLICT: ("ZVSMS-4009", 409),
    Kind.FORBIDDEN: ("ZVSMS-4003", 403),
    Kind.INSUFFICIENT_CREDITS: ("ZVSMS-4029", 402),
    Kind.UNAVAILABLE: ("ZVSMS-5003", 503),
    Kind.TOO_MANY: ("ZVSMS-4290", 429),
}
"""The code and status of each kind of error."""

REASONS = {
    Reason.INVALID_NUMBER: ("ZVSMS-4010", 400),  # a customerNumber that is not a phone number
    Reason.TOO_MANY_ITEMS: ("ZVSMS-4011", 400),  # more than 10 customerNumbers
    Reason.UNKNOWN_SENDER: ("ZVSMS-4012", 400),  # a senderId not the account's, or not able to send SMS
    Reason.OPTED_OUT: ("ZVSMS-4013", 400),  # a customer who opted out of the sender (STOP)
    Reason.EMPTY_MESSAGE: ("ZVSMS-4014", 400),
    Reason.TOO_LONG: ("ZVSMS-4015", 400),  # more parts than the platform's max_parts
    Reason.INVALID_DATE: ("ZVSMS-4018", 400),
    Reason.BAD_SCHEDULE: ("ZVSMS-4018", 400),
    Reason.MEDIA: ("ZVSMS-4020", 400),  # a media file's type, size, or too many of them
    Reason.NO_MMS_CARRIER: ("ZVSMS-4021", 400),
    Reason.KEY_REUSED: ("ZVSMS-4009", 409),
}
"""The reasons that have a code of their own."""

SUBJECTS = {
    (Kind.INVALID, None, "dataCoding"): ("ZVSMS-4016", 400),  # not 0, 1 or 2, or a text that coding cannot carry
    (Kind.INVALID, None, "validityPeriod"): ("ZVSMS-4017", 400),  # not 0 to 14,400 minutes
    (Kind.INVALID, None, "statusCallback"): ("ZVSMS-4019", 400),  # a URL Pigeon may not call
    (Kind.FORBIDDEN, None, "scope"): ("ZVSMS-4003", 403),
    (Kind.NOT_FOUND, None, "media"): ("ZVSMS-4004", 404),
}
"""Codes that differ by what the error is about."""

STATUS_CODES = {401: "ZVSMS-4001", 404: "ZVSMS-4004", 405: "ZVSMS-4005", 413: "ZVSMS-4130", 415: "ZVSMS-4150",
                429: "ZVSMS-4290", 431: "ZVSMS-4310"}
"""The code of a refusal by HTTP itself (401: no token, or one unknown, revoked or expired)."""


def json_response(body: dict, status: int = 200) -> Response:
    """A JSON answer, serialised once by orjson (FastAPI's encoder walks every value first)."""
    return Response(orjson.dumps(body), status, media_type="application/json")


def code_of(refusal: Refusal) -> tuple[str, int]:
    """The code and status Zoho Voice answers ``refusal`` with."""
    if isinstance(refusal, HTTPException):
        return STATUS_CODES.get(refusal.status_code, "ZVSMS-4027"), refusal.status_code
    if (refusal.kind, refusal.reason, refusal.subject) in SUBJECTS:
        return SUBJECTS[(refusal.kind, refusal.reason, refusal.subject)]
    if refusal.reason in REASONS:
        return REASONS[refusal.reason]
    return KINDS[refusal.kind]


def answer(request: Request, refusal: Refusal) -> Response:
    """``{status: ERROR, code, message}`` for a refusal (``pigeon.api.errors.Answer``)."""
    code, status = code_of(refusal)
    message = str(refusal.detail) if isinstance(refusal, HTTPException) else refusal.detail
    return JSONResponse({"status": "ERROR", "code": code, "message": message}, status, headers_of(refusal))
