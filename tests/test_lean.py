"""Lean routes (pigeon.api.fast): the hot sends served without FastAPI's routing answer
exactly as the full routes do, whatever the request; what they do not serve falls through,
body and all."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount

from conftest import API
from pigeon.accounts.service import create_account
from pigeon.api.app import create_app
from pigeon.api.fast import LeanRoutes
from pigeon.api.zoomconnect import routes
from pigeon.config import Settings
from pigeon.db import Database
from pigeon.migrations import upgrade
from pigeon.runtime import Runtime

VARIANTS = [
    ("json", {"content-type": "application/json"}, b'{"recipientNumber": "+27821234567", "message": "hi"}'),
    ("xml answer", {"content-type": "application/json", "accept": "application/xml"},
     b'{"recipientNumber": "+27821234567", "message": "hi"}'),
    ("charset", {"content-type": "application/json; charset=utf-8"}, b'{"recipientNumber": "0821234567", "message": "h"}'),
    ("empty", {"content-type": "application/json"}, b""),
    ("null", {"content-type": "application/json"}, b"null"),
    ("list", {"content-type": "application/json"}, b"[1, 2]"),
    ("broken", {"content-type": "application/json"}, b'{"recipientNumber": '),
    ("number as int", {"content-type": "application/json"}, b'{"recipientNumber": 27821234567, "message": "x"}'),
    ("bad number", {"content-type": "application/json"}, b'{"recipientNumber": "12", "message": "x"}'),
    ("no message", {"content-type": "application/json"}, b'{"recipientNumber": "+27821234567"}'),
    ("unknown field", {"content-type": "application/json"}, b'{"recipientNumber": "+27821234567", "message": "x", "z": 1}'),
    ("bad date", {"content-type": "application/json"}, b'{"recipientNumber": "+27821234567", "message": "x", '
                                                        b'"dateToSend": "tomorrow"}'),
    ("surrogate", {"content-type": "application/json"}, b'{"recipientNumber": "+27821234567", "message": "\\ud800"}'),
    ("xml body", {"content-type": "application/xml"},
     b"<sendSmsRequest><recipientNumber>+27821234567</recipientNumber><message>hi</message></sendSmsRequest>"),
    ("no type", {}, b'{"recipientNumber": "+27821234567", "message": "hi"}'),
    ("jsonl", {"content-type": "application/jsonl"}, b'{"recipientNumber": "+27821234567", "message": "hi"}'),
    ("json-seq", {"content-type": "application/json-seq"}, b'{"recipientNumber": "+27821234567", "message": "h"}'),
    ("+json", {"content-type": "application/vnd.api+json"}, b'{"recipientNumber": "+27821234567", "message": "h"}'),
    ("upper case", {"content-type": "Application/JSON"}, b'{"recipientNumber": "+27821234567", "message": "h"}'),
    ("too costly", {"content-type": "application/json"}, b'{"recipientNumber": "+27821234567", "message": "'
                                                          + b"x" * 1500 + b'"}'),
]
BULK = [
    ("bulk", {"content-type": "application/json"}, orjson.dumps({"sendSmsRequests": [
        {"recipientNumber": "+27821234567", "message": "a"}, {"recipientNumber": "12", "message": "b"},
        {"recipientNumber": "+27821234568"}]})),
    ("bulk empty", {"content-type": "application/json"}, b"{}"),
    ("bulk pace", {"content-type": "application/json"}, orjson.dumps({"sendSmsRequests": [
        {"recipientNumber": "+27821234567", "message": "a"}], "messagesPerMinute": 10})),
    ("bulk bad", {"content-type": "application/json"}, b'{"sendSmsRequests": 3}'),
]
ID = re.compile(rb"[0-9a-f]{24}")


@pytest.fixture
def clients(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A lean app and a full one (the lean table empty) on one database, each with a user."""
    url = f"sqlite:///{tmp_path / 'lean.db'}"
    db = Database(url)
    upgrade(db)
    credentials = []
    for _ in range(2):  # a user each, with as many credits
        with db.write() as session:
            new = create_account(session, f"{uuid.uuid4().hex[:8]}@example.com", credits=12)
        credentials.append({"email": new.user.email, "token": new.token})
    settings = Settings(_env_file=None, database_url=url, demo_account=False, auth_cache_seconds=0)
    lean = create_app(settings, runtime=Runtime(settings, db=Database(url)), deliver=False)
    original = dict(routes.LEAN)
    routes.LEAN.clear()
    try:
        full = create_app(settings, runtime=Runtime(settings, db=Database(url)), deliver=False)
    finally:
        routes.LEAN.update(original)
    dialect = next(route.app for route in lean.routes if isinstance(route, Mount))
    assert any(isinstance(m.kwargs.get("routes"), dict) and m.kwargs["routes"] for m in dialect.user_middleware)
    with TestClient(lean) as a, TestClient(full) as b:
        yield (a, credentials[0]), (b, credentials[1])
    db.dispose()


@pytest.mark.parametrize("path,variants", [("/sms/send", VARIANTS), ("/sms/send-bulk", BULK)])
def test_lean_and_full_routes_answer_alike(clients, path: str, variants) -> None:  # type: ignore[no-untyped-def]
    for name, headers, body in variants:
        answers = []
        for client, credentials in clients:
            r = client.post(API + path, content=body, headers={**credentials, **headers})
            answers.append((r.status_code, r.headers.get("content-type"), ID.sub(b"<id>", r.content)))
        assert answers[0] == answers[1], name


def test_what_a_lean_handler_does_not_serve_falls_through_with_its_body() -> None:
    async def lean(request: Request, body: bytes):  # type: ignore[no-untyped-def]
        if body == b"lean":
            return PlainTextResponse("lean")
        if body == b"boom":
            raise KeyError("boom")
        return None

    app = FastAPI()

    @app.post("/x")
    async def full(request: Request) -> PlainTextResponse:
        return PlainTextResponse(b"full:" + await request.body())

    @app.exception_handler(KeyError)
    async def key_error(request: Request, exc: KeyError) -> JSONResponse:
        return JSONResponse({"missing": str(exc)}, status_code=418)

    app.add_middleware(LeanRoutes, routes={("POST", "/x"): lean})
    with TestClient(app) as client:
        assert client.post("/x", content=b"lean").text == "lean"
        assert client.post("/x", content=b"other").text == "full:other"
        r = client.post("/x", content=b"boom")
        assert (r.status_code, r.json()) == (418, {"missing": "'boom'"})
        assert client.get("/x").status_code == 405  # another method: not lean at all
