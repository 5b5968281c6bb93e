"""The list benchmark (issue 10): every list endpoint at a million messages, on both backends.

    .venv/bin/python bench/lists.py [--backend sqlite|postgresql|both] [--reuse]
                                    [--messages 1000000] [--contacts 1000000] [--requests 200]

For each backend it seeds a fresh database (a SQLite file, or a PostgreSQL database on
127.0.0.1:5432) straight through the driver (executemany on SQLite, COPY on PostgreSQL, the
indexes dropped during the load and built again after it): 1M messages over a year for five
users, one of them with 85% of the rows (both directions, every status, bulk sends that share
their created_at, replies, campaigns, data fields, read, deleted and scheduled ones), 1M contacts
of the big user in 200 groups (one of half of them, some of 20,000, many small ones, one of the
50 newest contacts) and 5,000 templates. ``--reuse`` keeps the seeded databases (under
``--dir``, and as PostgreSQL database ``pigeon_lists_<N>``) and uses them again when their
size matches, so that iterating on the code does not re-seed.

Then it starts the real ``pigeon serve`` on loopback against that database and measures over
HTTP, one client with keep-alive, the p50 and p99 of the first page of every list endpoint,
unfiltered and with each filter, a later page (page 2 after page 1, and a deep page), and the
cold first request of each (the first one after start, which may count the total). Last, the
latency of single sends (one client) and the rate of bulk sends, on the 1M database and on an
empty one, their two servers taking turns request by request. It prints a table that marks
the target (p99 < 50 ms) met or missed per endpoint.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from run import code_fingerprint, free_port, log  # noqa: E402

VENV_BIN = Path(sys.executable).parent
PIGEON = str(VENV_BIN / "pigeon") if (VENV_BIN / "pigeon").exists() else shutil.which("pigeon") or "pigeon"
API = "/app/api/rest/v1"
TARGET_MS = 50.0
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
SEED_VERSION = 3  # bump when the seeded data changes: --reuse then seeds again

CAMPAIGNS = [f"campaign-{i:02d}" for i in range(30)]
FIRST = ["Thandi", "Sipho", "Anna", "Pieter", "Lerato", "John", "Aisha", "Mandla", "Zanele", "Karen"]
LAST = ["Nkosi", "Botha", "Dlamini", "Smith", "van Wyk", "Naidoo", "Mokoena", "Pillay", "Khumalo", "Jacobs"]
INBOUND_TEXTS = ["Yes", "No", "STOP", "ok thanks", "Please call me", "Who is this?", "Confirmed", "Wrong number"]
# outbound status mix (DELIVERED takes the rest)
OUTBOUND_MIX = {"SENT": 0.02, "FAILED_REFUNDED": 0.05, "FAILED": 0.01, "UNKNOWN": 0.005, "FAILED_OPTOUT": 0.002}
SCHEDULED_SHARE = 0.002  # of outbound: not sent yet, due in the coming month (each with its queue row)
INBOUND_SHARE = 0.10
DELETED_SHARE = 0.01
DATA_FIELD_SHARE = 0.4
CAMPAIGN_SHARE = 0.5
SENDER_SHARE = 0.2
BURST_SHARE = 0.3  # of outbound rows: in bulk sends of 50-1,000 that share one created_at


# -- seeding -------------------------------------------------------------------------------

def _sql_time(value: dt.datetime | None, sqlite: bool) -> object:
    if value is None or not sqlite:
        return value
    return value.strftime(SQLITE_DATETIME)


def _times(rng: random.Random, n: int, start: dt.datetime, end: dt.datetime, bursts: bool) -> list[dt.datetime]:
    """n creation times in [start, end), ascending; with ``bursts``, about BURST_SHARE of them in
    groups sharing one instant (a bulk send), the others one by one."""
    span = (end - start).total_seconds()
    stamps: list[float] = []
    if bursts:
        in_bursts = int(n * BURST_SHARE)
        while len(stamps) < in_bursts:
            at = rng.random() * span
            stamps.extend([at] * min(rng.randint(50, 1000), in_bursts - len(stamps)))
    stamps.extend(rng.random() * span for _ in range(n - len(stamps)))
    stamps.sort()
    return [start + dt.timedelta(seconds=round(s, 6)) for s in stamps]


def _message_id(rng: random.Random, at: dt.datetime) -> str:
    return int(at.replace(tzinfo=dt.UTC).timestamp()).to_bytes(4, "big").hex() + f"{rng.getrandbits(64):016x}"


def message_rows(rng: random.Random, user: dict, n: int, now: dt.datetime, facts: dict) -> tuple[list[tuple], list[tuple]]:
    """One user's n messages over the past year, oldest first, and the queue rows of those
    scheduled; ``facts`` collects values the filters will ask for."""
    start, end = now - dt.timedelta(days=365), now - dt.timedelta(minutes=10)
    times = _times(rng, n, start, end, bursts=True)
    # bulk sends share their instant: those rows are outbound; of the others INBOUND_SHARE * n inbound
    burst = [i > 0 and times[i] == times[i - 1] or (i + 1 < n and times[i + 1] == times[i]) for i in range(n)]
    singles = [i for i in range(n) if not burst[i]]
    inbound = set(rng.sample(singles, min(len(singles), int(n * INBOUND_SHARE))))
    pool = [f"+2782{rng.randrange(10**7):07d}" for _ in range(max(1000, n // 5))]
    cum = list(itertools.accumulate(1 / (rank + 1) ** 0.7 for rank in range(len(pool))))
    total = cum[-1]
    statuses, cum_status = [], []
    acc = 0.0
    for status, share in OUTBOUND_MIX.items():
        acc += share
        statuses.append(status)
        cum_status.append(acc)
    rows, queue = [], []
    last_out: list[int] = []  # indexes of recent outbound rows, for replies
    ids: list[str] = []
    tos: list[str] = []
    campaigns: list[str | None] = []
    fields: list[str | None] = []
    for i, at in enumerate(times):
        mid = _message_id(rng, at)
        ids.append(mid)
        deleted = rng.random() < DELETED_SHARE
        if i in inbound and last_out:
            j = last_out[-rng.randint(1, min(20, len(last_out)))]
            sender = tos[j]
            tos.append("12345")
            campaigns.append(campaigns[j])
            fields.append(fields[j])
            read = rng.random() < (0.8 if at < end - dt.timedelta(days=3) else 0.2)
            rows.append((mid, user["account_id"], user["id"], "INBOUND", "DELIVERED", sender, "12345",
                         rng.choice(INBOUND_TEXTS), "GSM7", 1, 0, campaigns[j], fields[j], at, None, None, at,
                         at - dt.timedelta(seconds=1), read, deleted, ids[j], "simulator", None, None, None))
            continue
        to = pool[bisect.bisect(cum, rng.random() * total)]
        tos.append(to)
        campaign = rng.choice(CAMPAIGNS) if rng.random() < CAMPAIGN_SHARE else None
        field = f"ref-{rng.getrandbits(40):010x}" if rng.random() < DATA_FIELD_SHARE else None
        campaigns.append(campaign)
        fields.append(field)
        last_out.append(i)
        if len(last_out) > 64:
            del last_out[:32]
        draw = rng.random()
        status = next((s for s, c in zip(statuses, cum_status) if draw < c), "DELIVERED")
        scheduled_for = None
        if rng.random() < SCHEDULED_SHARE:
            status = "SCHEDULED"
            scheduled_for = now + dt.timedelta(seconds=rng.randrange(60, 30 * 86400))
            queue.append((mid, scheduled_for, 0, False))
        code = rng.randrange(10**6)
        kind = rng.random()
        if kind < 0.4:
            body = f"Your verification code is {code:06d}. It expires in 10 minutes."
        elif kind < 0.7:
            body = f"Hi {rng.choice(FIRST)}, your appointment is on {at + dt.timedelta(days=3):%d %b} at 10:00. Reply YES to confirm."
        elif kind < 0.9:
            body = f"Thanks for your order #{code}. It ships tomorrow."
        else:
            body = f"Reminder: invoice INV-{code:06d} is due on Friday. Pay online at example.com/pay"
        rejected = status == "FAILED_REFUNDED" and rng.random() < 0.5
        sent_at = None if status == "SCHEDULED" or rejected else at + dt.timedelta(seconds=rng.uniform(0.05, 3))
        final_at = sent_at + dt.timedelta(seconds=5) if sent_at and status not in ("SENT", "UNKNOWN") else None
        if rejected:
            final_at = at + dt.timedelta(seconds=1)
        parts = 2 if kind >= 0.9 else 1
        rows.append((mid, user["account_id"], user["id"], "OUTBOUND", status,
                     "PIGEONCO" if rng.random() < SENDER_SHARE else None, to, body, "GSM7", parts, 1000 * parts,
                     campaign, field, at, scheduled_for, sent_at, final_at, None, False, deleted, None,
                     "simulator" if sent_at else None, str(rng.getrandbits(48)) if sent_at else None,
                     "1" if status.startswith("FAILED") else None, None))
        if status == "FAILED" and "failed_day" not in facts:
            facts["failed_day"] = at
    facts.setdefault("numbers", []).extend(rng.sample(pool[:50], 3))
    return rows, queue


MESSAGE_COLUMNS = ("id", "account_id", "user_id", "direction", "status", "from_number", "to_number", "body",
                   "encoding", "parts", "credit_cost", "campaign", "data_field", "created_at", "scheduled_for",
                   "sent_at", "final_at", "received_at", "read", "deleted", "replied_to_id", "carrier",
                   "carrier_ref", "error_code", "error_detail")
TIME_COLUMNS = {"created_at", "scheduled_for", "sent_at", "final_at", "received_at", "available_at", "updated_at"}


class Loader:
    """Rows straight into tables through the driver, with the tables' indexes dropped while
    they load and built again (from their own definitions) after."""

    def __init__(self, kind: str, url: str):
        self.kind = kind
        self.sqlite = kind == "sqlite"
        if self.sqlite:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self.conn.execute("PRAGMA synchronous=OFF")
            self.conn.execute("PRAGMA foreign_keys=OFF")
            self.conn.execute("PRAGMA cache_size=-512000")
        else:
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True)
            self.conn.execute("SET synchronous_commit = off")
            self.conn.execute("SET maintenance_work_mem = '512MB'")
        self.dropped: list[tuple[str, str]] = []

    def columns(self, table: str) -> list[str]:
        if self.sqlite:
            return [r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")]
        return [r[0] for r in self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))]

    def drop_indexes(self, tables: list[str]) -> None:
        for table in tables:
            if self.sqlite:
                found = self.conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                    (table,)).fetchall()
            else:
                found = self.conn.execute(
                    "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
                    "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
                    "WHERE t.relname = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
                    (table,)).fetchall()
            for name, definition in found:
                self.conn.execute(f'DROP INDEX "{name}"')
                self.dropped.append((name, definition))

    def build_indexes(self) -> None:
        for name, definition in self.dropped:
            t = time.monotonic()
            self.conn.execute(definition)
            log(f"  index {name}: {time.monotonic() - t:.1f} s")
        self.dropped = []

    def load(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        if self.sqlite:
            timed = [i for i, c in enumerate(columns) if c in TIME_COLUMNS]
            marks = ", ".join("?" * len(columns))
            self.conn.execute("BEGIN")
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                (tuple(_sql_time(v, True) if i in timed else v for i, v in enumerate(row)) for row in rows))
            self.conn.execute("COMMIT")
        else:
            with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def finish(self) -> None:
        if self.sqlite:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            for table in ("messages", "contacts", "contact_groups", "group_members", "templates",
                          "outbound_queue", "users"):
                self.conn.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
        self.conn.close()


def seed(kind: str, url: str, args: argparse.Namespace) -> dict:
    """The whole data set in a fresh, migrated database; returns the facts the bench needs."""
    from pigeon.accounts.service import create_account, create_user
    from pigeon.db import Database
    from pigeon.migrations import upgrade

    rng = random.Random(args.seed)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    db = Database(url)
    upgrade(db)
    users = []
    with db.write() as session:
        big = create_account(session, "big@pigeon.local", credits=1e9, name="Big team").user
        users.append(big)
        for i in range(3):
            users.append(create_user(session, big.account_id, f"member{i}@pigeon.local", credits=1e6).user)
        users.append(create_account(session, "other@pigeon.local", credits=1e6, name="Other team").user)
        users = [{"id": u.id, "account_id": u.account_id, "email": u.email} for u in users]
    db.dispose()
    shares = [0.85, 0.05, 0.04, 0.03, 0.03]
    counts = [int(args.messages * s) for s in shares]
    counts[0] += args.messages - sum(counts)
    loader = Loader(kind, url)
    facts: dict = {"now": now.isoformat(), "users": users}
    t = time.monotonic()
    loader.drop_indexes(["messages", "outbound_queue", "contacts", "contact_groups", "group_members", "templates"])
    for user, n in zip(users, counts):
        user_facts: dict = {}
        rows, queue = message_rows(rng, user, n, now, user_facts)
        user["messages"] = n
        if user is users[0]:
            facts["numbers"] = user_facts["numbers"]
            facts["failed_day"] = user_facts["failed_day"].strftime("%Y%m%d")
            inbound = [r for r in rows if r[3] == "INBOUND"]
            facts["inbound_from"] = inbound[len(inbound) // 2][5]
            replied = {}
            for r in inbound:
                replied[r[20]] = replied.get(r[20], 0) + 1
            facts["replied_to"] = max(replied, key=replied.get)
            with_field = [r for r in rows if r[12] and r[3] == "OUTBOUND"]
            facts["data_field"] = with_field[len(with_field) // 3][12]
            facts["needle"] = next(r for r in rows[len(rows) // 2:] if r[7].startswith("Thanks"))[7].split()[4].strip("#.")
        loader.load("messages", MESSAGE_COLUMNS, rows)
        loader.load("outbound_queue", ("message_id", "available_at", "attempts", "in_flight"), queue)
        log(f"  {n:,} messages of {user['email']} loaded ({time.monotonic() - t:.0f} s)")
    seed_contacts(loader, rng, users, now, args.contacts, facts)
    log(f"  contacts, groups and templates loaded ({time.monotonic() - t:.0f} s)")
    loader.build_indexes()
    loader.finish()
    log(f"  seeded in {time.monotonic() - t:.0f} s")
    return facts


def seed_contacts(loader: Loader, rng: random.Random, users: list[dict], now: dt.datetime, n: int, facts: dict) -> None:
    """The big user's n contacts (imported in chunks that share their created_at, over two
    years), its 200 groups and 5,000 templates; a few of each for the others."""
    member_columns = [c for c in loader.columns("group_members")]
    for user in users:
        big = user is users[0]
        count = n if big else 1000
        start = now - dt.timedelta(days=730)
        chunks = _times(rng, max(1, count // 1000), start, now - dt.timedelta(hours=1), bursts=False)
        numbers = rng.sample(range(10**7), count)  # +2783 and 7 digits: unique
        contacts = []
        for i in range(count):
            at = chunks[min(i // 1000, len(chunks) - 1)]
            contacts.append((_message_id(rng, at), user["account_id"], user["id"], f"+2783{numbers[i]:07d}",
                             None, rng.choice(FIRST), rng.choice(LAST), at))
        loader.load("contacts", ("id", "account_id", "user_id", "number", "title", "first_name", "last_name",
                                 "created_at"), contacts)
        sizes = [count // 2] + [min(count, 20_000)] * 10 + [100] * 188 if big else [count // 2, 10]
        groups, members = [], []
        group_times = _times(rng, len(sizes) + 1, start, now - dt.timedelta(hours=1), bursts=False)
        for g, size in enumerate(sizes):
            gid = _message_id(rng, group_times[g])
            groups.append((gid, user["account_id"], user["id"], f"group {g:03d}", group_times[g]))
            for c in rng.sample(contacts, size):
                members.append((gid, c[0], c[7]))
        if big:
            gid = _message_id(rng, group_times[-1])
            groups.append((gid, user["account_id"], user["id"], "newest fifty", group_times[-1]))
            newest = sorted(contacts, key=lambda c: (c[7], c[0]))[-50:]
            members.extend((gid, c[0], c[7]) for c in newest)
            facts["group_big"], facts["group_mid"], facts["group_small"], facts["group_newest"] = (
                groups[0][0], groups[1][0], groups[20][0], gid)
        loader.load("contact_groups", ("id", "account_id", "user_id", "name", "created_at"), groups)
        if "contact_created_at" in member_columns:
            loader.load("group_members", ("group_id", "contact_id", "contact_created_at"), members)
        else:
            loader.load("group_members", ("group_id", "contact_id"), [m[:2] for m in members])
        templates = []
        for i in range(5000 if big else 10):
            at = start + dt.timedelta(seconds=i * 60)
            templates.append((user["account_id"], user["id"], f"template {i:05d}",
                              "Hi {{firstName}}, " + rng.choice(INBOUND_TEXTS), at, at))
        loader.load("templates", ("account_id", "user_id", "name", "body", "created_at", "updated_at"), templates)


# -- the server, its users, and the requests --------------------------------------------------

class Serve:
    """``pigeon serve`` on loopback against ``url`` (the code under ``--src``, if given)."""

    def __init__(self, url: str, args: argparse.Namespace, workdir: Path):
        self.url, self.args, self.workdir = url, args, workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
        env.update(PIGEON_DATABASE_URL=self.url, PIGEON_DEMO_ACCOUNT="false", PIGEON_LOG_LEVEL="WARNING")
        if self.args.src:
            env["PYTHONPATH"] = str(Path(self.args.src).resolve())
        return env

    def cli(self, *argv: str) -> str:
        out = subprocess.run([sys.executable, "-m", "pigeon", *argv], env=self.env(), cwd=self.workdir,
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"pigeon {' '.join(argv)}: {out.stderr.strip()[-2000:]}")
        return out.stdout.strip().splitlines()[-1].strip()

    def __enter__(self) -> Serve:
        self.log_path = self.workdir / f"serve-{self.port}.log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pigeon", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env(), cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600  # the first start on a seeded database migrates it
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pigeon serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("pigeon serve did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Client:
    """One keep-alive HTTP connection, signed in as one user; every request timed."""

    def __init__(self, port: int, email: str, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"email": email, "token": token}

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[float, int, bytes]:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        t = time.perf_counter()
        self.conn.request(method, API + path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - t) * 1000
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return elapsed, response.status, data

    def get(self, path: str, **params: object) -> tuple[float, dict]:
        query = urllib.parse.urlencode(params)
        elapsed, _, data = self.call("GET", path + (f"?{query}" if query else ""))
        return elapsed, json.loads(data)


def quantiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]  # noqa: E731
    return {"p50": round(statistics.median(ordered), 2), "p99": round(pick(0.99), 2), "max": round(ordered[-1], 2)}


def endpoints(facts: dict) -> list[tuple[str, str, dict, dict | None]]:
    """(name, path, params, the params of the page requested just before, or None)."""
    day = dt.datetime.fromisoformat(facts["now"]) - dt.timedelta(days=100)
    one_day = {"fromDateTimeSent": f"{day:%Y%m%d}", "toDateTimeSent": f"{day:%Y%m%d}"}
    month = {"fromDateTimeSent": f"{day - dt.timedelta(days=30):%Y%m%d}", "toDateTimeSent": f"{day:%Y%m%d}"}
    received = {"fromDateTimeReceived": f"{day:%Y%m%d}", "toDateTimeReceived": f"{day:%Y%m%d}"}
    received_month = {"fromDateTimeReceived": f"{day - dt.timedelta(days=30):%Y%m%d}", "toDateTimeReceived": f"{day:%Y%m%d}"}
    m = "/messages/all"
    out = [
        ("messages/all", m, {}, None),
        ("  type=INBOUND", m, {"type": "INBOUND"}, None),
        ("  type=OUTBOUND", m, {"type": "OUTBOUND"}, None),
        ("  status=SCHEDULED", m, {"status": "SCHEDULED"}, None),
        ("  status=DELIVERED", m, {"status": "DELIVERED"}, None),
        ("  status=FAILED", m, {"status": "FAILED"}, None),
        ("  sent on one day", m, one_day, None),
        ("  sent in 31 days", m, month, None),
        ("  sent since a day", m, {"fromDateTimeSent": one_day["fromDateTimeSent"]}, None),
        ("  received on one day", m, received, None),
        ("  received in 31 days", m, received_month, None),
        ("  fromNumber", m, {"fromNumber": facts["inbound_from"]}, None),
        ("  toNumber", m, {"toNumber": facts["numbers"][0]}, None),
        ("  message (common word)", m, {"message": "verification"}, None),
        ("  message (rare: an order number)", m, {"message": facts["needle"]}, None),
        ("  campaign", m, {"campaign": "campaign-07"}, None),
        ("  dataField", m, {"dataField": facts["data_field"]}, None),
        ("  deleted=true", m, {"deleted": "true"}, None),
        ("  read=true", m, {"read": "true"}, None),
        ("  type=INBOUND&read=false", m, {"type": "INBOUND", "read": "false"}, None),
        ("  repliesToMessageId", m, {"repliesToMessageId": facts["replied_to"]}, None),
        ("  status=FAILED&campaign", m, {"status": "FAILED", "campaign": "campaign-07"}, None),
        ("  page 2 after page 1", m, {"page": 2}, {"page": 1}),
        ("  status=DELIVERED page 2 after 1", m, {"status": "DELIVERED", "page": 2}, {"status": "DELIVERED", "page": 1}),
        ("  page 5,000 (a jump: 499,900 skipped)", m, {"page": 5000}, None),
        ("contacts/all", "/contacts/all", {}, None),
        ("  page 2 after page 1", "/contacts/all", {"page": 2}, {"page": 1}),
        ("  page 5,000 (a jump)", "/contacts/all", {"page": 5000}, None),
        ("groups/all", "/groups/all", {}, None),
        ("groups/{id}/contacts (500,000)", f"/groups/{facts['group_big']}/contacts", {}, None),
        ("  page 2 after page 1", f"/groups/{facts['group_big']}/contacts", {"page": 2}, {"page": 1}),
        ("groups/{id}/contacts (20,000)", f"/groups/{facts['group_mid']}/contacts", {}, None),
        ("groups/{id}/contacts (100)", f"/groups/{facts['group_small']}/contacts", {}, None),
        ("groups/{id}/contacts (the 50 newest)", f"/groups/{facts['group_newest']}/contacts", {}, None),
        ("templates/all", "/templates/all", {}, None),
        ("  page 2 after page 1", "/templates/all", {"page": 2}, {"page": 1}),
        ("account/user?searchEmail", "/account/user", {"searchEmail": "pigeon.local"}, None),
        ("account/statistics (30 days)", "/account/statistics", {}, None),
        ("account/statistics (a year)", "/account/statistics",
         {"from": f"{day - dt.timedelta(days=265):%Y%m%d}"}, None),
    ]
    return out


def measure_lists(client: Client, facts: dict, args: argparse.Namespace) -> list[dict]:
    rows = []
    for name, path, params, before in endpoints(facts):
        samples, cold = [], None
        for i in range(args.warmup + args.requests):
            if before is not None:
                client.get(path, **before)
            elapsed, body = client.get(path, **params)
            if i == 0:
                cold = elapsed
                shown = body.get("totalElements")
            elif i >= args.warmup:
                samples.append(elapsed)
        row = {"name": name, "cold": round(cold, 2), **quantiles(samples), "total": shown}
        rows.append(row)
        log(f"  {name}: p50 {row['p50']} ms, p99 {row['p99']} ms (cold {row['cold']} ms)")
    walk = []  # a walk: pages 1..50, each after the one before
    for round_ in range(4):
        for number in range(1, 51):
            elapsed, _ = client.get("/messages/all", page=number, pageSize=100)
            if number > 1 and round_ > 0:
                walk.append(elapsed)
    rows.insert(next(i for i, r in enumerate(rows) if r["name"].startswith("  page 5,000")),
                {"name": "  pages 2-50, walked in order", "cold": None, **quantiles(walk), "total": None})
    return rows


def measure_sends(clients: dict[str, Client], args: argparse.Namespace) -> dict[str, dict]:
    """Single sends (one client per server) and send-bulk, the servers taking turns request by
    request, so that whatever else the machine does falls on both alike."""
    singles: dict[str, list[float]] = {name: [] for name in clients}
    for i in range(args.warmup + args.sends):
        body = json.dumps({"recipientNumber": f"+2782{5550000 + i:07d}", "message": f"list bench {i}"}).encode()
        for name, client in clients.items():
            elapsed, _, _ = client.call("POST", "/sms/send", body)
            if i >= args.warmup:
                singles[name].append(elapsed)
    bulk = json.dumps({"sendSmsRequests": [
        {"recipientNumber": f"+2782{6660000 + i:07d}", "message": f"bulk {i}"} for i in range(1000)]}).encode()
    spent: dict[str, float] = {name: 0.0 for name in clients}
    for i in range(1 + args.bulk):
        for name, client in clients.items():
            elapsed, _, _ = client.call("POST", "/sms/send-bulk", bulk)
            if i:
                spent[name] += elapsed / 1000
    return {name: {**quantiles(singles[name]), "bulk_per_s": round(args.bulk * 1000 / spent[name])} for name in clients}


# -- databases -------------------------------------------------------------------------------

def database(kind: str, args: argparse.Namespace) -> tuple[str, Path]:
    """The URL of the seeded database of this kind, and its facts file; seeded unless
    ``--reuse`` finds one of the same size and seed version."""
    name = f"lists_{args.tag + '_' if args.tag else ''}{args.messages}"
    facts_path = args.dir / f"{name}-{kind}.json"
    if kind == "sqlite":
        path = args.dir / f"{name}.db"
        url = f"sqlite:///{path}"
    else:
        import psycopg

        url = f"{args.pg_base}/pigeon_{name}"
    if args.reuse and facts_path.exists():
        facts = json.loads(facts_path.read_text())
        if facts.get("seed_version") == SEED_VERSION and facts.get("size") == [args.messages, args.contacts]:
            log(f"{kind}: reusing {url}")
            return url, facts_path
    log(f"{kind}: seeding {args.messages:,} messages and {args.contacts:,} contacts into {url}")
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        with psycopg.connect(f"{args.pg_base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "pigeon_{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "pigeon_{name}"')
    facts = seed(kind, url, args)
    facts.update(seed_version=SEED_VERSION, size=[args.messages, args.contacts])
    facts_path.write_text(json.dumps(facts, indent=1))
    return url, facts_path


def forget_sends(kind: str, url: str, facts: dict) -> None:
    """Take out what an earlier run's sends added to a reused database."""
    since = dt.datetime.fromisoformat(facts["now"])
    statements = ["DELETE FROM outbound_queue WHERE message_id IN (SELECT id FROM messages WHERE created_at > {t})",
                  "DELETE FROM message_parts WHERE message_id IN (SELECT id FROM messages WHERE created_at > {t})",
                  "DELETE FROM webhook_events WHERE user_id IN (SELECT id FROM users)"
                  " AND created_at > {t}",
                  "DELETE FROM messages WHERE created_at > {t}"]
    if kind == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        for statement in statements:
            conn.execute(statement.format(t="?"), (since.strftime(SQLITE_DATETIME),))
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.format(t="%s"), (since,))


