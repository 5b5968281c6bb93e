"""The exception handlers every dialect's sub-application installs, around the dialect's own
``Answer``: the function that writes an error in the dialect's format from one table.

Everything refused reaches the answer as one of two things: a ``PigeonError`` (a kind of the
core, ``pigeon.errors``), or an ``HTTPException`` (refused by HTTP itself: no route, a method
not allowed, no credentials, a body of an unread media type, headers too large). What the
framework and the storage raise is turned into one of those here, once for every dialect:
a body that fails validation, a value the database cannot hold, text no encoding can store
(``Invalid``), a database that is down (``Unavailable``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from pigeon.errors import Invalid, Kind, PigeonError, TooMany, Unavailable

log = logging.getLogger(__name__)

Refusal = PigeonError | HTTPException
Answer = Callable[[Request, Refusal], Response]
"""A dialect's error response for a refusal."""

STATUS = {
    Kind.INVALID: 400,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.FORBIDDEN: 403,
    Kind.INSUFFICIENT_CREDITS: 402,
    Kind.UNAVAILABLE: 503,
    Kind.TOO_MANY: 429,
}
"""The HTTP status of each kind, where a dialect does not say otherwise."""


def headers_of(refusal: Refusal) -> dict[str, str] | None:
    """The headers a refusal's answer carries: Retry-After when too many, an HTTPException's own."""
    if isinstance(refusal, TooMany):
        return {"Retry-After": str(refusal.retry_after)}
    return refusal.headers if isinstance(refusal, HTTPException) else None


def plain(request: Request, refusal: Refusal) -> Response:
    """The answer outside every dialect: ``{"detail": ...}`` with the kind's status."""
    if isinstance(refusal, HTTPException):
        return JSONResponse({"detail": refusal.detail}, refusal.status_code, headers_of(refusal))
    return JSONResponse({"detail": refusal.detail}, STATUS[refusal.kind], headers_of(refusal))


def install(app: FastAPI, answer: Answer) -> None:
    """Answer every refusal in ``app`` with ``answer``; nothing a request causes is a 500."""

    @app.exception_handler(PigeonError)
    async def refused(request: Request, exc: PigeonError) -> Response:
        return answer(request, exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        unread = _unread_body(request, exc)
        if unread is not None:
            return answer(request, HTTPException(415, unread))
        return answer(request, Invalid("Invalid request: " + "; ".join(_problem(e) for e in exc.errors())))

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:
        """A value the database cannot hold (a NUL character, a number out of range): the
        request's fault, refused whole (the transaction rolled back)."""
        detail = str(exc.orig).splitlines()[0] if exc.orig else "a value the database cannot store"
        return answer(request, Invalid(f"Invalid request: {detail}"))

    @app.exception_handler(UnicodeEncodeError)
    async def unencodable(request: Request, exc: UnicodeEncodeError) -> Response:
        """Text no encoding can store (a lone surrogate) that got past RequestBody."""
        bad = ascii(exc.object[exc.start:exc.end])[1:-1] if isinstance(exc.object, str) else "?"
        return answer(request, Invalid(
            f"Invalid request: text contains a character that cannot be encoded ({bad}: {exc.reason})"))

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> Response:
        """The client left before its body arrived: nothing was read, nothing is written, and
        nobody is there to read an answer."""
        log.info("client disconnected before its request body arrived: %s %s", request.method, request.url.path)
        return answer(request, HTTPException(400, "The client disconnected before sending its whole body"))

    @app.exception_handler(OperationalError)
    async def unavailable(request: Request, exc: OperationalError) -> Response:
        log.error("database unavailable: %s", exc)
        return answer(request, Unavailable("The database is unavailable; try again"))


def _problem(error: dict) -> str:
    """One validation error as a person reads it: the field, then what is wrong with it."""
    if error.get("type") == "json_invalid":
        why = (error.get("ctx") or {}).get("error")
        return f"the body is not valid JSON ({why})" if why else "the body is not valid JSON"
    where = ".".join(str(part) for part in error["loc"] if part != "body") or "body"
    return f"{where}: {error['msg']}"


def _unread_body(request: Request, exc: RequestValidationError) -> str | None:
    """What to say when a body route got a body it does not read (a form, text, no
    Content-Type): the media types it takes, not pydantic's complaint about a string."""
    errors = exc.errors()
    if len(errors) != 1 or tuple(errors[0]["loc"]) != ("body",) or not isinstance(errors[0].get("input"), bytes | str):
        return None
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return None
    named = f"Content-Type {kind!r}" if kind else "no Content-Type"
    return f"Unsupported media type: the body came with {named}; send it as application/json or application/xml"
