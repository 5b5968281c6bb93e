"""``POST /oauth/v2/token``: Zoho's token endpoint, over ``pigeon.oauth``'s self-clients.

Parameters come in the query string or a form body (``application/x-www-form-urlencoded``;
the body's win), as Zoho's docs and applications send them:

- ``grant_type=authorization_code`` with ``client_id``, ``client_secret`` and ``code`` (a
  self-client's grant code, from ``pigeon oauth self-client``; ``redirect_uri`` is accepted and
  ignored): ``access_token``, ``refresh_token``, ``scope``, ``api_domain``, ``token_type``
  (``Bearer``) and ``expires_in`` (seconds). A code is good once.
- ``grant_type=refresh_token`` with ``client_id``, ``client_secret`` and ``refresh_token``: the
  same without ``refresh_token`` and ``scope``.

The client's id and secret may come as HTTP Basic instead (RFC 6749, 2.3.1). ``api_domain`` is
``zoho.api_domain``, else ``public_url``, else the request's own base URL.

Errors are OAuth 2's (RFC 6749, 5.2), ``{"error", "error_description"}``:

| error | status | when |
|---|---|---|
| ``invalid_request`` | 400 | ``grant_type``, ``code`` or ``refresh_token`` missing; a body that is not UTF-8; another method (405) |
| ``unsupported_grant_type`` | 400 | a grant other than the two above |
| ``invalid_client`` | 401 | no client id or secret, a wrong one, a revoked client |
| ``invalid_code`` | 400 | a code or refresh token unknown, used, expired, revoked, or another client's (Zoho's name) |
| ``too_many_requests`` | 429 | too many failed client checks for this client id or from this address (``Retry-After``) |
| ``temporarily_unavailable`` | 503 | the database is down |

Failed client checks are counted per address and per client id, as failed sign-ins are
(``accounts.throttle``); an unknown code or refresh token is not (they are 256-bit random).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from pigeon.api.errors import STATUS, Refusal, headers_of
from pigeon.api.token_requests import basic_credentials, client_refused, parameters
from pigeon.db import utcnow
from pigeon.errors import Kind
from pigeon.oauth import scopes, service

router = APIRouter()
AUTHORIZATION_CODE, REFRESH_TOKEN = "authorization_code", "refresh_token"
NEEDS = {AUTHORIZATION_CODE: "code", REFRESH_TOKEN: "refresh_token"}
"""The parameter each grant exchanges."""
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


ERRORS = {
    Kind.INVALID: ("invalid_request", 400),
    Kind.TOO_MANY: ("too_many_requests", 429),
    Kind.UNAVAILABLE: ("temporarily_unavailable", 503),
}
SUBJECTS = {service.GRANT_CODE: ("invalid_code", 400), service.REFRESH_TOKEN: ("invalid_code", 400)}
"""Refusals told apart by what they are about: Zoho answers ``invalid_code`` for both."""
HTTP_ERRORS = {401: "invalid_client"}
CHALLENGE = {"WWW-Authenticate": 'Basic realm="oauth"'}  # RFC 6749 5.2: invalid_client's 401


def _error(status: int, error: str, description: str) -> Response:
    headers = {**NO_STORE, **(CHALLENGE if status == 401 else {})}
    return JSONResponse({"error": error, "error_description": description}, status, headers)


def oauth_answer(request: Request, refusal: Refusal) -> Response:
    """OAuth's error body, ``{error, error_description}``, for a refusal (``pigeon.api.errors.Answer``)."""
    if isinstance(refusal, HTTPException):
        status, error = refusal.status_code, HTTP_ERRORS.get(refusal.status_code, "invalid_request")
        description = str(refusal.detail)
    else:
        error, status = ERRORS.get(refusal.kind, ("invalid_request", STATUS[refusal.kind]))
        if refusal.kind is Kind.INVALID and refusal.subject in SUBJECTS:
            error, status = SUBJECTS[refusal.subject]
        description = refusal.detail
    return JSONResponse({"error": error, "error_description": description}, status,
                        {**NO_STORE, **(headers_of(refusal) or {})})




def api_domain(request: Request) -> str:
    """What the answer gives as ``api_domain``: the configured one, else the public URL, else the request's."""
    settings = request.app.state.runtime.settings
    return (settings.zoho.api_domain or settings.public_url or str(request.base_url)).rstrip("/")


@router.post("/token", summary="Zoho's access token: grant_type=authorization_code or refresh_token")
async def token(request: Request) -> Response:
    params = await parameters(request)
    grant_type = params.get("grant_type", "")
    if not grant_type:
        return _error(400, "invalid_request", "grant_type is required (authorization_code or refresh_token), in the "
                                              "query string or a form body (application/x-www-form-urlencoded)")
    if grant_type not in NEEDS:
        return _error(400, "unsupported_grant_type",
                      f"Unsupported grant type {grant_type!r}: use authorization_code or refresh_token")
    exchanged = params.get(NEEDS[grant_type], "").strip()
    if not exchanged:
        return _error(400, "invalid_request", f"{NEEDS[grant_type]} is required")
    client_id, secret = params.get("client_id", "").strip(), params.get("client_secret", "")
    if not client_id and not secret:
        client_id, secret = basic_credentials(request) or ("", "")
    if not client_id or not secret:
        return _error(401, "invalid_client", "client_id and client_secret are required")
    state = request.app.state
    address = request.client.host if request.client else None
    client_key = "oauth:" + client_id

    def grant() -> tuple[service.Issued, str | None] | None:
        with state.runtime.db.write() as session:
            client = service.check_client(session, client_id, secret)
            if client is None:
                return None
            if grant_type == AUTHORIZATION_CODE:
                return service.exchange_code(session, client, exchanged, utcnow())
            return service.refresh(session, client, exchanged, utcnow()), None

    granted = await run_in_threadpool(grant)
    if granted is None:
        wait = await run_in_threadpool(state.throttle.failed, address, client_key)
        if wait > 0:  # past the limit, however many arrived together: the count is the upsert's
            raise client_refused(wait)
        return _error(401, "invalid_client", "Invalid client_id or client_secret")
    issued, refresh_token = granted
    answer: dict[str, object] = {"access_token": issued.token}
    if refresh_token is not None:
        answer |= {"refresh_token": refresh_token, "scope": scopes.written(issued.grant.scopes)}
    answer |= {"api_domain": api_domain(request), "token_type": "Bearer",
               "expires_in": int(service.LIFETIME.total_seconds())}  # just granted
    return JSONResponse(answer, headers=NO_STORE)
