"""The console benchmark (issue 14): the console's pages at a million messages, over HTTP, signed in.

    .venv/bin/python bench/console.py [--backend sqlite|postgresql|both] [--reuse]
                                      [--messages 1000000] [--requests 20]

For each backend it seeds a fresh database (a SQLite file, or a PostgreSQL database on
127.0.0.1:5432) straight through the driver (bench/lists.py's ``Loader``: executemany or COPY,
the indexes dropped during the load and built again after it): 1,000,000 messages over 30 days
in four accounts, both directions and every status (those of the last minutes still SENT or
waiting in the queue, some scheduled for the coming month); the busy account has 50,000 of them
in the last 24 hours (and 620,000 in all) over five users, one of whom sends 60%; its
300 numbers, a few campaigns, the operator's pool of 2,000 numbers. ``--reuse`` keeps the seeded
databases (under ``--dir``, and as PostgreSQL database ``pigeon_console_<N>``) and uses them
again when their size matches.

Then it starts the real ``pigeon serve`` on loopback, signs in to the console as the busy
account's administrator, as its busiest user and as the operator (the password form, as a
browser does), and times each page: ``--requests`` requests after two of warm-up, one client
with keep-alive; it prints the median and p95 per page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from lists import Loader, Serve  # noqa: E402
from run import log  # noqa: E402

SEED_VERSION = 2  # bump when the seeded data changes: --reuse then seeds again
PASSWORD = "bench console password"
DAY = dt.timedelta(days=1)
OUTBOUND_MIX = {"SENT": 0.01, "FAILED_REFUNDED": 0.05, "FAILED": 0.01, "UNKNOWN": 0.005, "FAILED_OPTOUT": 0.002}
INBOUND_SHARE = 0.10
DELETED_SHARE = 0.01
SCHEDULED_SHARE = 0.002  # of outbound: due in the coming month, each with its queue row
TEXTS = ["Your verification code is {code:06d}. It expires in 10 minutes.",
         "Hi {name}, your appointment is on Friday at 10:00. Reply YES to confirm.",
         "Thanks for your order #{code}. It ships tomorrow.",
         "Reminder: invoice INV-{code:06d} is due on Friday. Pay online at example.com/pay"]
INBOUND_TEXTS = ["Yes", "No", "STOP", "ok thanks", "Please call me", "Who is this?", "Confirmed"]
NAMES = ["Thandi", "Sipho", "Anna", "Pieter", "Lerato", "John", "Aisha"]
MESSAGE_COLUMNS = ("id", "account_id", "user_id", "direction", "status", "from_number", "to_number", "body",
                   "encoding", "parts", "credit_cost", "campaign", "created_at", "scheduled_for", "sent_at",
                   "final_at", "received_at", "read", "deleted", "carrier", "carrier_ref", "error_code")


# -- seeding -------------------------------------------------------------------------------

def _id(rng: random.Random, at: dt.datetime) -> str:
    return int(at.replace(tzinfo=dt.UTC).timestamp()).to_bytes(4, "big").hex() + f"{rng.getrandbits(64):016x}"


def _status(rng: random.Random, age: dt.timedelta) -> str:
    """An outbound message's status, as old as it is: the last minutes' are mostly not final."""
    if age < dt.timedelta(minutes=2):
        return rng.choice(["SENT", "SENT", "DELIVERED"])
    draw, acc = rng.random(), 0.0
    for status, share in OUTBOUND_MIX.items():
        acc += share
        if draw < acc:
            return status
    return "DELIVERED"


def messages_of(rng: random.Random, users: list[tuple[dict, float]], times: list[dt.datetime], now: dt.datetime,
                queue: list[tuple], deep: list) -> list[tuple]:
    """A message row for each of ``times`` (ascending), its user drawn by weight; the queue rows
    of those scheduled are added to ``queue``."""
    people, weights = [u for u, _ in users], [w for _, w in users]
    rows = []
    for at in times:
        user = rng.choices(people, weights)[0]
        mid = _id(rng, at)
        age = now - at
        deleted = rng.random() < DELETED_SHARE
        if rng.random() < INBOUND_SHARE:
            rows.append((mid, user["account_id"], user["id"], "INBOUND", "DELIVERED", f"+2782{rng.randrange(10**7):07d}",
                         user["number"], rng.choice(INBOUND_TEXTS), "GSM7", 1, 0, None, at, None, None, None, at,
                         rng.random() < 0.7, deleted, "simulator", None, None))
            continue
        status = _status(rng, age)
        scheduled_for = None
        if rng.random() < SCHEDULED_SHARE:
            status, scheduled_for = "SCHEDULED", now + dt.timedelta(seconds=rng.randrange(600, 30 * 86400))
            queue.append((mid, scheduled_for, 0, False))
        kind = rng.randrange(len(TEXTS))
        body = TEXTS[kind].format(code=rng.randrange(10**6), name=rng.choice(NAMES))
        parts = 2 if kind == 3 else 1
        sent_at = None if status == "SCHEDULED" or (status == "FAILED_REFUNDED" and rng.random() < 0.5) else \
            at + dt.timedelta(seconds=rng.uniform(0.05, 2))
        final_at = (sent_at or at) + dt.timedelta(seconds=3) if status not in ("SENT", "SCHEDULED") else None
        rows.append((mid, user["account_id"], user["id"], "OUTBOUND", status, user["number"],
                     f"+2782{rng.randrange(10**7):07d}", body, "GSM7", parts, 1000 * parts,
                     rng.choice([None, None, "spring", "renewals"]), at, scheduled_for, sent_at, final_at, None, False,
                     deleted, "simulator" if sent_at else None, f"{rng.getrandbits(48):x}" if sent_at else None,
                     "UNDELIV" if status.startswith("FAILED") else None))
    if deep is not None:
        deep.extend((r[12], r[0]) for r in rows)
    return rows


def seed(kind: str, url: str, args: argparse.Namespace) -> dict:
    """The whole data set in a fresh, migrated database; returns the facts the bench needs."""
    from pigeon.accounts.service import create_account, create_user
    from pigeon.accounts.sessions import set_password
    from pigeon.campaigns import service as campaigns
    from pigeon.db import Database
    from pigeon.migrations import upgrade
    from pigeon.numbers import service as numbers
    from pigeon.numbers.models import Kind, PhoneNumber

    rng = random.Random(args.seed)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    db = Database(url)
    upgrade(db)
    facts: dict = {"now": now.isoformat(), "accounts": []}
    with db.write() as session:
        operator = create_account(session, "operator@pigeon.local", credits=1e6, name="Operator", master=True).user
        set_password(session, operator.id, PASSWORD)
        facts["operator"] = operator.email
        plan = [("busy", 5, 0.6), ("retail", 2, 0.2), ("clinic", 2, 0.12), ("school", 1, 0.08)]
        for name, size, share in plan:
            admin = create_account(session, f"{name}@pigeon.local", credits=1e9, name=f"{name.title()} team").user
            team = [admin] + [create_user(session, admin.account_id, f"{name}-{i}@pigeon.local", credits=1e6).user
                              for i in range(1, size)]
            for user in team:
                set_password(session, user.id, PASSWORD)
            campaign = campaigns.create(session, admin.account_id, f"{name} campaign", status="active")
            count = 300 if name == "busy" else 20
            added = []
            for i in range(count):
                row = numbers.add(session, numbers.Spec(f"+2787{len(facts['accounts'])}{i:06d}", Kind.MOBILE,
                                                        mms=i % 3 == 0), "ZA", account_id=admin.account_id)
                row.campaign_id = campaign.id if i % 2 == 0 else None
                added.append(row)
            numbers.make_default(session, added[0])
            users = [{"id": u.id, "account_id": u.account_id, "email": u.email, "number": added[i].number}
                     for i, u in enumerate(team)]
            facts["accounts"].append({"name": name, "id": admin.account_id, "share": share, "users": users})
        for i in range(2000):
            session.add(PhoneNumber(id=f"pool{i:06d}", number=f"+2786{i:07d}", kind="local", source="purchased",
                                    state="active", sms=True, mms=False, voice=i % 5 == 0, product="UNALLOCATED",
                                    is_default=False, created_at=now, updated_at=now))
    db.dispose()
    loader = Loader(kind, url)
    t = time.monotonic()
    loader.drop_indexes(["messages", "outbound_queue"])
    busy = facts["accounts"][0]
    day = int(args.day)
    older = args.messages - day
    queue: list[tuple] = []
    deep: list = []
    for account in facts["accounts"]:
        size = len(account["users"])  # the second user sends most: 60%
        weights = [1.0] if size == 1 else [0.4, 0.6] if size == 2 else [0.1, 0.6] + [0.3 / (size - 2)] * (size - 2)
        users = list(zip(account["users"], weights, strict=True))
        n = round(older * account["share"]) if account is not busy else older - sum(
            round(older * a["share"]) for a in facts["accounts"][1:])
        spans = [(now - 30 * DAY, now - DAY, n)]
        if account is busy:
            spans.append((now - DAY, now, day))  # its realistic day
        else:  # the others' last day at their usual pace
            spans.append((now - DAY, now, n // 29))
        for start, end, count in spans:
            span = (end - start).total_seconds()
            times = sorted(start + dt.timedelta(seconds=rng.random() * span) for _ in range(count))
            for lot in range(0, len(times), 100_000):
                rows = messages_of(rng, users, times[lot:lot + 100_000], now, queue,
                                   deep if account is busy and start < now - DAY else None)
                loader.load("messages", MESSAGE_COLUMNS, rows)
            log(f"  {account['name']}: {count:,} messages from {start:%m-%d %H:%M} ({time.monotonic() - t:.0f} s)")
    # a backlog due now: the busy account's last sends, waiting for the carrier
    backlog = []
    for i in range(200):
        at = now - dt.timedelta(seconds=30 - i * 0.1)
        user = busy["users"][1]
        mid = _id(rng, at)
        backlog.append((mid, busy["id"], user["id"], "OUTBOUND", "SCHEDULED", user["number"], f"+2782{i:07d}",
                        "Due now", "GSM7", 1, 1000, None, at, None, None, None, None, False, False, None, None, None))
        queue.append((mid, at, 0, False))
    loader.load("messages", MESSAGE_COLUMNS, backlog)
    loader.load("outbound_queue", ("message_id", "available_at", "attempts", "in_flight"), queue)
    # a cursor deep in the busy account's list: 100,000 messages (page 2,000 of 50) in
    deep.sort(reverse=True)
    at, mid = deep[min(len(deep) - 1, 100_000 - day)]
    facts["deep_cursor"] = f"{at.isoformat()}~{mid}"
    loader.build_indexes()
    loader.finish()
    log(f"  seeded in {time.monotonic() - t:.0f} s")
    return facts


def database(kind: str, args: argparse.Namespace) -> tuple[str, dict]:
    """The URL of the seeded database of this kind and its facts; seeded unless ``--reuse``
    finds one of the same size and seed version."""
    name = f"console_{args.messages}"
    facts_path = args.dir / f"{name}-{kind}.json"
    if kind == "sqlite":
        path = args.dir / f"{name}.db"
        url = f"sqlite:///{path}"
    else:
        import psycopg

        url = f"{args.pg_base}/pigeon_{name}"
    if args.reuse and facts_path.exists():
        facts = json.loads(facts_path.read_text())
        if facts.get("seed_version") == SEED_VERSION and facts.get("size") == [args.messages, args.day]:
            log(f"{kind}: reusing {url} (seeded {facts['now']})")
            return url, facts
    log(f"{kind}: seeding {args.messages:,} messages into {url}")
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        with psycopg.connect(f"{args.pg_base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "pigeon_{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "pigeon_{name}"')
    facts = seed(kind, url, args)
    facts.update(seed_version=SEED_VERSION, size=[args.messages, args.day])
    facts_path.write_text(json.dumps(facts, indent=1))
    return url, facts


# -- measuring -----------------------------------------------------------------------------

class Visitor:
    """One browser's worth of console: signed in with the password form, cookies kept."""

    def __init__(self, port: int, email: str):
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        form = self.http.get("/console/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        answer = self.http.post("/console/sign-in", data={"email": email, "password": PASSWORD, "csrf": csrf})
        if answer.status_code != 303:
            raise RuntimeError(f"signing in as {email}: {answer.status_code} {answer.text[:300]}")

    def time(self, path: str, requests: int) -> tuple[list[float], int]:
        """The first request's time (cold: caches empty), then the others' after two of warm-up."""
        samples = []
        for i in range(2 + requests):
            t = time.perf_counter()
            response = self.http.get(path)
            elapsed = (time.perf_counter() - t) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}")
            if i == 0 or i >= 2:
                samples.append(elapsed)
        return samples, len(response.content)


