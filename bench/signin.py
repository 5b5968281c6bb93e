"""What signing in costs, in process (no uvicorn, no load generator); prints figures.

    .venv/bin/python bench/signin.py [--backend sqlite|postgresql|both] [--rounds 15] [--requests 1000]

1. check: one token check on an open session (accounts.service.verify_token): a right token, a
   wrong one, an unknown email, a legacy (plain SHA-256) row. The unknown email should cost
   what a known one does (same hashing, same query); the figures show how close they are.
2. http: whole ASGI requests through the real app (every middleware, FastAPI, the route),
   signed in from the credential cache, the hot path that must not touch the throttle table:
   GET /sms/send (the example body: no database) and POST /sms/send (prepared and answered,
   the accept batcher stubbed out: nothing stored); and refused sign-ins (401, the failure
   counted in the database), for a known and an unknown email.

Each figure is the best and the median of the rounds' per-call means, in microseconds; the
cases alternate round by round, so that a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from micro import Fresh  # noqa: E402


def figure(rounds: list[float]) -> str:
    return f"best {min(rounds):8.1f} us, median {statistics.median(rounds):8.1f} us"


def bench_check(db, rounds: int, calls: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from pigeon.accounts import service as accounts
    from pigeon.accounts.models import User

    email, legacy = f"known-{uuid.uuid4().hex[:6]}@example.com", f"legacy-{uuid.uuid4().hex[:6]}@example.com"
    with db.write() as s:
        token = accounts.create_account(s, email).token
        legacy_token = accounts.create_account(s, legacy).token
        s.execute(update(User).where(User.email == legacy)
                  .values(token_hash=hashlib.sha256(legacy_token.encode()).hexdigest()))
    cases = {"right token": (email, token), "wrong token": (email, "x" * 43),
             "unknown email": ("nobody@example.com", token), "legacy row, right token": (legacy, legacy_token)}
    out: dict[str, list[float]] = {case: [] for case in cases}
    with db.read() as session:
        for _ in range(rounds):
            for case, (who, what) in cases.items():  # interleaved, so drift hits every case alike
                t = time.perf_counter()
                for _ in range(calls):
                    accounts.verify_token(session, who, what)
                out[case].append((time.perf_counter() - t) / calls * 1e6)
    return out


async def _call(app, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> int:  # type: ignore[no-untyped-def]
    if body:
        headers = [*headers, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": headers,
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080), "state": {},
    }
    sent, status = False, 0

    async def receive():  # type: ignore[no-untyped-def]
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):  # type: ignore[no-untyped-def]
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def bench_http(db, rounds: int, requests: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    from pigeon.accounts.service import create_account
    from pigeon.api.app import create_app
    from pigeon.config import Settings
    from pigeon.runtime import Runtime

    email = f"http-{uuid.uuid4().hex[:6]}@example.com"
    with db.write() as s:
        token = create_account(s, email).token
    unlimited = {"signin": {"email_failures": 10**9, "address_failures": 10**9}}
    settings = Settings(auth_cache_seconds=3600, demo_account=False, **unlimited)  # type: ignore[arg-type]
    rt = Runtime(settings, db=db)

    class StubBatcher:  # the send is prepared and answered, not stored: the HTTP path alone
        async def submit(self, *args: object) -> None:
            return None

    rt.batcher = StubBatcher()  # type: ignore[assignment]
    app = create_app(settings, runtime=rt)
    path = "/app/api/rest/v1/sms/send"
    good = [(b"host", b"x"), (b"email", email.encode()), (b"token", token.encode())]
    send = b'{"recipientNumber": "+27821234567", "message": "Hello from Pigeon"}'
    cases = {  # name: (method, headers, body, status)
        "GET, signed in from the cache": ("GET", good, b"", 200),
        "POST, signed in from the cache": ("POST", good, send, 200),
        "refused: known email": ("GET", [(b"host", b"x"), (b"email", email.encode()), (b"token", b"x" * 43)], b"", 401),
        "refused: unknown email": ("GET", [(b"host", b"x"), (b"email", b"nobody@example.com"), (b"token", b"x" * 43)],
                                   b"", 401),
    }
    out: dict[str, list[float]] = {case: [] for case in cases}

    async def main() -> None:
        for case, (method, headers, body, status) in cases.items():
            assert await _call(app, method, path, headers, body) == status, case
        for _ in range(rounds):
            for case, (method, headers, body, _) in cases.items():
                n = requests if "signed in" in case else max(50, requests // 20)
                t = time.perf_counter()
                for _ in range(n):
                    await _call(app, method, path, headers, body)
                out[case].append((time.perf_counter() - t) / n * 1e6)

    asyncio.run(main())
    rt.executor.shutdown(wait=False)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args()
    for key in [k for k in os.environ if k.startswith("PIGEON_")]:
        del os.environ[key]
    os.chdir(tempfile.gettempdir())  # no ./pigeon.toml
    for kind in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        with Fresh(kind) as (db, _, _):  # bench/micro.py's: a fresh, migrated database
            from pigeon.accounts import service

            if hasattr(service, "verify_token"):  # (so that the http figures can be had of older code too)
                print(f"{kind}: token check on an open session (verify_token), per call")
                checks = bench_check(db, args.rounds, 500)
                for case, rounds in checks.items():
                    print(f"  {case:<32}{figure(rounds)}")
                known, unknown = min(checks["wrong token"]), min(checks["unknown email"])
                print(f"  unknown email vs known email with a wrong token, best of each: "
                      f"{100 * (unknown - known) / known:+.1f}%")
            print(f"{kind}: whole requests through the ASGI app, /sms/send, per request")
            for case, rounds in bench_http(db, args.rounds, args.requests).items():
                print(f"  {case:<32}{figure(rounds)}")
    sys.exit(0)
