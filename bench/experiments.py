"""Start `pigeon serve` with candidate fixes monkeypatched in, to measure what they would buy.

    python bench/experiments.py --patches merge,auth serve --port 8080
    python bench/run.py --experiment merge,auth ...      (run.py starts the server this way)

Nothing here changes the shipped code: each patch is a prototype of a fix proposed in the
benchmark report, applied at start-up in this process only. (merge and gcfreeze have since
been taken into src/ by the batcher and app: with that code they change nothing.)

  merge     AcceptBatcher._write merges the jobs of one commit per user: one UPDATE users and two
            multi-row INSERTs for the whole group instead of three statements per API call
            (falls back to job-by-job when the user's credits do not cover the whole group).
  auth      the `principal` dependency overridden by one that reads the email/token headers
            itself, instead of going through five APIKeyHeader/HTTPBasic/APIKeyQuery
            sub-dependencies that exist only for the OpenAPI document.
  gcfreeze  gc.freeze() once the server has started, so that the collector's full passes no
            longer walk the ~90,000 objects of the imported libraries.
  gcthreshold  gc.set_threshold(20_000, 20, 20): fewer young-generation collections.
  switch    sys.setswitchinterval(0.001): the event-loop thread waits at most 1 ms (not 5 ms)
            for the GIL when a database thread holds it.
  pgmulti   PostgreSQL: executemany INSERTs rendered as multi-row INSERT ... VALUES pages
            (SQLAlchemy's insertmanyvalues, which its psycopg dialect uses only with RETURNING),
            instead of psycopg's pipeline of one INSERT per row.
  rawinsert accept() through the database driver's bulk paths instead of SQLAlchemy's
            per-row parameter processing: sqlite3 executemany of tuples; PostgreSQL COPY.
  setupdate PostgreSQL: the delivery engine's per-message UPDATEs (SENT, receipts) as one
            UPDATE ... FROM unnest(arrays) per batch instead of one UPDATE per row.
  nowrite   DIAGNOSTIC, not a fix: sends are validated and answered but never stored, to
            measure the HTTP path alone under the same load.
  nodeliver DIAGNOSTIC, not a fix: no delivery engine nor carrier; messages are accepted and
            stay SCHEDULED, to measure acceptance without the delivery work beside it.
  gclog     DIAGNOSTIC: logs the duration of every generation-1 and -2 collection to the server log.

--workers N (N > 1) runs N server processes on the one port (uvicorn's workers), each with
its own batcher, delivery engine and simulated carrier, instead of `pigeon serve`'s single
process: what using more than one core would buy. The patches apply in every worker.
"""

import argparse
import gc
import os
import sys
from pathlib import Path

from fastapi import Request


def patch_merge() -> None:
    from pigeon.db import utcnow
    from pigeon.sending import batcher, service
    from pigeon.sending.service import SendError

    def _write(self, jobs):  # type: ignore[no-untyped-def]
        accept = service.accept  # looked up at call time: another patch may replace it
        now = utcnow()
        by_user: dict[int, list] = {}
        for job in jobs:
            by_user.setdefault(job.principal.user_id, []).append(job)
        with self.db.write() as session:
            for user_jobs in by_user.values():
                if len(user_jobs) > 1:
                    merged = [m for job in user_jobs for m in job.batch]
                    try:
                        accept(session, user_jobs[0].principal, merged, now)
                        continue
                    except SendError:  # raised before anything was written: go job by job
                        pass
                for job in user_jobs:
                    try:
                        accept(session, job.principal, job.batch, now)
                    except SendError as exc:
                        job.error = exc

    batcher.AcceptBatcher._write = _write


async def lean_principal(request: Request):  # type: ignore[no-untyped-def]
    from pigeon.api.zoomconnect import routes
    from pigeon.api.zoomconnect.errors import Code, ZoomError

    headers = request.headers
    email, token = headers.get("email"), headers.get("token")
    if not email or not token:
        email, token = routes._credentials(request)
    if not email or not token:
        raise ZoomError(401, Code.UNAUTHORIZED, "Authentication required")
    user = await request.app.state.auth.user(email, token)
    if user is None:
        raise ZoomError(401, Code.UNAUTHORIZED, "Invalid email address or API token")
    return user


def patch_auth() -> None:
    from pigeon.api import app as app_module
    from pigeon.api.zoomconnect import routes

    original = app_module.create_app

    def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
        app = original(*args, **kwargs)
        app.dependency_overrides[routes.principal] = lean_principal
        return app

    app_module.create_app = create_app


