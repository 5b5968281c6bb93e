"""Storage per million messages, and a purge of half a million beside live sends (issue 15).

    .venv/bin/python bench/retention.py [--backend sqlite|postgresql|both] [--messages 1000000]

For each backend: the console benchmark's data set (bench/console.py: 1,000,000 messages over
30 days, both directions, every status, parts of two-part texts counted in ``parts``) seeded
into a fresh database; its size on disk (SQLite: the file after a checkpoint; PostgreSQL: every
table with its indexes and TOAST) per million messages. Then the real ``pigeon serve`` on it, a
client sending one message at a time at ``--rate`` per second, timed for ``--window`` seconds
before the purge and all through it, while ``pigeon purge --older-than 15`` removes the
messages of the older half in batches. Prints messages purged per second, and the sends'
median and p95 before and during the purge.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from console import seed  # noqa: E402
from lists import Serve  # noqa: E402
from run import log  # noqa: E402

TABLES = ("messages", "message_parts", "outbound_queue", "webhook_events", "message_media", "media")


def size_of(kind: str, url: str) -> int:
    """Bytes the messages and what hangs on them take (SQLite: the whole file)."""
    if kind == "sqlite":
        import sqlite3

        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return os.path.getsize(path)
    import psycopg

    with psycopg.connect(url) as conn:
        return sum(conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0] for table in TABLES)


def fresh(kind: str, args: argparse.Namespace) -> str:
    name = f"retention_{args.messages}"
    if kind == "sqlite":
        path = args.dir / f"{name}.db"
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    with psycopg.connect(f"{args.pg_base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "pigeon_{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "pigeon_{name}"')
    return f"{args.pg_base}/pigeon_{name}"


class Sender(threading.Thread):
    """One message at a time at ``rate`` per second; each send's time, with when it was made."""

    def __init__(self, port: int, email: str, token: str, rate: float):
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"email": email, "token": token},
                                 timeout=30)
        self.every = 1.0 / rate
        self.samples: list[tuple[float, float]] = []
        self.failures = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            start = time.monotonic()
            answer = self.http.post("/app/api/rest/v1/sms/send",
                                    json={"recipientNumber": f"+2782{n % 10**6:06d}1", "message": f"live {n}"})
            self.samples.append((start, (time.monotonic() - start) * 1000))
            self.failures += answer.status_code != 200
            n += 1
            self.stopping.wait(max(0.0, self.every - (time.monotonic() - start)))

    def between(self, start: float, end: float) -> list[float]:
        return sorted(ms for at, ms in self.samples if start <= at < end)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))] if values else float("nan")


def run_backend(kind: str, args: argparse.Namespace) -> dict:
    url = fresh(kind, args)
    log(f"{kind}: seeding {args.messages:,} messages into {url}")
    seed(kind, url, args)
    before = size_of(kind, url)
    log(f"  {before / 1e6:.0f} MB for {args.messages:,} messages")
    workdir = Path(tempfile.mkdtemp(prefix=f"pigeon-retention-{kind}-"))
    with Serve(url, args, workdir) as serve:
        out = serve.cli("account", "create", "--email", f"live-{kind}@pigeon.local", "--credits", "1000000")
        sender = Sender(serve.port, f"live-{kind}@pigeon.local", out, args.rate)
        sender.start()
        time.sleep(args.window)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pigeon", "purge", "--older-than", "15", "--batch",
                               str(args.batch)], env=serve.env(), cwd=workdir, capture_output=True, text=True,
                              timeout=3600)
        ended = time.monotonic()
        sender.stopping.set()
        sender.join()
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        purged = int(done.stdout.split()[1])
    baseline, during = sender.between(started - args.window, started), sender.between(started, ended)
    after = size_of(kind, url)
    row = {"kind": kind, "bytes": before, "per_million_mb": before / 1e6 / (args.messages / 1e6), "purged": purged,
           "seconds": ended - started, "rate": purged / (ended - started), "after_mb": after / 1e6,
           "base_median": statistics.median(baseline), "base_p95": pct(baseline, 0.95),
           "during_median": statistics.median(during), "during_p95": pct(during, 0.95), "sends": len(during),
           "failures": sender.failures}
    log(f"  purged {purged:,} in {row['seconds']:.1f} s ({row['rate']:,.0f}/s); sends before "
        f"{row['base_median']:.1f}/{row['base_p95']:.1f} ms, during {row['during_median']:.1f}/{row['during_p95']:.1f} "
        f"ms ({len(during)} sends, {sender.failures} failed)")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--day", type=int, default=50_000, help="(the console data set's busiest day)")
    ap.add_argument("--rate", type=float, default=20.0, help="live sends per second")
    ap.add_argument("--window", type=float, default=10.0, help="seconds of sends timed before the purge")
    ap.add_argument("--batch", type=int, default=1000, help="messages per purge transaction")
    ap.add_argument("--dir", type=Path, default=HERE / "results" / "retention")
    ap.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.src = None
    args.dir.mkdir(parents=True, exist_ok=True)
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    rows = [run_backend(kind, args) for kind in kinds]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"Retention at {commit}: {args.messages:,} messages (the console data set), purge of those older than 15 "
          f"days in batches of {args.batch}, {args.rate:g} sends/s beside it")
    print("| backend | MB per million messages | purged | purge rate | sends before: median / p95 | "
          "during the purge: median / p95 | failed sends |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['per_million_mb']:.0f} | {r['purged']:,} in {r['seconds']:.0f} s | "
              f"{r['rate']:,.0f}/s | {r['base_median']:.1f} / {r['base_p95']:.1f} ms | "
              f"{r['during_median']:.1f} / {r['during_p95']:.1f} ms | {r['failures']} |")


if __name__ == "__main__":
    main()
