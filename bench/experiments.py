"""Start `pigeon serve` with candidate fixes monkeypatched in, to measure what they would buy.

The fixes measured here first and since built in (merged charges, one auth dependency,
gc.freeze, driver fast paths for inserts and updates) were removed from this file.

    python bench/experiments.py --patches nowrite serve --port 8080
    python bench/run.py --experiment nodeliver ...      (run.py starts the server this way)

Nothing here changes the shipped code: each patch is a prototype of a fix proposed in the
benchmark report, applied at start-up in this process only.

  gcthreshold  gc.set_threshold(20_000, 20, 20): fewer young-generation collections.
  switch    sys.setswitchinterval(0.001): the event-loop thread waits at most 1 ms (not 5 ms)
            for the GIL when a database thread holds it.
  pgmulti   PostgreSQL: executemany INSERTs rendered as multi-row INSERT ... VALUES pages
            (SQLAlchemy's insertmanyvalues, which its psycopg dialect uses only with RETURNING),
            instead of psycopg's pipeline of one INSERT per row.
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


PATCHES = {
    "pgmulti": patch_pgmulti,
    "gclog": patch_gclog,
    "nodeliver": patch_nodeliver,
    "nowrite": patch_nowrite,
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
