"""The claim a delivery round makes, alone: `delivery.queue.claim` of 500 due messages on a
queue of 10,000, on SQLite and PostgreSQL, in microseconds of wall time per message claimed
(one process, no carrier, nothing else running). Run it from two checkouts to compare them:

    .venv/bin/python bench/claim.py [--backend sqlite|postgresql|both] [--rounds 5]

Each round loads a fresh queue (one account, its messages accepted as the API does) and claims
it in 20 claims of 500; the figure is the median claim of the best round. The same call the
engine makes, with its pacer where the code has one (no message here is in a campaign).
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from pigeon.accounts.service import Principal, create_account
from pigeon.config import Settings
from pigeon.db import Database, utcnow
from pigeon.delivery import queue
from pigeon.migrations import upgrade
from pigeon.sending.service import Sender, accept

PG_BASE = "postgresql://postgres@127.0.0.1:5432"
MESSAGES, CLAIM = 10_000, 500


def one_round(db: Database) -> float:
    with db.write() as session:
        new = create_account(session, f"{uuid.uuid4().hex[:8]}@example.com", credits=MESSAGES * 2)
        me = Principal(new.user.id, new.user.account_id, new.user.email, True)
    sender = Sender(Settings(_env_file=None, database_url="sqlite://", demo_account=False))
    now = utcnow()
    for start in range(0, MESSAGES, 1000):
        batch = [sender.prepare(f"+2782{start + i:07d}", "claim me") for i in range(1000)]
        with db.write() as session:
            accept(session, me, batch, now)
    extra = {}
    params = inspect.signature(queue.claim).parameters
    if "pacer" in params:
        from pigeon.delivery.pacing import Pacer
        extra["pacer"] = Pacer()
    times = []
    at = now + dt.timedelta(seconds=1)
    for _ in range(MESSAGES // CLAIM):
        began = time.perf_counter()
        with db.write() as session:
            got = queue.claim(session, at, limit=CLAIM, lease=dt.timedelta(seconds=60), skip_locked=not db.is_sqlite,
                              hand_over_first=64, **extra)
        times.append((time.perf_counter() - began) / max(1, len(got)) * 1e6)
        assert len(got) == CLAIM, len(got)
    return statistics.median(times)


def run(kind: str, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                db = Database(f"sqlite:///{Path(tmp) / 'claim.db'}")
                upgrade(db)
                best = min(best, one_round(db))
                db.dispose()
        else:
            name = f"bench_claim_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                db = Database(f"{PG_BASE}/{name}")
                upgrade(db)
                best = min(best, one_round(db))
                db.dispose()
            finally:
                with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="both", choices=("sqlite", "postgresql", "both"))
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    for kind in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        print(f"{kind}: claim {run(kind, args.rounds):.1f} us per message claimed (median claim of 500, best of "
              f"{args.rounds} rounds)", flush=True)


if __name__ == "__main__":
    main()
