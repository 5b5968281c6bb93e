"""What an OAuth token request brings (RFC 6749), read alike for every dialect's token
endpoint: the client's HTTP Basic credentials, and the parameters of the query string and the
form body; and the refusal of a wrong client past the failed-sign-in throttle's limit."""

from __future__ import annotations

import base64
import binascii
import math
from urllib.parse import parse_qsl

from starlette.requests import Request

from pigeon.errors import Invalid, TooMany


def client_refused(wait: float) -> TooMany:
    """A wrong client past the throttle's limit (``Throttle.failed`` said how long it waits)."""
    seconds = max(1, math.ceil(wait))
    return TooMany(f"Too many failed attempts for this client or from this address; try again in {seconds} s",
                   retry_after=seconds)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(client id, secret) from ``Authorization: Basic``; None without well-formed ones."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        client_id, colon, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (client_id, secret) if colon else None


async def parameters(request: Request) -> dict[str, str]:
    """The query string's parameters, then the form body's over them (UTF-8, else ``Invalid``)."""
    try:
        params = dict(parse_qsl(request.url.query, keep_blank_values=True, errors="strict"))
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body = (await request.body()).decode("utf-8")
            params.update(parse_qsl(body, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise Invalid("The parameters must be UTF-8, percent-encoded") from None
    return params
