"""Zoom's error bodies: ``{code, message}`` for the API, and OAuth's ``{reason, error}`` for the
token endpoint; the one table from the core's kinds of error to them."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pigeon.api.errors import STATUS, Refusal, headers_of
from pigeon.errors import Kind, Reason

KINDS = {
    Kind.INVALID: 999,  # Zoom's "Invalid field"
    Kind.NOT_FOUND: 100002,  # "Phone number not found": numbers are what this API finds
    Kind.CONFLICT: 409,
    Kind.FORBIDDEN: 200,  # Zoom's "No permission"
    Kind.INSUFFICIENT_CREDITS: 402,
    Kind.UNAVAILABLE: 503,
    Kind.TOO_MANY: 429,
}
"""The ``code`` of each kind; its status is the kind's."""

REASONS = {
    Reason.PAGE_TOKEN: (1003100, 400),  # "The next page token is either invalid or has expired"
    Reason.UNKNOWN_ITEM: (100002, 400),  # "Phone number not found", among the numbers a request lists
    Reason.INVALID_NUMBER: (999, 400),
    Reason.INVALID_DATE: (999, 400),
    Reason.EMPTY_MESSAGE: (999, 400),
    Reason.TOO_LONG: (999, 400),
    Reason.KEY_REUSED: (409, 409),
    Reason.CAPACITY: (1003004, 400),  # "Insufficient campaign capacity."
    Reason.TOO_MANY_ITEMS: (1003, 400),  # "Too many numbers, should less than 200"
    Reason.ITEMS_FAILED: (1000, 400),  # "Some data failed", with [{phoneNumber, reason}]
    Reason.NO_CARRIER: (1001, 400),  # "Carrier not found"
    Reason.NO_ITEMS: (1002, 400),  # "Request data cannot be empty"
}
"""The reasons that have a code of their own."""

SUBJECTS = {
    (Kind.NOT_FOUND, None, "consent policy"): (1002013, 404),  # "The consent does not exist."
    (Kind.INVALID, Reason.UNKNOWN_ITEM, "consent policy"): (999, 400),
    (Kind.NOT_FOUND, None, "SMS campaign"): (404, 404),  # "Invalid campaign ID." (the spec gives no code)
    (Kind.INVALID, None, "product"): (1002006, 400),  # "product cannot be empty"
    (Kind.CONFLICT, None, "allocation"): (200002, 400),  # "Unable to switch products for the number"
    (Kind.NOT_FOUND, None, "sip group"): (100001, 400),  # "Sip Group not found"
    (Kind.INVALID, None, "byoc"): (1004, 400),  # "BYOC Phone Numbers are not enabled for this account"
    (Kind.INVALID, Reason.TOO_MANY_ITEMS, "byoc numbers"): (1003001, 400),  # "Too many numbers, should less than 100"
    (Kind.INVALID, None, "pci pal"): (200005, 400),  # "Current sip group don't support PCIPal"
    (Kind.NOT_FOUND, None, "port order"): (400, 400),  # "Port in order does not exist"
}
"""Codes that differ by what the error is about."""

STATUS_CODES = {401: 124, 404: 404, 405: 405, 415: 300, 413: 300, 429: 429}
"""The ``code`` of a refusal by HTTP itself (124: Zoom's "Invalid access token")."""


def answer(request: Request, refusal: Refusal) -> Response:
    """``{code, message}`` for a refusal (``pigeon.api.errors.Answer``)."""
    if isinstance(refusal, HTTPException):
        status, code, message = refusal.status_code, STATUS_CODES.get(refusal.status_code, 300), str(refusal.detail)
    elif (refusal.kind, refusal.reason, refusal.subject) in SUBJECTS:
        (code, status), message = SUBJECTS[(refusal.kind, refusal.reason, refusal.subject)], refusal.detail
    elif refusal.reason in REASONS:
        (code, status), message = REASONS[refusal.reason], refusal.detail
    else:
        status, code, message = STATUS[refusal.kind], KINDS[refusal.kind], refusal.detail
    return JSONResponse({"code": code, "message": message}, status, headers_of(refusal))


OAUTH_ERRORS = {
    Kind.INVALID: ("invalid_request", 400),
    Kind.TOO_MANY: ("too_many_requests", 429),
    Kind.UNAVAILABLE: ("temporarily_unavailable", 503),
}


def oauth_answer(request: Request, refusal: Refusal) -> Response:
    """OAuth's error body as Zoom writes it, ``{reason, error}`` (RFC 6749's ``error`` names)."""
    if isinstance(refusal, HTTPException):
        status = refusal.status_code
        error = {401: "invalid_client", 404: "not_found", 405: "invalid_request"}.get(status, "invalid_request")
        reason = str(refusal.detail)
    else:
        error, status = OAUTH_ERRORS.get(refusal.kind, ("invalid_request", STATUS[refusal.kind]))
        reason = refusal.detail
    return JSONResponse({"reason": reason, "error": error}, status, headers_of(refusal))
