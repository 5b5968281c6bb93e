"""What every Zoom Connect route needs: the runtime, and the caller from its credentials.

``SignIn`` (pure ASGI middleware) signs the caller in before anything reads the request
body: email and token headers, HTTP Basic, or email/token URL parameters; on
``sms/send-url/{token}`` the token in the path. No valid credentials: 401, the body never
read. A sign-in the credential cache knows is answered from memory; any other is checked,
and a wrong one counted by the failed-sign-in throttle: past its limit for the client address
or the email, a wrong one is answered 429 with Retry-After, while a right one still passes.
The caller is left in the scope, where the ``principal`` dependency finds it.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from pigeon.accounts.service import Principal
from pigeon.accounts.throttle import Throttle
from pigeon.api.auth import AuthCache
from pigeon.api.zoomconnect.errors import answer
from pigeon.errors import PigeonError, TooMany
from pigeon.runtime import Runtime

PREFIX = "/app/api/rest/v1"
SEND_URL = PREFIX + "/sms/send-url/"
PRINCIPAL_KEY = "pigeon.principal"


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _credentials(scope: Scope) -> tuple[str | None, str | None]:
    """Email and token from the headers, else HTTP Basic, else the URL parameters."""
    email = token = authorization = None
    for name, value in scope["headers"]:
        if name == b"email" and email is None:
            email = value.decode("latin-1")
        elif name == b"token" and token is None:
            token = value.decode("latin-1")
        elif name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    if email and token:
        return email, token
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            email, _, token = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPException(401, "Malformed HTTP Basic credentials") from None
        return email, token
    params = QueryParams(scope["query_string"])
    return params.get("email"), params.get("token")


def _url_token(path: str) -> str | None:
    """The URL-sending token of a ``sms/send-url/{token}`` path, else None."""
    if path.startswith(SEND_URL):
        token = path[len(SEND_URL):]
        if token and "/" not in token:
            return token
    return None


async def sign_in(scope: Scope, auth: AuthCache, throttle: Throttle) -> Principal:
    """The caller, from the credentials of the request; HTTPException 401, or TooMany, when it may not go on."""
    url_token = _url_token(scope["path"])
    if url_token is not None:
        email = None
        known = auth.cached_url(url_token)
    else:
        email, token = _credentials(scope)
        if not email or not token:
            raise HTTPException(
                401,
                "Authentication required: send your email and API token as the headers 'email' and "
                "'token', as HTTP Basic credentials, or as the URL parameters 'email' and 'token'",
            )
        known = auth.cached(email, token)
    if known is not None:
        return known
    address = scope["client"][0] if scope.get("client") else None
    found = await (auth.url_user(url_token) if url_token is not None else auth.user(email, token))
    if found is None:
        wait = await anyio.to_thread.run_sync(throttle.failed, address, email)
        if wait > 0:  # past the limit, however many arrived together: the count is the upsert's
            seconds = str(max(1, math.ceil(wait)))
            raise TooMany(f"Too many failed sign-ins from this address or for this email; try again in {seconds} s",
                          retry_after=int(seconds))
        detail = "Unknown URL-sending token" if url_token is not None else "Invalid email address or API token"
        raise HTTPException(401, detail)
    return found


class SignIn:
    """ASGI middleware: Zoom Connect requests signed in (or refused) before their body is read."""

    def __init__(self, app: ASGIApp, auth: AuthCache, throttle: Throttle, prefix: str = PREFIX + "/"):
        self.app = app
        self.auth = auth
        self.throttle = throttle
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            try:
                scope[PRINCIPAL_KEY] = await sign_in(scope, self.auth, self.throttle)
            except (HTTPException, PigeonError) as exc:
                await answer(Request(scope), exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def principal(request: Request) -> Principal:
    """The caller SignIn found (declared to OpenAPI in pigeon.api.app as security schemes);
    signed in here only when the app runs without that middleware."""
    found = request.scope.get(PRINCIPAL_KEY)
    if found is None:
        state = request.app.state
        found = await sign_in(request.scope, state.auth, state.throttle)
    return found


CurrentUser = Annotated[Principal, Depends(principal)]
"""The signed-in caller, as a route parameter (the row is ``pigeon.accounts.models.User``)."""