def pages(facts: dict) -> list[tuple[str, str, str]]:
    """(who, label, path) of every page timed."""
    busy = facts["accounts"][0]
    admin, user = busy["users"][0]["email"], busy["users"][1]["email"]
    operator = facts["operator"]
    deep = httpx.QueryParams({"after": facts["deep_cursor"]})
    return [
        (admin, "messages, first page (account: 620,000)", "/console/messages"),
        (admin, "messages, 100,000 deep (page 2,001's cursor)", f"/console/messages?{deep}"),
        (admin, "messages?status=FAILED", "/console/messages?status=FAILED"),
        (admin, "messages?text=invoice (common word)", "/console/messages?text=invoice"),
        (admin, "messages?text=appointment&status=UNKNOWN", "/console/messages?text=appointment&status=UNKNOWN"),
        (user, "messages, a user's first page", "/console/messages"),
        (admin, "dashboard (the page)", "/console/dashboard"),
        (admin, "dashboard/data.json, account (50,000 in 24 h)", "/console/dashboard/data.json"),
        (user, "dashboard/data.json, its busiest user (30,000 in 24 h)", "/console/dashboard/data.json"),
        (operator, "dashboard/data.json, operator picks busy",
         f"/console/dashboard/data.json?account={busy['id']}"),
        (admin, "numbers (300)", "/console/numbers"),
        (operator, "numbers, operator: the pool (2,000) and carriers", "/console/numbers?account=pool"),
        (operator, "numbers/carriers (the polled fragment)", "/console/numbers/carriers"),
        (admin, "conversations", "/console/conversations"),
    ]


