"""What every Zoom Connect route needs: the runtime, and the caller from its credentials."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request

from pigeon.accounts.service import Principal
from pigeon.api.zoomconnect.errors import Code, ZoomError
from pigeon.runtime import Runtime

PREFIX = "/app/api/rest/v1"


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _credentials(request: Request) -> tuple[str | None, str | None]:
    headers = request.headers
    email, token = headers.get("email"), headers.get("token")
    if email and token:
        return email, token
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            email, _, token = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ZoomError(401, Code.UNAUTHORIZED, "Malformed HTTP Basic credentials") from None
        return email, token
    return request.query_params.get("email"), request.query_params.get("token")


async def principal(request: Request) -> Principal:
    """The caller, from the email/token headers, HTTP Basic, or email/token URL parameters
    (declared to OpenAPI in pigeon.api.app as security schemes)."""
    email, token = _credentials(request)
    if not email or not token:
        raise ZoomError(
            401, Code.UNAUTHORIZED,
            "Authentication required: send your email and API token as the headers 'email' and "
            "'token', as HTTP Basic credentials, or as the URL parameters 'email' and 'token'",
        )
    user = await request.app.state.auth.user(email, token)
    if user is None:
        raise ZoomError(401, Code.UNAUTHORIZED, "Invalid email address or API token")
    return user


User = Annotated[Principal, Depends(principal)]
