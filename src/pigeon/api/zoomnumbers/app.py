"""Zoom's sub-applications: the OAuth token endpoint at ``OAUTH``, and the Number Management API
at ``PREFIX`` (bearer tokens, ``{code, message}`` errors)."""

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
from pigeon.api.zoomnumbers import allocation, campaigns, consent, numbers, oauth, opt_outs, peering, ported, sip
from pigeon.api.zoomnumbers.errors import answer, oauth_answer
from pigeon.config import Settings
from pigeon.runtime import Runtime

PREFIX = "/v2"
OAUTH = "/oauth"


def mounts(rt: Runtime, settings: Settings) -> list[tuple[str, ASGIApp]]:
    """(prefix, sub-application) of each of Zoom's parts."""
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    token = FastAPI(title="Pigeon: Zoom OAuth", version=__version__, telemetry=off, docs_url=None, redoc_url=None)
    token.state.runtime, token.state.throttle = rt, Throttle(rt.db, settings.signin)
    token.include_router(oauth.router, tags=["Zoom OAuth"])
    token.add_middleware(limits.Limits, body_bytes=settings.limits.body_bytes,
                         header_bytes=settings.limits.header_bytes, on_error=_refusal)
    errors.install(token, oauth_answer)
    api = FastAPI(title="Pigeon: Zoom Number Management API v2", version=__version__, telemetry=off,
                  docs_url=None, redoc_url=None)
    api.state.runtime = rt
    api.include_router(numbers.router, tags=["Zoom Number Management"])
    api.include_router(consent.router, tags=["Zoom Number Management"])
    for part in (allocation, peering, sip, ported, campaigns):
        api.include_router(part.router, tags=["Zoom Number Management"])
    api.include_router(opt_outs.router)
    api.add_middleware(limits.Limits, body_bytes=settings.limits.body_bytes,
                       header_bytes=settings.limits.header_bytes, on_error=_api_refusal)
    errors.install(api, answer)
    limits.HEAD_REFUSALS[PREFIX.encode()] = _head_refusal
    limits.HEAD_REFUSALS[OAUTH.encode()] = _oauth_head_refusal
    return [(OAUTH, token), (PREFIX, api)]


def _head_refusal(path: bytes, detail: str) -> tuple[bytes, bytes]:
    """A 431 written before the headers are known, as Zoom writes errors."""
    return b"application/json", orjson.dumps({"code": 300, "message": detail})


def _oauth_head_refusal(path: bytes, detail: str) -> tuple[bytes, bytes]:
    return b"application/json", orjson.dumps({"reason": detail, "error": "invalid_request"})


def _refusal(scope: Scope, status: int, detail: str) -> Response:
    return oauth_answer(Request(scope), HTTPException(status, detail))


def _api_refusal(scope: Scope, status: int, detail: str) -> Response:
    return answer(Request(scope), HTTPException(status, detail))
