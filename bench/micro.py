"""Micro-benchmarks behind the profile findings (no HTTP server, no load generator).

    /work/main/.venv/bin/python bench/micro.py [--backend sqlite|postgresql|both]

1. accept: the group-commit write of 32 single-message sends, as AcceptBatcher._write does it
   today (one `accept` per job: UPDATE users + INSERT messages + INSERT queue, 3 statements a
   job), against one `accept` for the same 32 messages (3 statements in all), which is what a
   batcher that merges its jobs per user would do. Same transaction, same rows.
2. http: in-process ASGI calls of POST /sms/send on the real app (batcher stubbed out, auth
   cached), and of GET /health for the framework's floor: the event-loop thread's Python cost
   per request, without uvicorn's HTTP parsing and without storing anything.

Each figure is the best of several rounds, in microseconds.
"""



import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

import psycopg

PG_BASE = "postgresql://postgres@127.0.0.1:5432"


class Fresh:
    """A fresh database with the schema and one user; yields (Database, Principal, token)."""

    def __init__(self, kind: str):
        self.kind = kind

    def __enter__(self):
        from pigeon.accounts.service import Principal, create_account
        from pigeon.db import Database
        from pigeon.migrations import upgrade

        if self.kind == "sqlite":
            self.dir = tempfile.mkdtemp(prefix="pigeon-micro-")
            url = f"sqlite:///{self.dir}/p.db"
        else:
            self.name = f"pigeon_micro_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_BASE + "/postgres", autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{self.name}"')
            url = f"{PG_BASE}/{self.name}"
        self.db = Database(url)
        upgrade(self.db)
        with self.db.write() as s:
            new = create_account(s, "micro@pigeon.local", credits=1e9)
            p = Principal(new.user.id, new.user.account_id, new.user.email, True)
        return self.db, p, new.token

    def __exit__(self, *exc):
        self.db.dispose()
        if self.kind == "sqlite":
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            with psycopg.connect(PG_BASE + "/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def bench_accept(kind: str, jobs: int = 32, rounds: int = 60) -> dict:
    from pigeon.config import Settings
    from pigeon.db import utcnow
    from pigeon.sending.service import Sender, accept

    sender = Sender(Settings(_env_file=None))
    with Fresh(kind) as (db, principal, _):
        def outgoing(n):
            return [sender.prepare(f"+2782{1000000 + i:07d}", f"micro {i}") for i in range(n)]

        def per_job():
            batch = [[m] for m in outgoing(jobs)]
            t = time.perf_counter()
            with db.write() as s:
                now = utcnow()
                for b in batch:
                    accept(s, principal, b, now)
            return time.perf_counter() - t

        def merged():
            batch = outgoing(jobs)
            t = time.perf_counter()
            with db.write() as s:
                accept(s, principal, batch, utcnow())
            return time.perf_counter() - t

        for f in (per_job, merged):  # warm the statement caches
            f()
        a = [per_job() for _ in range(rounds)]
        b = [merged() for _ in range(rounds)]
        # process CPU of the same work, to separate Python cost from I/O waits
        c0 = time.process_time()
        for _ in range(20):
            per_job()
        c1 = time.process_time()
        for _ in range(20):
            merged()
        c2 = time.process_time()
    return {
        "jobs": jobs,
        "per_job_ms_median": round(statistics.median(a) * 1e3, 2),
        "merged_ms_median": round(statistics.median(b) * 1e3, 2),
        "per_job_cpu_us_per_msg": round((c1 - c0) / 20 / jobs * 1e6, 1),
        "merged_cpu_us_per_msg": round((c2 - c1) / 20 / jobs * 1e6, 1),
    }


async def _asgi_call(app, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": headers + [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080),
    }
    done = False
    status = 0

    async def receive():
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def bench_http(requests: int = 3000, rounds: int = 5) -> dict:
    import orjson

    from pigeon.api.app import create_app
    from pigeon.api.zoomconnect import routes
    from pigeon.config import Settings
    from pigeon.runtime import Runtime

    class StubBatcher:
        async def submit(self, principal, batch, remember=None):
            return None

    out = {}
    with Fresh("sqlite") as (db, principal, token):
        settings = Settings(_env_file=None, auth_cache_seconds=3600, demo_account=False)
        rt = Runtime(settings, db=db)
        rt.batcher = StubBatcher()
        app = create_app(settings, runtime=rt)
        headers = [(b"host", b"127.0.0.1:8080"), (b"email", b"micro@pigeon.local"), (b"token", token.encode()),
                   (b"content-type", b"application/json")]
        bodies = [orjson.dumps({"recipientNumber": f"+2782{1000000 + i:07d}", "message": f"micro {i}"})
                  for i in range(requests)]

        async def run(method, path, payloads):
            status = await _asgi_call(app, method, path, headers, payloads[0])
            assert status == 200, (path, status)
            best = float("inf")
            for _ in range(rounds):
                t = time.perf_counter()
                for b in payloads:
                    await _asgi_call(app, method, path, headers, b)
                best = min(best, time.perf_counter() - t)
            return round(best / len(payloads) * 1e6, 1)

        async def main():
            out["send_us"] = await run("POST", routes.PREFIX + "/sms/send", bodies)
            out["health_us"] = await run("GET", "/health", [b""] * requests)
            t = time.perf_counter()
            for b in bodies:
                rt.sender.prepare(orjson.loads(b)["recipientNumber"], "micro")
            out["prepare_us"] = round((time.perf_counter() - t) / len(bodies) * 1e6, 1)

        asyncio.run(main())
        rt.executor.shutdown(wait=False)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = ap.parse_args()
    for key in [k for k in os.environ if k.startswith("PIGEON_")]:
        del os.environ[key]
    os.chdir(tempfile.gettempdir())  # no ./pigeon.toml
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for kind in kinds:
        r = bench_accept(kind)
        print(f"accept, {kind}: 32 single-message jobs in one transaction: {r['per_job_ms_median']} ms "
              f"({r['per_job_cpu_us_per_msg']} us CPU/msg); merged into one accept: {r['merged_ms_median']} ms "
              f"({r['merged_cpu_us_per_msg']} us CPU/msg)")
    h = bench_http()
    print(f"http, in-process ASGI (no uvicorn, batcher stubbed): POST /sms/send {h['send_us']} us/request, "
          f"of which Sender.prepare ~{h['prepare_us']} us; GET /health {h['health_us']} us/request")
    sys.exit(0)
