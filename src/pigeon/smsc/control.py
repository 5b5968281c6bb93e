"""The SMSC's HTTP control endpoint: JSON on loopback, served by uvicorn in the SMSC's loop.

- ``POST /mo`` {"from", "to", "text", "coding": gsm7|latin1|ucs2, "split": udh8|udh16|sar|payload,
  "system_id" (optional)} → 202 {"parts": n}; 400 {"error"} if invalid; 409 {"error"} when no
  receiver or transceiver is bound.
- ``POST /mode`` {any of throttle, queue_full_after, response_delay, drop_after,
  receipt_before_response, receipt_delay; null switches one off} → 200 the modes in force.
- ``POST /drop`` → closes every session at once, 200 {"dropped": n}.
- ``GET /stats`` → counters, sessions and modes; ``GET /messages?limit=100`` → the last
  submitted messages, oldest first (addresses, data_coding, esm_class, validity_period, the
  short_message in hex, TLVs, the decoded text, the outcome); ``GET /seconds?system_id=pigeon``
  → [[unix second, submit_sm accepted], ...]: the rate a carrier's limit is measured by.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .engine import NoReceiver

if TYPE_CHECKING:
    from .server import Smsc

__all__ = ["create_app", "ControlServer"]

CODINGS = ("gsm7", "latin1", "ucs2")
SPLITS = ("udh8", "udh16", "sar", "payload")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise _BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _BadRequest("body must be a JSON object")
    return data


class _BadRequest(Exception):
    pass


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        parts.append(f"{key}: {error['msg']}" if key else error["msg"])
    return "; ".join(parts)


def create_app(smsc: Smsc) -> Starlette:
    """The Starlette application controlling ``smsc``."""

    async def mo(request: Request) -> JSONResponse:
        try:
            data = await _json_object(request)
            unknown = set(data) - {"from", "to", "text", "coding", "split", "system_id"}
            if unknown:
                raise _BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
            for key in ("from", "to", "text"):
                if not isinstance(data.get(key), str) or (key != "text" and not data[key]):
                    raise _BadRequest(f"{key}: a non-empty string is required")
            coding = data.get("coding") or "gsm7"
            split = data.get("split") or "udh8"
            if coding not in CODINGS:
                raise _BadRequest(f"coding: must be one of {', '.join(CODINGS)}")
            if split not in SPLITS:
                raise _BadRequest(f"split: must be one of {', '.join(SPLITS)}")
            system_id = data.get("system_id")
            if system_id is not None and not isinstance(system_id, str):
                raise _BadRequest("system_id: must be a string")
            parts = smsc.inject_mo(data["from"], data["to"], data["text"], coding=coding, split=split,
                                   system_id=system_id)
        except _BadRequest as exc:
            return _error(400, str(exc))
        except NoReceiver as exc:
            return _error(409, str(exc))
        except ValueError as exc:  # not encodable, address too long, ...
            return _error(400, str(exc))
        return JSONResponse({"parts": parts}, status_code=202)

    async def mode(request: Request) -> JSONResponse:
        try:
            data = await _json_object(request)
            return JSONResponse(smsc.set_modes(**data))
        except _BadRequest as exc:
            return _error(400, str(exc))
        except ValidationError as exc:
            return _error(400, _validation_message(exc))
        except ValueError as exc:
            return _error(400, str(exc))

    async def get_mode(request: Request) -> JSONResponse:
        return JSONResponse(smsc.modes())

    async def drop(request: Request) -> JSONResponse:
        return JSONResponse({"dropped": smsc.drop()})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(smsc.stats())

    async def messages(request: Request) -> JSONResponse:
        try:
            limit = int(request.query_params.get("limit", "100"))
            if limit < 0:
                raise ValueError
        except ValueError:
            return _error(400, "limit: must be a non-negative integer")
        return JSONResponse(smsc.messages(limit))

    async def seconds(request: Request) -> JSONResponse:
        return JSONResponse(smsc.seconds(request.query_params.get("system_id", "pigeon")))

    return Starlette(
        routes=[
            Route("/seconds", seconds, methods=["GET"]),
            Route("/mo", mo, methods=["POST"]),
            Route("/mode", mode, methods=["POST"]),
            Route("/mode", get_mode, methods=["GET"]),
            Route("/drop", drop, methods=["POST"]),
            Route("/stats", stats, methods=["GET"]),
            Route("/messages", messages, methods=["GET"]),
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the SMSC's owner decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ControlServer:
    """The control endpoint on ``host:port`` (0 = any free port), in the running loop."""

    def __init__(self, smsc: Smsc, host: str, port: int) -> None:
        self.smsc = smsc
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.smsc), lifespan="off", access_log=False, log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]), name="smsc-control")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("control server stopped at start")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 3)
            except Exception:  # noqa: BLE001 - includes TimeoutError
                self._task.cancel()
            self._task = None
