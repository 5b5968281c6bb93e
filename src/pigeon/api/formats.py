"""Formats: JSON or XML, for responses and for request bodies.

``FormatSuffix`` strips a ``.json``/``.xml`` suffix from the path before routing
(``/sms/send.json`` routes as ``/sms/send``) and remembers it; ``render`` then writes the body
in that format, else the one the Accept header prefers, else JSON. XML follows JAXB's
defaults: the root element is the type's name with a lower-case initial, a list is its element
repeated, and None is an empty element. ``RequestBody`` turns an XML request body into the JSON
the routes read (parsed with defusedxml: no entity expansion, no external entities), and
refuses a JSON body holding text no encoding can store (a lone surrogate, ``"\ud800"``),
naming the field, before it reaches a route or the database.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

import orjson
from defusedxml import ElementTree as SafeXml
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

FORMAT_KEY = "pigeon.format"
SUFFIXES = ((".json", "json"), (".xml", "xml"))


class FormatSuffix:
    """ASGI middleware: ``/app/...x.json`` and ``.xml`` route without their suffix."""

    def __init__(self, app: ASGIApp, prefix: str = "/app/"):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            path: str = scope["path"]
            for suffix, fmt in SUFFIXES:
                if path.endswith(suffix):
                    scope = dict(scope)
                    scope["path"] = path[: -len(suffix)]
                    raw = scope.get("raw_path")
                    if raw and raw.endswith(suffix.encode()):
                        scope["raw_path"] = raw[: -len(suffix)]
                    scope[FORMAT_KEY] = fmt
                    break
        await self.app(scope, receive, send)


def wants_xml(request: Request) -> bool:
    fmt = request.scope.get(FORMAT_KEY)
    if fmt is not None:
        return fmt == "xml"
    accept = request.headers.get("accept", "")
    if "xml" not in accept:
        return False
    json_at = accept.find("json")
    return json_at < 0 or accept.find("xml") < json_at


def render(request: Request, data: Any, root: str = "value", status: int = 200) -> Response:
    """``data`` as the response body, in the format the request asked for."""
    if wants_xml(request):
        return Response(to_xml(root, data), status_code=status, media_type="application/xml")
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def to_xml(root: str, data: Any) -> bytes:
    element = Element(root[0].lower() + root[1:])
    _fill(element, data)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + tostring(element, encoding="unicode").encode()


def _fill(element: Element, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list):
                for entry in item:
                    _fill(SubElement(element, key), entry)
            else:
                _fill(SubElement(element, key), item)
    elif isinstance(value, list):
        for entry in value:
            _fill(SubElement(element, "item"), entry)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = str(value)


class RequestBody:
    """ASGI middleware: under ``prefix``, an XML body is handed on as JSON, and a JSON body
    with a lone surrogate is refused (``on_error(request, detail)``) before any route reads it."""

    def __init__(self, app: ASGIApp, on_error, prefix: str = "/app/"):  # type: ignore[no-untyped-def]
        self.app = app
        self.on_error = on_error
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.lower()
                break
        xml = b"xml" in content_type
        if not xml and b"json" not in content_type:
            await self.app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if message.get("more_body"):
            chunks = [body]
            while message.get("more_body"):
                message = await receive()
                chunks.append(message.get("body", b""))
            body = b"".join(chunks)
        if xml:
            try:
                body = orjson.dumps(xml_to_data(body)) if body.strip() else b""
            except Exception as exc:  # malformed or hostile XML
                await self.on_error(Request(scope), f"Invalid XML body: {exc}")(scope, receive, send)
                return
            headers = dict(scope["headers"])
            headers[b"content-type"] = b"application/json"
            headers[b"content-length"] = str(len(body)).encode()
            scope = dict(scope, headers=list(headers.items()))
        else:
            problem = lone_surrogate(body)
            if problem is not None:
                await self.on_error(Request(scope), f"Invalid request: {problem}")(scope, receive, send)
                return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def lone_surrogate(body: bytes) -> str | None:
    """Where a JSON document holds a lone surrogate (text no encoding can store), as
    ``path: reason``; None when it holds none, or is not JSON (its parser will say so)."""
    if _SURROGATE_ESCAPE.search(body) is None:  # the only way to write one in JSON
        return None
    try:
        document = json.loads(body)
    except Exception:  # not JSON, or nested too deep: the route's own parsing refuses it
        return None
    todo: list[tuple[str, Any]] = [("", document)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, str):
            problem = _unencodable(value)
            if problem is not None:
                return f"{path or 'body'}: {problem}"
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = _unencodable(key)
                if problem is not None:
                    return f"{path + '.' if path else ''}{key!a} (a name): {problem}"
                todo.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            todo.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(value))
    return None


def _unencodable(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"text contains a lone surrogate ({ascii(text[exc.start])[1:-1]}), which no encoding can store; "
                "write the character whole (UTF-8, or a \\uXXXX\\uXXXX surrogate pair)")
    return None


def xml_to_data(body: bytes) -> Any:
    """An XML document as JSON-like data: the root's children as a dict."""
    return _data(SafeXml.fromstring(body))


def _data(element: Element) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip() or None
    grouped: dict[str, list[Any]] = {}
    for child in children:
        grouped.setdefault(child.tag, []).append(_data(child))
    return {tag: values[0] if len(values) == 1 else values for tag, values in grouped.items()}
