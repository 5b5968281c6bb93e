"""The Zoom Connect sub-application, mounted at ``PREFIX``: its routes, its middleware and its
exception handlers, every refusal answered as RestErrorDTO (``errors.answer``).

Every request passes, outermost first: ``FormatSuffix`` (``.json``/``.xml``), ``Limits``
(header and body sizes), ``SignIn`` (credentials, before any body is read), ``RequestBody`` (XML
to JSON; text no encoding can store refused), ``LeanRoutes`` (the hot sends, without FastAPI's
routing when they are the common case), then the routes.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from pigeon import __version__
from pigeon.accounts.throttle import Throttle
from pigeon.api import errors, limits
from pigeon.api.auth import AuthCache
from pigeon.api.fast import LeanRoutes
from pigeon.api.formats import FormatSuffix, RequestBody, to_xml
from pigeon.api.zoomconnect import contacts, developer, routes, team
from pigeon.api.zoomconnect.deps import PREFIX, SignIn
from pigeon.api.zoomconnect.errors import Code, answer, error_body
from pigeon.config import Settings
from pigeon.errors import Invalid
from pigeon.runtime import Runtime

SECURITY_SCHEMES = {
    "email": {"type": "apiKey", "in": "header", "name": "email", "description": "Account email address"},
    "token": {"type": "apiKey", "in": "header", "name": "token", "description": "REST API token"},
    "basic": {"type": "http", "scheme": "basic", "description": "email as user name, API token as password"},
    "emailParam": {"type": "apiKey", "in": "query", "name": "email"},
    "tokenParam": {"type": "apiKey", "in": "query", "name": "token"},
}


def create(rt: Runtime, settings: Settings) -> FastAPI:
    """The dialect's application over the shared runtime, with its own credential cache and
    failed sign-in throttle."""
    auth, throttle = AuthCache(rt.db, settings.auth_cache_seconds), Throttle(rt.db, settings.signin)
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    app = FastAPI(title="Pigeon: Zoom Connect REST API v1", version=__version__,
                  telemetry=off, docs_url=None, redoc_url=None)
    app.state.runtime, app.state.auth, app.state.throttle = rt, auth, throttle
    for module in (routes, contacts, team, developer):
        app.include_router(module.router, tags=["Zoom Connect"])
    app.add_middleware(LeanRoutes, routes=dict(routes.LEAN))  # innermost: the last added runs first
    app.add_middleware(RequestBody, on_error=_invalid_body, prefix=PREFIX + "/")
    app.add_middleware(SignIn, auth=auth, throttle=throttle)
    overrides = {PREFIX + "/sms/send-bulk": settings.limits.bulk_body_bytes, **settings.limits.body_overrides}
    app.add_middleware(limits.Limits, body_bytes=settings.limits.body_bytes, header_bytes=settings.limits.header_bytes,
                       overrides=overrides, on_error=_refusal)
    app.add_middleware(FormatSuffix, prefix=PREFIX + "/")
    limits.HEAD_REFUSALS[PREFIX.encode()] = _head_refusal
    errors.install(app, answer)
    _security_schemes(app)
    return app


def _invalid_body(request: Request, detail: str) -> Response:
    return answer(request, Invalid(detail))


def _refusal(scope: Scope, status: int, detail: str) -> Response:
    """A request refused before any route saw it (too large)."""
    return answer(Request(scope), HTTPException(status, detail))


def _head_refusal(path: bytes, detail: str) -> tuple[bytes, bytes]:
    """A 431 written before the headers are known: XML for a ``.xml`` path, else JSON."""
    body = error_body(431, Code.INVALID_REQUEST, detail)
    if path.endswith(b".xml"):
        return b"application/xml", to_xml("restErrorDTO", body)
    return b"application/json", orjson.dumps(body)


def _security_schemes(app: FastAPI) -> None:
    """Declare the credentials the routes read (in one middleware, for speed)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            requirement = [{"email": [], "token": []}, {"basic": []}, {"emailParam": [], "tokenParam": []}]
            for path, operations in schema["paths"].items():
                if not path.startswith("/sms/send-url/"):
                    for operation in operations.values():
                        operation["security"] = requirement
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
