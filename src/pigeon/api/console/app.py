"""The console's application, mounted at ``/console``: each screen's routes, the security
headers on every answer, and the state its pages share (database, settings, the sign-in
throttle)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from pigeon.accounts.throttle import Throttle
from pigeon.api.console import (
    auditlog,
    campaigns,
    consent,
    contacts,
    conversations,
    dashboard,
    messages,
    numbers,
    send,
    signin,
    team,
    webhooks,
)
from pigeon.api.console.web import PREFIX, Context, SecurityHeaders, Visitor, page, redirect, render, templates
from pigeon.api.limits import Limits

SCREENS = (dashboard, messages, send, numbers, team, webhooks, consent, conversations, contacts, campaigns, auditlog)
"""The screens in the order of the navigation (the order users ask for them); each has
``ROUTES`` and ``NAV`` (its links: path under /console, label, and who sees the link:
"everyone" when left out, "admin" (administrators and the operator) or "operator")."""
from pigeon.config import Settings
from pigeon.runtime import Runtime


@page
def home(request: Request, visitor: Visitor) -> Response:
    return redirect(request, "/dashboard" if dashboard.ROUTES else "/messages")


async def not_found(request: Request, exc: Exception) -> Response:
    return render(request, "refused.html", None, status=404, detail="There is no such page in the console.", code=404)


UPLOADS = ("/send/csv", "/contacts/import", "/opt-outs/import")
"""The console's CSV uploads: they may be as large as a bulk send (``limits.bulk_body_bytes``)."""


def _too_large(scope: Scope, status: int, detail: str) -> Response:
    return render(Request(scope), "refused.html", None, status=status, detail=detail, code=status)


def create(rt: Runtime, settings: Settings) -> Starlette:
    routes = [Route("/", home, methods=["GET"]), *signin.ROUTES]
    for screen in SCREENS:
        routes.extend(screen.ROUTES)
    templates.env.globals["nav"] = [(*link, "everyone")[:3] for screen in SCREENS for link in screen.NAV]
    limits = settings.limits
    overrides = {PREFIX + path: limits.bulk_body_bytes for path in UPLOADS} | limits.body_overrides
    app = Starlette(routes=routes, exception_handlers={404: not_found}, middleware=[
        Middleware(SecurityHeaders),
        Middleware(Limits, body_bytes=limits.body_bytes, header_bytes=limits.header_bytes, overrides=overrides,
                   on_error=_too_large),
    ])
    app.state.console = Context(rt.db, settings, rt)
    app.state.throttle = Throttle(rt.db, settings.signin)
    return app
