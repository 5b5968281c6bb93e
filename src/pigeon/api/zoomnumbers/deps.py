"""What every Number Management route needs: the bearer token's grant, and the account a path
names, reached with the scopes the route lists.

``/accounts/me/...`` and ``/accounts/{own id}/...`` are the token's own account: a scope in its
``:master`` form or without it admits the route. Another account is reached only by a
``:master`` scope over accounts under the token's (resellers: the next step; until then no
token reaches another account: 403, code 200).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from pigeon.db import utcnow
from pigeon.errors import Forbidden
from pigeon.oauth import service
from pigeon.oauth.service import Grant
from pigeon.runtime import Runtime

INVALID_TOKEN = "Invalid access token."


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def grant_of(request: Request) -> Grant:
    """The grant of the request's bearer token; 401 (code 124) without a valid one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, INVALID_TOKEN, {"WWW-Authenticate": 'Bearer realm="zoom"'})
    db = runtime(request).db

    def read() -> Grant | None:
        with db.read() as session:
            return service.authenticate(session, token.strip(), utcnow())

    grant = await run_in_threadpool(read)
    if grant is None:
        raise HTTPException(401, INVALID_TOKEN, {"WWW-Authenticate": 'Bearer realm="zoom", error="invalid_token"'})
    return grant


def scoped(*needed: str) -> Callable[[Request, str], Awaitable[int]]:
    """A dependency: the id of the account the path names, once the token may act on it with
    one of ``needed`` (the route's classic and granular scopes)."""

    async def account(request: Request, accountId: str) -> int:
        grant = await grant_of(request)
        if accountId not in ("me", str(grant.account_id)):
            raise Forbidden(f"You do not have permission to reach account {accountId}")
        if not grant.allows(needed, own_account=True):
            raise Forbidden(f"Invalid access token, does not contain scopes:[{', '.join(needed)}]")
        return grant.account_id

    return account
