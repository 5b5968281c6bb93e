"""The FastAPI application: dialects mounted, errors in each dialect's own format, and the
runtime (batcher, delivery engine, carrier) started and stopped with the server."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError

from pigeon import __version__
from pigeon.api import zoomconnect
from pigeon.api.auth import AuthCache
from pigeon.api.formats import FormatSuffix, XmlBody
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
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(title="Pigeon", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.runtime = rt
    app.state.auth = AuthCache(rt.db, settings.auth_cache_seconds)
    app.include_router(zoomconnect.router, tags=["Zoom Connect"])
    app.add_middleware(XmlBody, on_error=_invalid_xml)
    app.add_middleware(FormatSuffix)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict:
        return {"status": "ok", "version": __version__}

    _errors(app)
    return app


def _invalid_xml(request: Request, detail: str) -> Response:
    return error_response(request, 400, Code.INVALID_REQUEST, detail)


def _dialect(request: Request) -> str | None:
    return "zoomconnect" if request.url.path.startswith("/app/") else None


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ZoomError)
    async def zoom_error(request: Request, exc: ZoomError) -> Response:
        return error_response(request, exc.status, exc.code, exc.developer_message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        if _dialect(request) == "zoomconnect":
            return error_response(request, 400, Code.INVALID_REQUEST, f"Invalid request: {problems}")
        return JSONResponse({"detail": problems}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _dialect(request) == "zoomconnect":
            code = {401: Code.UNAUTHORIZED, 404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED}.get(
                exc.status_code, Code.INVALID_REQUEST
            )
            return error_response(request, exc.status_code, code, str(exc.detail))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def unavailable(request: Request, exc: OperationalError) -> Response:
        log.error("database unavailable: %s", exc)
        if _dialect(request) == "zoomconnect":
            return error_response(request, 503, Code.UNAVAILABLE, "The database is unavailable; try again")
        return JSONResponse({"detail": "database unavailable"}, status_code=503)
