"""The interactive API documentation, served with its own assets (no CDN): Swagger UI from
``/static/vendor/swagger-ui/`` at ``/docs``, started by a static script (``static/docs/``) so
that the page can be sent with a strict Content-Security-Policy.

Its top bar selects a document: "All" (the server's merged ``/openapi.json``) or one dialect's,
``/openapi/<name>.json``: the paths of that dialect's mounted sub-applications under their
prefixes, as ``/openapi.json`` has them. A mounted FastAPI application of no dialect below, with
paths, gets a document of its own; mounts that are not FastAPI applications, or have no paths
(the console, ``/static``), have none."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount

from pigeon.api import zohovoice, zoomconnect, zoomnumbers

DIALECTS = [  # (document name, title, the mounts' paths)
    ("zoomconnect", "Zoom Connect REST v1", (zoomconnect.PREFIX,)),
    ("zoomnumbers", "Zoom Number Management v2", (zoomnumbers.PREFIX, zoomnumbers.OAUTH)),
    ("zohovoice", "Zoho Voice SMS", (zohovoice.PREFIX, zohovoice.OAUTH)),
]
SWAGGER = "/static/vendor/swagger-ui"
INIT = "/static/docs/swagger-init.js"
LOGO_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"
"""The one inline ``<style>`` of Swagger UI 5.35.0, in its top bar's logo (a new release may
change it: the browser test then fails with the hash Chromium wants)."""
POLICY = (f"default-src 'none'; script-src 'self'; style-src 'self' {LOGO_STYLE}; img-src 'self' data:; "
          "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""Every script is a file of Pigeon's own: no inline script, no eval, nothing from elsewhere."""


@dataclass
class Document:
    """One dialect's OpenAPI document, built from its mounts when first asked for."""

    name: str
    title: str
    mounts: list[tuple[str, FastAPI]] = field(default_factory=list)
    schema: dict | None = None

    def build(self, version: str) -> dict:
        if self.schema is None:
            paths: dict = {}
            components: dict = {}
            openapi = "3.1.0"
            for prefix, app in self.mounts:
                part = app.openapi()
                openapi = part.get("openapi", openapi)
                paths.update({prefix + path: item for path, item in part["paths"].items()})
                for section, entries in part.get("components", {}).items():
                    components.setdefault(section, {}).update(entries)
            self.schema = {"openapi": openapi, "info": {"title": f"Pigeon: {self.title}", "version": version},
                           "paths": paths}
            if components:
                self.schema["components"] = components
        return self.schema


def documents(app: FastAPI) -> dict[str, Document]:
    """The per-dialect documents, by name, in the order of ``DIALECTS`` (then any other
    mounted FastAPI application with paths, named by its mount's path)."""
    found = {name: Document(name, title) for name, title, _ in DIALECTS}
    owner = {path: name for name, _, paths in DIALECTS for path in paths}
    for route in app.routes:
        if not (isinstance(route, Mount) and isinstance(route.app, FastAPI) and route.app.openapi().get("paths")):
            continue
        name = owner.get(route.path) or route.path.strip("/").replace("/", "-")
        found.setdefault(name, Document(name, route.app.title)).mounts.append((route.path, route.app))
    return {name: document for name, document in found.items() if document.mounts}


def install(app: FastAPI) -> None:
    """``/docs`` and ``/openapi/<name>.json`` on the server's app (``/redoc`` is not served)."""
    known: dict[str, Document] = {}

    def listed() -> dict[str, Document]:
        if not known:  # the mounts are all in place by the first request
            known.update(documents(app))
        return known

    @app.get("/openapi/{name}.json", include_in_schema=False)
    async def dialect_document(name: str) -> JSONResponse:
        document = listed().get(name)
        if document is None:
            raise HTTPException(404, "Not Found")
        return JSONResponse(document.build(app.version))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        urls = [{"name": "All", "url": root + (app.openapi_url or "/openapi.json")}]
        urls += [{"name": d.title, "url": f"{root}/openapi/{d.name}.json"} for d in listed().values()]
        return HTMLResponse(_page(root, app.title, urls), headers={"Content-Security-Policy": POLICY})


def _page(root: str, title: str, urls: list[dict[str, str]]) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}: API documentation</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}{SWAGGER}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-urls="{html.escape(json.dumps(urls))}"></div>
<script src="{root}{SWAGGER}/swagger-ui-bundle.js"></script>
<script src="{root}{SWAGGER}/swagger-ui-standalone-preset.js"></script>
<script src="{root}{INIT}"></script>
</body>
</html>
"""
