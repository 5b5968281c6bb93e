"""Formats: JSON or XML, for responses and for request bodies.

``FormatSuffix`` strips a ``.json``/``.xml`` suffix from the path before routing
(``/sms/send.json`` routes as ``/sms/send``) and remembers it; ``render`` then writes the body
in that format, else the one the Accept header prefers, else JSON. XML follows JAXB's
defaults: the root element is the type's name with a lower-case initial, a list is its element
repeated, and None is an empty element. ``XmlBody`` turns an XML request body into the JSON
the routes read (parsed with defusedxml: no entity expansion, no external entities).
"""

from __future__ import annotations

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


class XmlBody:
    """ASGI middleware: under ``prefix``, an ``application/xml`` body is handed on as JSON."""

    def __init__(self, app: ASGIApp, on_error, prefix: str = "/app/"):  # type: ignore[no-untyped-def]
        self.app = app
        self.on_error = on_error
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if b"xml" not in headers.get(b"content-type", b""):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            converted = orjson.dumps(xml_to_data(body)) if body.strip() else b""
        except Exception as exc:  # malformed or hostile XML
            response = self.on_error(Request(scope), f"Invalid XML body: {exc}")
            await response(scope, receive, send)
            return
        headers[b"content-type"] = b"application/json"
        headers[b"content-length"] = str(len(converted)).encode()
        scope = dict(scope, headers=list(headers.items()))
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": converted, "more_body": False}

        await self.app(scope, replay, send)


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
