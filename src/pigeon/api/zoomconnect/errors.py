"""Zoom Connect's error body, RestErrorDTO, and the codes Pigeon answers with.

Codes 2 and 3 are the swagger's; the others are Pigeon's, listed in the README.
"""

from __future__ import annotations

from enum import IntEnum
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import Response

from pigeon.api.formats import render
from pigeon.sending.service import Problem, SendError


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


PROBLEM_CODES = {
    Problem.INVALID_NUMBER: (Code.INVALID_NUMBER, 400),
    Problem.EMPTY_MESSAGE: (Code.EMPTY_MESSAGE, 400),
    Problem.TOO_LONG: (Code.MESSAGE_TOO_LONG, 400),
    Problem.INVALID_DATE: (Code.INVALID_DATE, 400),
    Problem.INSUFFICIENT_CREDITS: (Code.INSUFFICIENT_CREDITS, 402),
}

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


class ZoomError(Exception):
    """An error answered as RestErrorDTO."""

    def __init__(self, status: int, code: Code, developer_message: str, headers: dict[str, str] | None = None):
        super().__init__(developer_message)
        self.status = status
        self.code = code
        self.developer_message = developer_message
        self.headers = headers


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


def refused(exc: SendError) -> ZoomError:
    """A send refused by the sending service, as the API's error."""
    code, status = PROBLEM_CODES[exc.problem]
    return ZoomError(status, code, exc.detail)
