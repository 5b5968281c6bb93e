"""Every HTTP request counted and timed, by route template, for ``/metrics``.

The outermost middleware: it sees each answer's status and how long it took. The route is the
template the request matched (``/app/api/rest/v1/messages/{message_id}``), never the raw
path, so the labels stay few: a dialect's unmatched paths count under its prefix, the rest
under ``unmatched``. The routes ``api.fast`` serves itself name themselves (``LEAN_ROUTE``).
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeon import metrics

LEAN_ROUTE = "pigeon.route"  # scope key: the path a lean handler served


class RequestMetrics:
    """ASGI middleware counting requests by route, method and status, with their durations."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self._children: dict[tuple[str, str, int], tuple] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._count(_route(scope), scope.get("method", ""), status, time.perf_counter() - started)

    def _count(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (metrics.HTTP_REQUESTS.labels(route, method, str(status)), metrics.HTTP_DURATION.labels(route))
            if len(self._children) < 10_000:  # bounded however odd the methods asked for
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def _route(scope: Scope) -> str:
    lean = scope.get(LEAN_ROUTE)
    if lean:  # the whole path, as the lean routes are keyed
        return lean
    mounted = scope.get("root_path", "")[len(scope.get("app_root_path", "")):]
    matched = getattr(scope.get("route"), "path", None)
    if matched:
        return mounted + matched
    return mounted or "unmatched"
