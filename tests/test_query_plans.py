"""The delivery path finds its rows by key, however deep the queue: every statement that a
round of delivery runs (claim, hand-over, record, receipts, inbound) is planned by SQLite and
none of them scans the queue, the messages or their parts. A scan costs nothing on an empty
table and everything at depth: hand-over's (message_id, attempts) IN list scanned the whole
queue for every lot of 64, most of a 30,000-message bulk's delivery time. No timing here:
the plans are read, not clocked."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import event
from test_faults import owner, queued, status_of
from test_waits import until

from pigeon.carriers.base import Carrier, InboundSms, Outcome, Receipt, Submission, SubmitResult
from pigeon.config import DeliverySettings
from pigeon.db import Database
from pigeon.delivery.engine import DeliveryEngine, EventSink
from pigeon.messages.models import Status
from pigeon.migrations import upgrade

HOT_TABLES = ("outbound_queue", "messages", "message_parts")
WRITES = re.compile(r"^\s*(SELECT|UPDATE|DELETE|INSERT|WITH)\b", re.IGNORECASE)


class Receipting(Carrier):
    """Accepts everything and reports each message delivered as soon as it has answered."""

    name = "receipting"

    async def start(self, events) -> None:  # type: ignore[no-untyped-def]
        self.events = events

    async def stop(self) -> None:
        pass

    async def submit(self, batch: list[Submission], report=None) -> list[SubmitResult]:  # type: ignore[no-untyped-def]
        results = [SubmitResult(Outcome.ACCEPTED, carrier_ref=f"r{s.message_id}") for s in batch]
        loop = asyncio.get_running_loop()
        for s in batch:
            loop.call_soon(self.events.receipt, Receipt(self.name, f"r{s.message_id}", Status.DELIVERED))
        return results


def scans(plan_of, statements: list[str]) -> dict[str, str]:
    """{statement: the plan line that scans a hot table} for every statement that does."""
    found = {}
    for sql in statements:
        if not WRITES.match(sql):
            continue
        for *_, detail in plan_of(sql):
            if re.match(rf"SCAN ({'|'.join(HOT_TABLES)})\b", detail) and "COVERING INDEX" not in detail:
                found[sql[:300]] = detail
    return found


def test_no_delivery_statement_scans_the_queue_or_the_messages(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'plans.db'}")
    upgrade(db)
    principal = owner(db)
    ids = queued(db, principal, ["hello"] * 300 + ["long " * 60] * 5)  # a deep queue, some in parts
    statements: list[str] = []

    @event.listens_for(db.engine, "connect")
    def trace(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.set_trace_callback(statements.append)

    db.engine.dispose()  # the pool's connections are opened again, traced

    async def run() -> None:
        executor = ThreadPoolExecutor(1)
        sink = EventSink(db, executor, "ZA")
        sink.start()
        carrier = Receipting()
        await carrier.start(sink)
        engine = DeliveryEngine(db, carrier, DeliverySettings(batch_size=100, handover=16), executor)
        engine.start()
        engine.wake()
        await until(lambda: set(status_of(db, *ids)) == {"DELIVERED"}, "not all delivered")
        sink.inbound(InboundSms("receipting", "+27820000001", None, "a reply"))
        await sink.flushed()
        await engine.stop()
        await sink.stop()

    asyncio.run(run())
    traced = list(statements)
    assert any(s.startswith("UPDATE outbound_queue SET in_flight") for s in traced)  # the hand-over ran
    plans = sqlite3.connect(tmp_path / "plans.db")
    try:
        assert scans(lambda sql: plans.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall(), traced) == {}
    finally:
        plans.close()
        db.dispose()


def test_the_check_finds_a_scan() -> None:
    """The check itself: the old hand-over statement is caught."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE outbound_queue (message_id TEXT PRIMARY KEY, attempts INT, in_flight BOOL)")
    old = "UPDATE outbound_queue SET in_flight=1 WHERE (message_id, attempts) IN (VALUES ('a', 1), ('b', 2))"
    new = ("UPDATE outbound_queue SET in_flight=1 WHERE message_id IN ('a', 'b') "
           "AND (message_id, attempts) IN (VALUES ('a', 1), ('b', 2))")
    plan_of = lambda sql: conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()  # noqa: E731
    assert list(scans(plan_of, [old, new])) == [old]
