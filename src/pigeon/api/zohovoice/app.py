"""Zoho's sub-applications: the token endpoint at ``OAUTH`` (``/oauth/v2/token``), and the
Zoho Voice SMS API at ``PREFIX`` (``/rest/json/v1/sms/...``, ``/rest/json/v2/sms/...``;
``Zoho-oauthtoken`` or bearer tokens; ``{status, code, message}`` errors)."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Scope

from pigeon import __version__
from pigeon.accounts.throttle import Throttle
from pigeon.api import errors, limits
from pigeon.api.auth import AuthCache
from pigeon.api.zohovoice import logs, media, oauth, send
from pigeon.api.zohovoice.errors import STATUS_CODES, answer
from pigeon.config import Settings
from pigeon.runtime import Runtime

PREFIX = "/rest/json"
OAUTH = "/oauth/v2"
FORM_OVERHEAD = 256 * 1024  # a multipart body's boundaries, headers and sms_data, beside its files


def mounts(rt: Runtime, settings: Settings) -> list[tuple[str, ASGIApp]]:
    """(prefix, sub-application) of each of Zoho's parts."""
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    token = FastAPI(title="Pigeon: Zoho OAuth", version=__version__, telemetry=off, docs_url=None, redoc_url=None)
    token.state.runtime, token.state.throttle = rt, Throttle(rt.db, settings.signin)
    token.include_router(oauth.router, tags=["Zoho OAuth"])
    token.add_middleware(limits.Limits, body_bytes=settings.limits.body_bytes,
                         header_bytes=settings.limits.header_bytes, on_error=_oauth_refusal)
    errors.install(token, oauth.oauth_answer)
    api = FastAPI(title="Pigeon: Zoho Voice SMS API", version=__version__, telemetry=off, docs_url=None,
                  redoc_url=None, redirect_slashes=False)  # a stray slash is a ZVSMS 404, not an empty redirect
    api.state.runtime, api.state.auth = rt, AuthCache(rt.db, settings.auth_cache_seconds)
    for part in (send, logs, media):
        api.include_router(part.router, tags=["Zoho Voice SMS"])
    mms_body = settings.mms.max_total_bytes + FORM_OVERHEAD
    api.add_middleware(limits.Limits, body_bytes=settings.limits.body_bytes, header_bytes=settings.limits.header_bytes,
                       on_error=_refusal, overrides={PREFIX + "/v2/sms/send": max(mms_body, settings.limits.body_bytes),
                                                     **settings.limits.body_overrides})
    errors.install(api, answer)
    limits.HEAD_REFUSALS[PREFIX.encode()] = _head_refusal
    limits.HEAD_REFUSALS[OAUTH.encode()] = _oauth_head_refusal
    return [(OAUTH, token), (PREFIX, api)]


def _head_refusal(path: bytes, detail: str) -> tuple[bytes, bytes]:
    """A 431 written before the headers are known, as Zoho Voice writes errors."""
    return b"application/json", orjson.dumps({"status": "ERROR", "code": STATUS_CODES[431], "message": detail})


def _oauth_head_refusal(path: bytes, detail: str) -> tuple[bytes, bytes]:
    return b"application/json", orjson.dumps({"error": "invalid_request", "error_description": detail})


def _refusal(scope: Scope, status: int, detail: str) -> Response:
    return answer(Request(scope), HTTPException(status, detail))


def _oauth_refusal(scope: Scope, status: int, detail: str) -> Response:
    return oauth.oauth_answer(Request(scope), HTTPException(status, detail))