def patch_gcfreeze() -> None:
    from pigeon.runtime import Runtime

    original = Runtime.start

    async def start(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        await original(self, *args, **kwargs)
        gc.collect()
        gc.freeze()

    Runtime.start = start


def patch_gcthreshold() -> None:
    gc.set_threshold(20_000, 20, 20)


def patch_switch() -> None:
    sys.setswitchinterval(0.001)


def patch_nowrite() -> None:
    from pigeon.sending import batcher

    async def submit(self, principal, batch):  # type: ignore[no-untyped-def]
        return None

    batcher.AcceptBatcher.submit = submit


def patch_nodeliver() -> None:
    from pigeon.runtime import Runtime

    original = Runtime.start

    async def start(self, *, deliver: bool = True, accept: bool = True) -> None:
        await original(self, deliver=False, accept=accept)

    Runtime.start = start


def patch_gclog() -> None:
    import time

    started: list[float] = []

    def callback(phase: str, info: dict) -> None:
        if info["generation"] < 1:
            return
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            print(f"gc gen{info['generation']}: {(time.perf_counter() - started[0]) * 1e3:.1f} ms, "
                  f"{len(gc.get_objects(info['generation']))} objects left in it", file=sys.stderr, flush=True)

    gc.callbacks.append(callback)


def patch_pgmulti() -> None:
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    PGDialect_psycopg.use_insertmanyvalues_wo_returning = True


_MESSAGE_COLUMNS = ("id", "account_id", "user_id", "direction", "status", "from_number", "to_number", "body",
                    "encoding", "parts", "credit_cost", "campaign", "data_field", "created_at", "scheduled_for",
                    "read", "deleted")


def patch_rawinsert() -> None:
    """accept() with the driver's own bulk paths: sqlite3 executemany of plain tuples (datetimes
    pre-formatted the way SQLAlchemy stores them), PostgreSQL COPY FROM STDIN. Same rows, same
    transaction, same all-or-nothing charge."""
    from pigeon.accounts.service import from_milli
    from pigeon.sending import batcher, service
    from pigeon.sending.service import Problem, SendError

    def accept(session, principal, batch, now):  # type: ignore[no-untyped-def]
        total = sum(m.cost for m in batch)
        raw = session.connection().connection.driver_connection
        sqlite = session.get_bind().dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        cur = raw.cursor()
        try:
            if total:
                cur.execute(f"UPDATE users SET credit_balance = credit_balance - {mark} "
                            f"WHERE id = {mark} AND credit_balance >= {mark}", (total, principal.user_id, total))
                if cur.rowcount != 1:
                    raise SendError(Problem.INSUFFICIENT_CREDITS,
                                    f"Insufficient credits: this send costs {from_milli(total):g} credits")
            if sqlite:
                stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
                fmt = lambda d: None if d is None else d.strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731
            else:
                stamp, fmt = now, (lambda d: d)
            acc, uid = principal.account_id, principal.user_id
            messages = [(m.id, acc, uid, "OUTBOUND", "SCHEDULED", m.sender, m.to, m.body, m.encoding, m.parts,
                         m.cost, m.campaign, m.data_field, stamp, fmt(m.send_at), False, False) for m in batch]
            queue = [(m.id, stamp if m.send_at is None or m.send_at <= now else fmt(m.send_at), 0) for m in batch]
            columns = ", ".join(_MESSAGE_COLUMNS)
            if sqlite:
                cur.executemany(f"INSERT INTO messages ({columns}) VALUES ({', '.join('?' * len(_MESSAGE_COLUMNS))})",
                                messages)
                cur.executemany("INSERT INTO outbound_queue (message_id, available_at, attempts) VALUES (?, ?, ?)",
                                queue)
            else:
                with cur.copy(f"COPY messages ({columns}) FROM STDIN") as copy:
                    for row in messages:
                        copy.write_row(row)
                with cur.copy("COPY outbound_queue (message_id, available_at, attempts) FROM STDIN") as copy:
                    for row in queue:
                        copy.write_row(row)
        finally:
            cur.close()

    service.accept = accept
    batcher.accept = accept


def patch_setupdate() -> None:
    """PostgreSQL: the delivery engine's per-message UPDATEs (marking messages SENT, applying
    receipts) as one UPDATE ... FROM unnest(arrays) per batch, instead of psycopg's pipeline of
    one UPDATE per row. SQLite keeps the original code."""
    from sqlalchemy import text

    from pigeon.carriers.base import Outcome
    from pigeon.delivery import queue, receipts
    from pigeon.messages.models import Status

    original_record, original_apply = queue.record, receipts._apply

    def record(session, now, carrier, results, **kw):  # type: ignore[no-untyped-def]
        if session.get_bind().dialect.name != "postgresql":
            return original_record(session, now, carrier, results, **kw)
        sent = [(c, r) for c, r in results if r.outcome is Outcome.ACCEPTED]
        rest = [(c, r) for c, r in results if r.outcome is not Outcome.ACCEPTED]
        if sent:
            ids = [c.submission.message_id for c, _ in sent]
            session.execute(
                text("UPDATE messages SET status = :st, sent_at = :now, carrier = :carrier, carrier_ref = v.ref "
                     "FROM unnest(CAST(:ids AS text[]), CAST(:refs AS text[])) AS v(id, ref) "
                     "WHERE messages.id = v.id"),
                {"st": Status.SENT.value, "now": now, "carrier": carrier, "ids": ids,
                 "refs": [r.carrier_ref for _, r in sent]})
            session.execute(text("DELETE FROM outbound_queue WHERE message_id = ANY(CAST(:ids AS text[]))"),
                            {"ids": ids})
        if rest:
            original_record(session, now, carrier, rest, **kw)

    def _apply(session, carrier, items, now):  # type: ignore[no-untyped-def]
        if session.get_bind().dialect.name != "postgresql":
            return original_apply(session, carrier, items, now)
        ok = [r for r in items if r.status is not Status.FAILED]
        failed = [r for r in items if r.status is Status.FAILED]
        unmatched = original_apply(session, carrier, failed, now) if failed else []
        if not ok:
            return unmatched
        rows = session.execute(
            text("UPDATE messages SET status = v.status, error_code = v.code, final_at = v.at "
                 "FROM unnest(CAST(:refs AS text[]), CAST(:statuses AS text[]), CAST(:codes AS text[]), "
                 "CAST(:ats AS timestamp[])) AS v(ref, status, code, at) "
                 "WHERE messages.carrier = :carrier AND messages.carrier_ref = v.ref AND messages.status = :sent "
                 "RETURNING messages.carrier_ref"),
            {"refs": [r.carrier_ref for r in ok], "statuses": [r.status.value for r in ok],
             "codes": [r.error_code for r in ok], "ats": [r.at or now for r in ok],
             "carrier": carrier, "sent": Status.SENT.value}).scalars().all()
        done = set(rows)
        missing = [r for r in ok if r.carrier_ref not in done]
        if missing:  # not SENT yet, or already final: let the original sort out which
            unmatched += original_apply(session, carrier, missing, now)
        return unmatched

    queue.record = record
    receipts._apply = _apply


PATCHES = {
    "setupdate": patch_setupdate,
    "rawinsert": patch_rawinsert,
    "pgmulti": patch_pgmulti,
    "gclog": patch_gclog,
    "nodeliver": patch_nodeliver,
    "nowrite": patch_nowrite,
    "merge": patch_merge,
    "auth": patch_auth,
    "gcfreeze": patch_gcfreeze,
    "gcthreshold": patch_gcthreshold,
    "switch": patch_switch,
}


def apply(patches: str) -> None:
    for name in filter(None, (p.strip() for p in patches.split(","))):
        if name not in PATCHES:
            sys.exit(f"unknown patch {name}; known: {', '.join(PATCHES)}")
        PATCHES[name]()


def make_app():  # type: ignore[no-untyped-def]
    """The app of one worker process (uvicorn --workers imports this by name)."""
    apply(os.environ.get("BENCH_PATCHES", ""))
    from pigeon.api.app import create_app
    from pigeon.cli import _database, _settings
    from pigeon.runtime import Runtime

    settings = _settings()
    db = _database(settings)
    return create_app(settings, runtime=Runtime(settings, db=db))


def serve_workers(rest: list[str], workers: int) -> None:
    import uvicorn

    from pigeon.cli import _database, _settings

    sp = argparse.ArgumentParser()
    sp.add_argument("command", choices=["serve"])
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8080)
    o = sp.parse_args(rest)
    settings = _settings()
    _database(settings).dispose()  # migrate once, before the workers start
    uvicorn.run("experiments:make_app", factory=True, workers=workers, host=o.host, port=o.port,
                http="httptools", access_log=False, log_level=settings.log_level.lower(),
                app_dir=str(Path(__file__).resolve().parent), timeout_graceful_shutdown=5)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patches", default="", help=f"comma-separated: {','.join(PATCHES)}")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="the pigeon command line, e.g. serve --port 8080")
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    os.environ["BENCH_PATCHES"] = a.patches
    if a.workers > 1:
        serve_workers(a.rest, a.workers)
    else:
        apply(a.patches)
        from pigeon.cli import main

        main(args=a.rest, prog_name="pigeon")
