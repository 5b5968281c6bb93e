"""The server's application: each dialect a sub-application mounted at its prefix, with its
own middleware and exception handlers; ``/health``; one OpenAPI document for them all; and
the runtime (batcher, delivery engine, carrier) started and stopped with the server.

A fourth dialect is a sub-package of ``pigeon.api`` with a ``create`` and a ``PREFIX``,
mounted here. ``Dialects`` hands each dialect its requests without this app's routing. Outside every dialect, refusals are plain ``{"detail": ...}``."""

from __future__ import annotations

import asyncio
import functools
import gc
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from pigeon import __version__, metrics
from pigeon.accounts.service import configure_token_key
from pigeon.api import console, docs, errors, zohovoice, zoomconnect, zoomnumbers
from pigeon.api.dialects import Dialects
from pigeon.api.limits import Limits
from pigeon.api.timing import RequestMetrics
from pigeon.config import Settings
from pigeon.probes import DatabaseGauges, readiness
from pigeon.runtime import Runtime

STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"
"""Every asset a page needs, served by Pigeon itself (no CDN): ``vendor/`` holds the third-party
ones at pinned versions (``scripts/vendor-assets``), ``console/`` the console's own."""


def create_app(settings: Settings, *, runtime: Runtime | None = None, deliver: bool = True,
               delivers: bool | None = None) -> FastAPI:
    """The application; it owns ``runtime`` (built from settings if not given) while it runs.
    ``deliver``: delivery runs in this process; ``delivers``: in this process group (here, or in
    the delivery process beside it; by default as ``deliver``), so ``/ready`` wants a carrier bound."""
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
    app = FastAPI(title="Pigeon", version=__version__, description=DESCRIPTION, lifespan=lifespan, telemetry=off,
                  docs_url=None, redoc_url=None)  # pigeon.api.docs serves them with their own assets
    app.state.runtime = rt
    configure_token_key(settings.token_key.get_secret_value() if settings.token_key else None)
    app.mount(zoomconnect.PREFIX, zoomconnect.create(rt, settings), name="zoomconnect")
    for prefix, part in [*zoomnumbers.mounts(rt, settings), *zohovoice.mounts(rt, settings)]:
        app.mount(prefix, part)
    if settings.console.enabled:
        app.mount(console.PREFIX, console.create(rt, settings), name="console")
    app.mount(STATIC_PREFIX, GZipMiddleware(StaticFiles(directory=STATIC, follow_symlink=False), minimum_size=1024),
              name="static")  # Swagger UI's bundle is 1.7 MB, 0.46 MB gzipped
    docs.install(app)

    _probes(app, rt, delivers=delivers if delivers is not None else deliver)
    limits = settings.limits
    app.add_middleware(Limits, body_bytes=limits.body_bytes, header_bytes=limits.header_bytes, on_error=_refusal)
    app.add_middleware(Dialects, mounts=[route for route in app.routes if isinstance(route, Mount)])
    app.add_middleware(RequestMetrics)  # outermost: every request counted and timed
    errors.install(app, errors.plain)
    _one_document(app)
    return app


DESCRIPTION = """Pigeon, a self-hosted SMS platform. It speaks the Zoom Connect REST API v1 under
`/app/api/rest/v1`: authenticate with the `email` and `token` headers, HTTP Basic, or `email`
and `token` URL parameters; append `.json` or `.xml` to any path, or send `Accept: application/xml`."""


def create_app_from_settings() -> FastAPI:
    """The application from the environment's settings: the factory of each worker process
    (which delivers too, unless `pigeon serve` runs a delivery process it wakes)."""
    from pigeon.config import get_settings

    settings = get_settings()
    return create_app(settings, deliver=settings.deliver and not settings.wake_socket, delivers=settings.deliver)


def _probes(app: FastAPI, rt: Runtime, *, delivers: bool) -> None:
    """``/health``, ``/ready`` and ``/metrics`` (``pigeon.probes``), outside every dialect."""
    gauges = DatabaseGauges(rt.db)

    async def off_loop(fn, *args):  # type: ignore[no-untyped-def]
        """The probes' reads, on the loop's default threads (not the runtime's writers')."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict:
        return {"status": "ok", "version": __version__}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> Response:
        found = await off_loop(functools.partial(readiness, rt.db, delivers=delivers))
        return JSONResponse(found.as_json(), status_code=200 if found.ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_() -> Response:
        return Response(await off_loop(metrics.exposition, [gauges]), media_type=metrics.CONTENT_TYPE)


def _refusal(scope: Scope, status: int, detail: str) -> Response:
    return errors.plain(Request(scope), HTTPException(status, detail))


def _one_document(app: FastAPI) -> None:
    """``/openapi.json`` (and ``/docs``) describe every mounted dialect: each sub-application's
    paths under its prefix, their schemas and security schemes merged."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {})
            for route in app.routes:
                if isinstance(route, Mount) and isinstance(route.app, FastAPI):
                    part = route.app.openapi()
                    schema["paths"].update({route.path + path: item for path, item in part["paths"].items()})
                    for section, entries in part.get("components", {}).items():
                        components.setdefault(section, {}).update(entries)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
