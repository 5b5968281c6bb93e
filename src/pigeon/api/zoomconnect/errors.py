"""Zoom Connect's error body, RestErrorDTO, and the one table from the core's kinds of error
(``pigeon.errors``) and HTTP's refusals to its codes and statuses.

Codes 2 and 3 are the swagger's; the others are Pigeon's, listed in the README.
"""

from __future__ import annotations

from enum import IntEnum
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pigeon.api.errors import STATUS, Refusal, headers_of
from pigeon.api.formats import render
from pigeon.errors import Kind, Reason


class Code(IntEnum):
    INVALID_REQUEST = 1
    INVALID_NUMBER = 2
    EMPTY_MESSAGE = 3
    MESSAGE_TOO_LONG = 4
    INSUFFICIENT_CREDITS = 5
    INVALID_DATE = 6
    NOT_FOUND = 7
    UNAUTHORIZED = 8
    UNAVAILABLE = 9
    METHOD_NOT_ALLOWED = 10
    INTERNAL = 11
    DUPLICATE = 12
    FORBIDDEN = 13
    TOO_MANY_REQUESTS = 14


MESSAGES = {
    Code.INVALID_REQUEST: "Invalid request",
    Code.INVALID_NUMBER: "Invalid mobile number",
    Code.EMPTY_MESSAGE: "Message cannot be empty",
    Code.MESSAGE_TOO_LONG: "Message too long",
    Code.INSUFFICIENT_CREDITS: "Insufficient credits",
    Code.INVALID_DATE: "Invalid date",
    Code.NOT_FOUND: "Not found",
    Code.UNAUTHORIZED: "Unauthorized",
    Code.UNAVAILABLE: "Service unavailable",
    Code.METHOD_NOT_ALLOWED: "Method not allowed",
    Code.INTERNAL: "Internal error",
    Code.DUPLICATE: "Already exists",
    Code.FORBIDDEN: "Forbidden",
    Code.TOO_MANY_REQUESTS: "Too many requests",
}


def error_body(status: int, code: Code, developer_message: str) -> dict:
    return {
        "code": int(code),
        "developerMessage": developer_message,
        "message": MESSAGES[code],
        "moreInfoUrl": None,
        "status": HTTPStatus(status).name,
    }


def error_response(
    request: Request, status: int, code: Code, developer_message: str, headers: dict[str, str] | None = None
) -> Response:
    response = render(request, error_body(status, code, developer_message), "restErrorDTO", status)
    if headers:
        response.headers.update(headers)
    return response


KINDS = {
    Kind.INVALID: Code.INVALID_REQUEST,
    Kind.NOT_FOUND: Code.NOT_FOUND,
    Kind.CONFLICT: Code.DUPLICATE,
    Kind.FORBIDDEN: Code.FORBIDDEN,
    Kind.INSUFFICIENT_CREDITS: Code.INSUFFICIENT_CREDITS,
    Kind.UNAVAILABLE: Code.UNAVAILABLE,
    Kind.TOO_MANY: Code.TOO_MANY_REQUESTS,
}
"""The code of each kind of error; its status is the kind's (``pigeon.api.errors.STATUS``)."""

REASONS = {
    Reason.INVALID_NUMBER: (Code.INVALID_NUMBER, 400),
    Reason.EMPTY_MESSAGE: (Code.EMPTY_MESSAGE, 400),
    Reason.TOO_LONG: (Code.MESSAGE_TOO_LONG, 400),
    Reason.INVALID_DATE: (Code.INVALID_DATE, 400),
    Reason.KEY_REUSED: (Code.DUPLICATE, 422),  # the IETF Idempotency-Key draft's status
    Reason.PAGE_TOKEN: (Code.INVALID_REQUEST, 400),  # Zoom Connect pages by number: never raised here
    Reason.UNKNOWN_ITEM: (Code.NOT_FOUND, 400),
    # the Number Management API's reasons, never raised here: an invalid request if they were
    Reason.CAPACITY: (Code.INVALID_REQUEST, 400),
    Reason.TOO_MANY_ITEMS: (Code.INVALID_REQUEST, 400),
    Reason.ITEMS_FAILED: (Code.INVALID_REQUEST, 400),
    Reason.NO_ITEMS: (Code.INVALID_REQUEST, 400),
    Reason.NO_CARRIER: (Code.INVALID_REQUEST, 400),
    Reason.UNKNOWN_SENDER: (KINDS[Kind.FORBIDDEN], 403),  # as any refusal of who may do this
    # Zoho Voice's reasons: a send here stores an opted-out message as FAILED_OPTOUT instead, and
    # takes no media, dataCoding or time zone
    Reason.OPTED_OUT: (KINDS[Kind.FORBIDDEN], 403),
    Reason.MEDIA: (Code.INVALID_REQUEST, 400),
    Reason.NO_MMS_CARRIER: (Code.INVALID_REQUEST, 400),
    Reason.BAD_SCHEDULE: (Code.INVALID_DATE, 400),
}
"""The reasons Zoom Connect tells apart, with their own code (and status)."""

STATUS_CODES = {401: Code.UNAUTHORIZED, 404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED, 429: Code.TOO_MANY_REQUESTS}
"""The code of a refusal by HTTP itself; any other status is an invalid request (code 1)."""


def code_of(refusal: Refusal) -> tuple[Code, int]:
    """The code and status Zoom Connect answers ``refusal`` with."""
    if isinstance(refusal, HTTPException):
        return STATUS_CODES.get(refusal.status_code, Code.INVALID_REQUEST), refusal.status_code
    if refusal.reason in REASONS:
        return REASONS[refusal.reason]
    return KINDS[refusal.kind], STATUS[refusal.kind]


def answer(request: Request, refusal: Refusal) -> Response:
    """RestErrorDTO for a refusal, in the request's format (``pigeon.api.errors.Answer``)."""
    code, status = code_of(refusal)
    detail = str(refusal.detail) if isinstance(refusal, HTTPException) else refusal.detail
    return error_response(request, status, code, detail, headers_of(refusal))
