"""What every Number Management route needs: the bearer token's grant, and the account a path
names, reached with the scopes the route lists.

``/accounts/me/...`` and ``/accounts/{own id}/...`` are the token's own account: a scope in its
``:master`` form or without it admits the route. Another account is reached only with the
``:master`` form, and only from above it (``accounts.policy.reaches_account``): the operator's
master account reaches every account, a reseller its customers; otherwise 403, code 200. Each route counts against the account's rate
for its label (``settings.rate_limits``), in the database: the limit holds across processes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from pigeon.accounts import policy
from pigeon.db import utcnow
from pigeon.errors import Forbidden
from pigeon.oauth import service
from pigeon.oauth.service import Grant
from pigeon.ratelimits import service as ratelimits
from pigeon.runtime import Runtime

INVALID_TOKEN = "Invalid access token."
PURGE_EVERY = 60.0
_purged = 0.0


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


def scoped(*needed: str, label: str = "LIGHT") -> Callable[[Request, str], Awaitable[int]]:
    """A dependency: the id of the account the path names, once the token may act on it with
    one of ``needed`` (the route's classic and granular scopes), and once the request is within
    the account's rate for the route's ``label`` (LIGHT, MEDIUM, HEAVY). The token's grant is
    left in ``request.state.grant``."""

    async def account(request: Request, accountId: str) -> int:
        grant = await grant_of(request)
        request.state.grant = grant  # for routes that ask more of it (its carrier, its account's rank)
        own = accountId in ("me", str(grant.account_id))
        if not grant.allows(needed, own_account=own):
            raise Forbidden(f"Invalid access token, does not contain scopes:[{', '.join(needed)}]")
        target = grant.account_id if own else await _reached(request, grant.account_id, accountId)
        await _within_rate(request, target, label)
        return target

    return account


async def _reached(request: Request, actor: int, named: str) -> int:
    """Another account, if the token's account is above it (the operator's master account, or
    a reseller over its customers); else 403, code 200, whether or not it exists."""
    db = runtime(request).db

    def read() -> bool:
        with db.read() as session:
            return named.isascii() and named.isdigit() and len(named) <= 10 and policy.reaches_account(
                session, actor, int(named))

    if not await run_in_threadpool(read):
        raise Forbidden(f"You do not have permission to reach account {named}")
    return int(named)


async def _within_rate(request: Request, account: int, label: str) -> None:
    """Count the request against the account's per-second rate for ``label``; 429 with
    Retry-After and Zoom's X-RateLimit-* headers past it."""
    rt = runtime(request)
    limit = getattr(rt.settings.rate_limits, label.lower())

    def count() -> ratelimits.Decision:
        global _purged
        now = utcnow()
        with rt.db.write() as session:
            if time.monotonic() - _purged > PURGE_EVERY:  # old windows, now and then, by index
                _purged = time.monotonic()
                ratelimits.purge(session, now - dt.timedelta(minutes=1))
            window = dt.timedelta(seconds=rt.settings.rate_limits.window)
            return ratelimits.hit(session, f"zoom:{account}:{label}", limit, window, now)

    decision = await run_in_threadpool(count)
    if not decision.allowed:
        raise HTTPException(429, "You have reached the maximum per-second rate limit for this API. Try again later.", {
            "Retry-After": str(decision.retry_after), "X-RateLimit-Category": label.title(),
            "X-RateLimit-Type": "QPS", "X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": "0"})
