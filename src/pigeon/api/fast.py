"""Lean routes: the hottest endpoints served without FastAPI's routing and dependency solving.

Matching a path against every route, solving dependencies and validating through FastAPI cost
more than the work of a single send. A dialect names its hot (method, path) pairs and a lean
handler for each; ``LeanRoutes``, the innermost middleware, calls that handler straight away.
The handler serves the common case and returns None for anything else (an unusual content
type, a body its model refuses...): the request then goes, body and all, through the full
route, which answers exactly as it always does, errors included. The routes stay declared to
FastAPI too, so the OpenAPI document is unchanged.

Exceptions a lean handler raises are answered by the application's own exception handlers.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeon.api.timing import LEAN_ROUTE

LeanHandler = Callable[[Request, bytes], Awaitable[Response | None]]


class LeanRoutes:
    """ASGI middleware: ``routes[(method, path)]`` answers first when it can."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], LeanHandler]):
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get((scope.get("method"), scope.get("path"))) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        request = Request(scope, receive)
        try:
            response = await handler(request, body)
        except Exception as exc:
            answer = _handler_for(scope, exc)
            if answer is None:
                raise
            response = await answer(request, exc) if inspect.iscoroutinefunction(answer) else answer(request, exc)
        if response is None:
            await self.app(scope, _replay(body, receive), send)
            return
        scope[LEAN_ROUTE] = scope["path"]
        await response(scope, receive, send)


async def _read(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: nothing to answer
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body again, then whatever the connection says next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _handler_for(scope: Scope, exc: Exception):  # type: ignore[no-untyped-def]
    """The application's handler for this exception (by its class, then its bases)."""
    handlers = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
