"""Response formats: JSON or XML, chosen by a ``.json``/``.xml`` path suffix or the Accept header.

``FormatSuffix`` strips the suffix from the path before routing (``/sms/send.json`` routes as
``/sms/send``) and remembers it; ``render`` then writes the body in the format asked for.
XML follows JAXB's defaults: the root element is the type's name with a lower-case initial,
a list is its element repeated, and None is an empty element.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

import orjson
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