class EmptyDatabase:
    """A fresh database with one user, for the sends measured against an empty one."""

    def __init__(self, kind: str, args: argparse.Namespace, workdir: Path):
        self.kind, self.args, self.workdir = kind, args, workdir

    def __enter__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.workdir / 'empty.db'}"
        import psycopg

        self.name = f"pigeon_lists_empty_{os.getpid()}"
        with psycopg.connect(f"{self.args.pg_base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return f"{self.args.pg_base}/{self.name}"

    def __exit__(self, *exc: object) -> None:
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(f"{self.args.pg_base}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def run_backend(kind: str, args: argparse.Namespace) -> dict:
    url, facts_path = database(kind, args)
    facts = json.loads(facts_path.read_text())
    forget_sends(kind, url, facts)
    load = [os.getloadavg()[0]]
    workdir = Path(tempfile.mkdtemp(prefix=f"pigeon-lists-{kind}-"))
    try:
        with Serve(url, args, workdir) as serve, EmptyDatabase(kind, args, workdir) as empty_url:
            email = facts["users"][0]["email"]
            client = Client(serve.port, email, serve.cli("account", "token", "--email", email))
            lists = [] if args.sends_only else measure_lists(client, facts, args)
            empty = Serve(empty_url, args, workdir)
            empty.cli("migrate")
            token = empty.cli("account", "create", "--email", "empty@pigeon.local", "--credits", "1000000000")
            with empty:
                sends = measure_sends({"full": client, "empty": Client(empty.port, "empty@pigeon.local", token)}, args)
            log(f"  sends at {args.messages:,}: {sends['full']}; on an empty database: {sends['empty']}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load.append(os.getloadavg()[0])
    return {"lists": lists, "sends": sends, "load": load}


# -- the report ------------------------------------------------------------------------------

def table(results: dict, args: argparse.Namespace) -> str:
    kinds = list(results)
    lines = [f"Lists at {args.messages:,} messages and {args.contacts:,} contacts: one client, "
             f"{args.requests} requests each after {args.warmup} warm-up; ms (target: p99 < {TARGET_MS:g} ms)", ""]
    head = "| endpoint | " + " | ".join(f"{k} p50 / p99 (cold)" for k in kinds) + " | target |"
    lines += [head, "|" + "---|" * (len(kinds) + 2)]
    names = [r["name"] for r in results[kinds[0]]["lists"]] if not args.sends_only else []
    missed = 0
    for i, name in enumerate(names):
        cells, met = [], True
        for k in kinds:
            r = results[k]["lists"][i]
            cold = "" if r["cold"] is None else f" ({r['cold']:.1f})"
            cells.append(f"{r['p50']:.1f} / {r['p99']:.1f}{cold}")
            met = met and r["p99"] < TARGET_MS
        missed += not met
        lines.append(f"| {name.replace('  ', '&nbsp;&nbsp;')} | " + " | ".join(cells) + f" | {'met' if met else '**missed**'} |")
    lines += ["", f"{len(names) - missed} of {len(names)} met on every backend measured. Load average (1 min) at the "
              "start and end of each backend's run: " + ", ".join(
                  f"{k} {results[k]['load'][0]:.1f} / {results[k]['load'][1]:.1f}" for k in kinds) + " (2 cores).", ""]
    lines += ["| single sends, one client | " + " | ".join(kinds) + " |", "|" + "---|" * (len(kinds) + 1)]
    for label, key in ((f"p50 / p99 at {args.messages:,} messages", "full"), ("p50 / p99 on an empty database", "empty")):
        lines.append(f"| {label} | " + " | ".join(
            f"{results[k]['sends'][key]['p50']:.1f} / {results[k]['sends'][key]['p99']:.1f} ms" for k in kinds) + " |")
    for label, key in ((f"send-bulk (1,000 a request) at {args.messages:,}", "full"), ("send-bulk on an empty database", "empty")):
        lines.append(f"| {label} | " + " | ".join(f"{results[k]['sends'][key]['bulk_per_s']:,} msg/s" for k in kinds) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    ap.add_argument("--warmup", type=int, default=5, help="requests per endpoint before those timed")
    ap.add_argument("--sends", type=int, default=300, help="single sends timed, one client")
    ap.add_argument("--bulk", type=int, default=30, help="send-bulk requests of 1,000 timed")
    ap.add_argument("--sends-only", action="store_true", help="measure the sends alone (no lists)")
    ap.add_argument("--reuse", action="store_true", help="keep the seeded databases and use them again")
    ap.add_argument("--dir", type=Path, default=HERE / "results" / "lists", help="where SQLite databases and facts live")
    ap.add_argument("--tag", default="", help="part of the databases' names, to keep several sets")
    ap.add_argument("--src", help="run `pigeon serve` from this source tree (e.g. an older commit's src/)")
    ap.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    os.chdir(tempfile.gettempdir())  # no ./pigeon.toml
    for key in [k for k in os.environ if k.startswith("PIGEON_")]:
        del os.environ[key]
    if args.src:  # seed with that code's schema too
        sys.path.insert(0, str(Path(args.src).resolve()))
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = {kind: run_backend(kind, args) for kind in kinds}
    fingerprint = code_fingerprint()
    try:
        fingerprint["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass  # a worktree's .git is a file, which code_fingerprint does not follow
    if args.src:
        fingerprint["src"] = str(Path(args.src).resolve())
    out = args.dir / f"lists-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "code": fingerprint,
                               "results": results}, indent=1))
    print(table(results, args))
    code = f"the code in {args.src}" if args.src else f"commit {fingerprint['commit']} (src sha256 {fingerprint['src_sha256'][:12]})"
    print(f"\n{code}; results in {out}")


if __name__ == "__main__":
    main()
