"""``POST /oauth/token``: an access token for a client of an account, Zoom's way.

The grant is ``account_credentials`` with ``account_id``, in the query string (as Zoom's docs
write it) or the form body (as ``zoomus`` sends it); the client's id and secret come as HTTP
Basic. The answer is ``access_token``, ``token_type`` (``bearer``), ``expires_in`` (3600),
``scope`` and ``api_url``. Failed client checks are counted per address and per client id, as
failed sign-ins are (``accounts.throttle``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from pigeon.api.token_requests import basic_credentials, client_refused, parameters
from pigeon.db import utcnow
from pigeon.oauth import scopes, service

router = APIRouter()
GRANT = "account_credentials"


def _error(status: int, error: str, reason: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"reason": reason, "error": error}, status, headers)




@router.post("/token", summary="An access token for an OAuth client (grant_type=account_credentials)")
async def token(request: Request) -> Response:
    params = await parameters(request)
    grant_type, account = params.get("grant_type", ""), params.get("account_id", "")
    if not grant_type:
        return _error(400, "invalid_request", f"grant_type is required ({GRANT!r}), in the query string or a "
                                              "form body (application/x-www-form-urlencoded)")
    if grant_type != GRANT:
        return _error(400, "unsupported_grant_type", f"Unsupported grant type {grant_type!r}: use {GRANT!r}")
    if not account.strip():
        return _error(400, "invalid_request", "account_id is required")
    credentials = basic_credentials(request)
    if credentials is None:
        return _error(401, "invalid_client", "Send the client id and secret as HTTP Basic credentials",
                      {"WWW-Authenticate": 'Basic realm="oauth"'})
    state = request.app.state
    address = request.client.host if request.client else None
    client_key = "oauth:" + credentials[0]

    def grant() -> service.Issued | None:
        with state.runtime.db.write() as session:
            client = service.check_client(session, *credentials)
            return None if client is None else service.grant_account(session, client, account, utcnow())

    issued = await run_in_threadpool(grant)
    if issued is None:
        wait = await run_in_threadpool(state.throttle.failed, address, client_key)
        if wait > 0:  # past the limit, however many arrived together: the count is the upsert's
            raise client_refused(wait)
        return _error(401, "invalid_client", "Invalid client_id or client_secret",
                      {"WWW-Authenticate": 'Basic realm="oauth"'})
    return JSONResponse({
        "access_token": issued.token,
        "token_type": "bearer",
        "expires_in": int(service.LIFETIME.total_seconds()),  # just granted
        "scope": scopes.written(issued.grant.scopes),
        "api_url": str(request.base_url).rstrip("/"),
    }, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
