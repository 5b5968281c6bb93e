"""The FastAPI application: dialects mounted, errors in each dialect's own format, and the
runtime (batcher, delivery engine, carrier) started and stopped with the server.

Every request passes, outermost first: ``FormatSuffix`` (``.json``/``.xml``), ``Limits``
(header and body sizes), ``SignIn`` (Zoom Connect credentials, before any body is read),
``RequestBody`` (XML to JSON; text no encoding can store refused), ``LeanRoutes`` (the hot
sends, without FastAPI's routing when they are the common case), then the routes."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from pigeon import __version__
from pigeon.accounts.service import configure_token_key
from pigeon.accounts.throttle import Throttle
from pigeon.api import zoomconnect
from pigeon.api.auth import AuthCache
from pigeon.api.fast import LeanRoutes
from pigeon.api.formats import FormatSuffix, RequestBody
from pigeon.api.limits import Limits
from pigeon.api.zoomconnect.deps import SignIn
from pigeon.api.zoomconnect.errors import Code, ZoomError, error_response
from pigeon.config import Settings
from pigeon.runtime import Runtime

log = logging.getLogger(__name__)

DESCRIPTION = """Pigeon speaks the Zoom Connect REST API v1 under `/app/api/rest/v1`.
Authenticate with the `email` and `token` headers, HTTP Basic, or `email` and `token` URL
parameters. Append `.json` or `.xml` to any path, or send `Accept: application/xml`."""


def create_app(settings: Settings, *, runtime: Runtime | None = None, deliver: bool = True) -> FastAPI:
    """The application; it owns ``runtime`` (built from settings if not given) while it runs."""
    rt = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        await rt.start(deliver=deliver)
        gc.collect()
        gc.freeze()  # the long-lived objects of start-up leave the collector's full passes
        try:
            yield
        finally:
            await rt.stop()

    # FastAPI's OpenTelemetry hooks looked for providers on every request: Pigeon has none.
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    app = FastAPI(title="Pigeon", version=__version__, description=DESCRIPTION, lifespan=lifespan, telemetry=off)
    app.state.runtime = rt
    app.state.auth = AuthCache(rt.db, settings.auth_cache_seconds)
    app.state.throttle = Throttle(rt.db, settings.signin)
    configure_token_key(settings.token_key.get_secret_value() if settings.token_key else None)
    app.include_router(zoomconnect.router, tags=["Zoom Connect"])
    app.add_middleware(LeanRoutes, routes=dict(zoomconnect.LEAN))  # innermost: the last added runs first
    app.add_middleware(RequestBody, on_error=_invalid_body)
    app.add_middleware(SignIn, auth=app.state.auth, throttle=app.state.throttle)
    limits = settings.limits
    overrides = {zoomconnect.PREFIX + "/sms/send-bulk": limits.bulk_body_bytes, **limits.body_overrides}
    app.add_middleware(Limits, body_bytes=limits.body_bytes, header_bytes=limits.header_bytes,
                       overrides=overrides, on_error=_refusal)
    app.add_middleware(FormatSuffix)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict:
        return {"status": "ok", "version": __version__}

    _errors(app)
    _security_schemes(app)
    return app


def create_app_from_settings() -> FastAPI:
    """The application from the environment's settings: the factory of each worker process
    (which delivers too, unless `pigeon serve` runs a delivery process it wakes)."""
    from pigeon.config import get_settings

    settings = get_settings()
    return create_app(settings, deliver=not settings.wake_socket)


SECURITY_SCHEMES = {
    "email": {"type": "apiKey", "in": "header", "name": "email", "description": "Account email address"},
    "token": {"type": "apiKey", "in": "header", "name": "token", "description": "REST API token"},
    "basic": {"type": "http", "scheme": "basic", "description": "email as user name, API token as password"},
    "emailParam": {"type": "apiKey", "in": "query", "name": "email"},
    "tokenParam": {"type": "apiKey", "in": "query", "name": "token"},
}


def _security_schemes(app: FastAPI) -> None:
    """Declare the credentials the Zoom Connect routes read (in one dependency, for speed)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            requirement = [{"email": [], "token": []}, {"basic": []}, {"emailParam": [], "tokenParam": []}]
            for path, operations in schema["paths"].items():
                if path.startswith(zoomconnect.PREFIX) and "/sms/send-url/" not in path:
                    for operation in operations.values():
                        operation["security"] = requirement
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _invalid_body(request: Request, detail: str) -> Response:
    return error_response(request, 400, Code.INVALID_REQUEST, detail)


STATUS_CODES = {401: Code.UNAUTHORIZED, 404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED, 429: Code.TOO_MANY_REQUESTS}


def _refusal(scope: Scope, status: int, detail: str) -> Response:
    """A request refused before any route saw it, in its dialect's format."""
    request = Request(scope)
    if _dialect(request) == "zoomconnect":
        return error_response(request, status, STATUS_CODES.get(status, Code.INVALID_REQUEST), detail)
    return JSONResponse({"detail": detail}, status_code=status)


def _dialect(request: Request) -> str | None:
    return "zoomconnect" if request.url.path.startswith("/app/") else None


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


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ZoomError)
    async def zoom_error(request: Request, exc: ZoomError) -> Response:
        return error_response(request, exc.status, exc.code, exc.developer_message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        unread = _unread_body(request, exc)
        if unread is not None:
            if _dialect(request) == "zoomconnect":
                return error_response(request, 415, Code.INVALID_REQUEST, unread)
            return JSONResponse({"detail": unread}, status_code=415)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        if _dialect(request) == "zoomconnect":
            return error_response(request, 400, Code.INVALID_REQUEST, f"Invalid request: {problems}")
        return JSONResponse({"detail": problems}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _dialect(request) == "zoomconnect":
            code = STATUS_CODES.get(exc.status_code, Code.INVALID_REQUEST)
            return error_response(request, exc.status_code, code, str(exc.detail), exc.headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:
        """A value the database cannot hold (a NUL character, a number out of range): the
        request's fault, refused whole (the transaction rolled back)."""
        detail = str(exc.orig).splitlines()[0] if exc.orig else "a value the database cannot store"
        if _dialect(request) == "zoomconnect":
            return error_response(request, 400, Code.INVALID_REQUEST, f"Invalid request: {detail}")
        return JSONResponse({"detail": detail}, status_code=400)

    @app.exception_handler(UnicodeEncodeError)
    async def unencodable(request: Request, exc: UnicodeEncodeError) -> Response:
        """Text no encoding can store (a lone surrogate) that got past RequestBody: the
        request's fault, never a 500."""
        bad = ascii(exc.object[exc.start:exc.end])[1:-1] if isinstance(exc.object, str) else "?"
        detail = f"Invalid request: text contains a character that cannot be encoded ({bad}: {exc.reason})"
        if _dialect(request) == "zoomconnect":
            return error_response(request, 400, Code.INVALID_REQUEST, detail)
        return JSONResponse({"detail": detail}, status_code=400)

    @app.exception_handler(OperationalError)
    async def unavailable(request: Request, exc: OperationalError) -> Response:
        log.error("database unavailable: %s", exc)
        if _dialect(request) == "zoomconnect":
            return error_response(request, 503, Code.UNAVAILABLE, "The database is unavailable; try again")
        return JSONResponse({"detail": "database unavailable"}, status_code=503)
