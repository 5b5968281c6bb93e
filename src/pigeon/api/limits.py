"""Input limits: requests too big are refused before they cost memory.

``Limits`` (pure ASGI middleware): a request whose line and headers exceed ``header_bytes``
gets 431; a body over its limit gets 413: at once when its Content-Length says so (nothing of
it is read; the server reads no more than that length anyway), else (chunked) as soon as the
bytes received pass the limit, so at most the limit is ever held. The limit is ``body_bytes``,
or the one of the longest matching path prefix in ``overrides`` (routes that take media).
Refusals are rendered by ``on_error``, in the dialect's format. Each dialect's sub-application
has its own ``Limits``; the server's holds for the paths of no dialect.

``HttpToolsProtocol``: uvicorn's httptools protocol, which buffers a header of any size
(50 MB costs 100 MB), made to stop reading a request head past the header limit: 431, and
the connection closed. Use it with ``uvicorn.run(..., http=HttpToolsProtocol)``.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http import httptools_impl

OnError = Callable[[Scope, int, str], Response]


class BodyTooLarge(HTTPException):
    """Raised by the counting ``receive``; an HTTPException so that FastAPI's body reading
    passes it on, to the app's handler or to ``Limits``."""

    def __init__(self, limit: int):
        super().__init__(413, f"Request body too large: more than {limit} bytes")


def header_too_large(limit: int) -> str:
    return f"Request headers too large: more than {limit} bytes"


class Limits:
    def __init__(self, app: ASGIApp, *, body_bytes: int, header_bytes: int, on_error: OnError,
                 overrides: dict[str, int] | None = None):
        self.app = app
        self.body_bytes = body_bytes
        self.header_bytes = header_bytes
        self.on_error = on_error
        self.overrides = sorted((overrides or {}).items(), key=lambda item: -len(item[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope["method"]) + len(scope.get("raw_path") or b"") + len(scope["query_string"]) + 12
        length = None
        for name, value in scope["headers"]:
            head += len(name) + len(value) + 4
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
        if head > self.header_bytes:
            await self.on_error(scope, 431, header_too_large(self.header_bytes))(scope, receive, send)
            return
        limit = self.body_limit(scope["path"])
        if length is not None:  # the server reads no more than it says
            if length > limit:
                await self.on_error(scope, 413, BodyTooLarge(limit).detail)(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        received, started = 0, False

        async def counted() -> Message:  # chunked: counted as it comes
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            if started:
                raise
            await self.on_error(scope, 413, exc.detail)(scope, receive, send)

    def body_limit(self, path: str) -> int:
        for prefix, limit in self.overrides:
            if path.startswith(prefix):
                return limit
        return self.body_bytes


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    """httptools, fed a request head at most ``header_bytes`` (the settings') at a time."""

    header_bytes: int | None = None

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        if HttpToolsProtocol.header_bytes is None:
            from pigeon.config import get_settings

            HttpToolsProtocol.header_bytes = get_settings().limits.header_bytes
        self.in_head, self.head_seen = True, 0

    def on_headers_complete(self) -> None:
        self.in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_head, self.head_seen = True, 0
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        limit = self.header_bytes or 0
        while data and self.in_head:
            room = limit - self.head_seen
            if room <= 0:
                self._refuse(limit)
                return
            part, data = data[:room], data[room:]
            self.head_seen += len(part)
            super().data_received(part)
            if self.parser is None or self.transport.is_closing():
                return
        if data:
            super().data_received(data)

    def _refuse(self, limit: int) -> None:
        if self.cycle is None or self.cycle.response_complete:  # no response of ours under way
            kind, content = head_refusal(getattr(self, "url", b""), header_too_large(limit))
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: " + kind
                + b"\r\ncontent-length: " + str(len(content)).encode() + b"\r\nconnection: close\r\n\r\n" + content
            )
        self.transport.close()


HeadRefusal = Callable[[bytes, str], tuple[bytes, bytes]]
HEAD_REFUSALS: dict[bytes, HeadRefusal] = {}
"""Each dialect's 431 written before the headers are known: its path prefix to a function of
(path, detail) giving the content type and body. A dialect registers its own when built."""


def head_refusal(url: bytes, detail: str) -> tuple[bytes, bytes]:
    """Content type and body of a 431 sent before the headers are known: the dialect's (by
    the longest prefix of the path in HEAD_REFUSALS), else ``{"detail": ...}``."""
    path = url.split(b"?")[0]
    for prefix in sorted(HEAD_REFUSALS, key=len, reverse=True):
        if path.startswith(prefix):
            return HEAD_REFUSALS[prefix](path, detail)
    return b"application/json", orjson.dumps({"detail": detail})
