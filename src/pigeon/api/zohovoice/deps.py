"""Who a Zoho Voice request acts as: the user of its access token's self-client, reached with
the scopes a route needs.

The token comes as ``Authorization: Zoho-oauthtoken <token>`` (Zoho's way) or ``Bearer <token>``.
A token whose client has no user (a Zoom client's) acts as nobody here: 401, as an unknown one.
What a token grants is cached for ``auth_cache_seconds``, as Zoom Connect's credentials are
(``api.auth``). Sending needs ``ZohoVoice.sms.CREATE``; reading ``ZohoVoice.sms.READ`` (or its other spelling,
``ZohoVoice.sms.GET``); ``ZohoVoice.sms.ALL`` admits both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.exceptions import HTTPException

from pigeon.accounts.models import User
from pigeon.accounts.service import Principal
from pigeon.db import utcnow
from pigeon.errors import Forbidden
from pigeon.oauth import service
from pigeon.oauth.service import Grant
from pigeon.runtime import Runtime

CREATE = ("ZohoVoice.sms.CREATE", "ZohoVoice.sms.ALL")
READ = ("ZohoVoice.sms.READ", "ZohoVoice.sms.GET", "ZohoVoice.sms.ALL")
SCHEMES = ("zoho-oauthtoken", "bearer")
INVALID_TOKEN = "Invalid OAuth token: it is unknown, revoked or expired"


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a request acts as (``principal``: as every service takes it), and its grant."""

    principal: Principal
    grant: Grant
    first_name: str | None = None  # for the log entries' userName
    last_name: str | None = None

    @property
    def email(self) -> str:
        return self.principal.email

    @property
    def account_id(self) -> int:
        return self.principal.account_id

    @property
    def user_id(self) -> int:
        return self.principal.user_id


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def _caller(request: Request) -> tuple[Grant, Principal, str | None, str | None]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in SCHEMES or not token.strip():
        raise HTTPException(401, "Send the access token as 'Authorization: Zoho-oauthtoken <token>'",
                            {"WWW-Authenticate": 'Zoho-oauthtoken realm="zohovoice"'})
    db = runtime(request).db

    def read() -> tuple[Grant, Principal, str | None, str | None] | None:
        with db.read() as session:
            grant = service.authenticate(session, token.strip(), utcnow())
            user = session.get(User, grant.user_id) if grant is not None and grant.user_id is not None else None
            if grant is None or user is None or user.account_id != grant.account_id:
                return None
            return grant, Principal(user.id, user.account_id, user.email, user.is_admin), user.first_name, user.last_name

    found = await request.app.state.auth.bearer(token.strip(), read)
    if found is None or found[0].expires_at <= utcnow():
        raise HTTPException(401, INVALID_TOKEN, {"WWW-Authenticate": 'Zoho-oauthtoken error="invalid_token"'})
    return found


def needs(*scopes: str) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the caller, once its token holds one of ``scopes``."""

    async def caller(request: Request) -> Caller:
        grant, principal, first, last = await _caller(request)
        if not grant.allows(scopes):
            raise Forbidden(f"The access token lacks the scope this needs: {' or '.join(scopes)}", subject="scope")
        return Caller(principal, grant, first, last)

    return caller


creator = needs(*CREATE)
reader = needs(*READ)