def run_backend(kind: str, args: argparse.Namespace) -> list[dict]:
    url, facts = database(kind, args)
    workdir = Path(tempfile.mkdtemp(prefix=f"pigeon-console-{kind}-"))
    results = []
    with Serve(url, args, workdir) as serve:
        visitors: dict[str, Visitor] = {}
        for who, label, path in pages(facts):
            visitor = visitors.get(who) or visitors.setdefault(who, Visitor(serve.port, who))
            try:
                samples, size = visitor.time(path, args.requests)
            except RuntimeError as exc:
                log(f"  {label}: {exc}")
                results.append({"page": label, "error": str(exc)})
                continue
            cold, ordered = samples[0], sorted(samples[1:])
            row = {"page": label, "median": round(statistics.median(ordered), 1), "cold": round(cold, 1),
                   "p95": round(ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)], 1), "bytes": size}
            results.append(row)
            log(f"  {label}: median {row['median']} ms, p95 {row['p95']} ms, first {row['cold']} ms ({size:,} bytes)")
    return results


def table(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    kinds = list(results)
    lines = [f"Console pages at {args.messages:,} messages, signed in over HTTP, one client; "
             f"{args.requests} requests each after 2 of warm-up; ms (first: the first request, caches empty)", "",
             "| page | " + " | ".join(f"{k} median / p95 (first)" for k in kinds) + " |", "|" + "---|" * (len(kinds) + 1)]
    for i, row in enumerate(results[kinds[0]]):
        cells = []
        for k in kinds:
            r = results[k][i]
            cells.append(r["error"] if "error" in r else f"{r['median']:.1f} / {r['p95']:.1f} ({r['cold']:.0f})")
        lines.append(f"| {row['page']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--day", type=int, default=50_000, help="the busy account's messages in the last 24 hours")
    ap.add_argument("--requests", type=int, default=20, help="timed requests per page")
    ap.add_argument("--reuse", action="store_true", help="keep the seeded databases and use them again")
    ap.add_argument("--dir", type=Path, default=HERE / "results" / "console", help="where SQLite databases live")
    ap.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.src = None  # lists.Serve runs the code of this tree
    args.dir.mkdir(parents=True, exist_ok=True)
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = {kind: run_backend(kind, args) for kind in kinds}
    print(table(results, args))


if __name__ == "__main__":
    main()
