"""Latency follows the work (issue 10): nothing waits a fixed time when it is idle; what
arrives while a write or a round is in flight gathers for the next one. No timing here: each
test would hang (and fail its deadline) or count extra writes on the code before."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from test_faults import fresh, owner, queued, sent, status_of  # noqa: F401  (fresh is a fixture)

from pigeon.carriers.base import Carrier, Outcome, Receipt, Submission, SubmitResult
from pigeon.config import DeliverySettings, Settings
from pigeon.db import Database, utcnow
from pigeon.delivery import queue
from pigeon.delivery.engine import DeliveryEngine, EventSink
from pigeon.delivery.models import QueueEntry
from pigeon.messages.models import Status
from pigeon.sending.batcher import AcceptBatcher
from pigeon.sending.service import Sender

DEADLINE = 20.0  # seconds: far beyond any real wait, far below the hour the old waits would take


class Taking(Carrier):
    """Accepts everything at once, and counts the lots it was given."""

    name = "taking"

    def __init__(self) -> None:
        self.lots: list[int] = []

    async def start(self, events) -> None:  # type: ignore[no-untyped-def]
        pass

    async def stop(self) -> None:
        pass

    async def submit(self, batch: list[Submission], report=None) -> list[SubmitResult]:  # type: ignore[no-untyped-def]
        self.lots.append(len(batch))
        return [SubmitResult(Outcome.ACCEPTED, carrier_ref=f"t{s.message_id}") for s in batch]


async def until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.01)


def test_an_idle_engine_claims_a_woken_send_at_once(fresh: Database) -> None:  # noqa: F811
    """Old: a wake-up always slept GATHER before claiming. Here GATHER and the poll interval
    are an hour: only a claim at the wake-up itself sends the message in time."""
    principal = owner(fresh)

    async def run() -> None:
        carrier = Taking()
        engine = DeliveryEngine(fresh, carrier, DeliverySettings(poll_interval=3600), ThreadPoolExecutor(1))
        engine.GATHER = 3600
        engine.start()
        await asyncio.sleep(0.2)  # both rounds found the queue empty and sleep
        for n in range(3):
            ids = queued(fresh, principal, [f"x{n}"], first=10 * n + 1)
            engine.wake()
            await until(lambda ids=ids: status_of(fresh, *ids) == ["SENT"], f"send {n} not claimed at its wake-up")
        await engine.stop()

    asyncio.run(run())


def test_a_claim_marks_its_first_lot_in_flight_itself(fresh: Database) -> None:  # noqa: F811
    """One lot: one transaction marks it in flight (no separate hand-over write); more than
    one lot: the first is marked by the claim, the rest are handed over lot by lot."""
    principal = owner(fresh)
    queued(fresh, principal, ["x"] * 5)
    with fresh.write() as session:
        claimed = queue.claim(session, utcnow(), limit=100, lease=queue.dt.timedelta(seconds=60),
                              skip_locked=False, hand_over_first=2)
    assert [c.handed for c in claimed] == [True, True, False, False, False]
    with fresh.read() as session:
        flying = set(session.scalars(select(QueueEntry.message_id).where(QueueEntry.in_flight.is_(True))))
    assert flying == {c.submission.message_id for c in claimed[:2]}

    other = owner(fresh)
    ids = queued(fresh, other, ["y"] * 3, first=100)

    async def run() -> None:
        engine = DeliveryEngine(fresh, Taking(), DeliverySettings(handover=64), ThreadPoolExecutor(1))
        handed: list[int] = []
        original = engine._hand_over
        engine._hand_over = lambda lot: handed.append(len(lot)) or original(lot)  # type: ignore[method-assign]
        engine.start()
        await until(lambda: status_of(fresh, *ids) == ["SENT"] * 3, "not sent")
        await engine.stop()
        assert handed == [], "a round of one lot wrote its hand-over apart from its claim"

    with fresh.write() as session:  # the first claim's rows go back to the queue, due now
        session.execute(queue.update(QueueEntry.__table__).values(available_at=utcnow(), in_flight=False))
    asyncio.run(run())


def test_sends_queued_behind_other_database_work_share_one_write(fresh: Database) -> None:  # noqa: F811
    """Old: the batcher took its first job before its write reached the database thread, so
    sends that came while that thread was busy took a second write. Now the write takes, on
    the thread, all that is waiting."""
    principal = owner(fresh)
    sender = Sender(Settings(prices={"default": 1.0}))
    executor = ThreadPoolExecutor(1)

    async def run() -> None:
        batcher = AcceptBatcher(fresh, executor)
        writes: list[int] = []
        original = batcher._write
        batcher._write = lambda jobs: writes.append(len(jobs)) or original(jobs)  # type: ignore[method-assign]
        batcher.start()
        busy = threading.Event()
        loop = asyncio.get_running_loop()
        blocker = loop.run_in_executor(executor, busy.wait)  # the database thread, busy elsewhere
        def send(n: int) -> asyncio.Task[None]:
            return asyncio.create_task(batcher.submit(principal, [sender.prepare(f"+2782{n:07d}", "hi")]))

        sends = [send(1)]
        await asyncio.sleep(0.1)  # the batcher has gone for the database thread with this one
        sends += [send(n) for n in range(2, 11)]
        await asyncio.sleep(0.1)
        busy.set()
        await blocker
        await asyncio.gather(*sends)
        await batcher.stop()
        assert writes == [10]

    asyncio.run(run())
    executor.shutdown()


def test_receipts_wake_the_webhook_dispatcher_only_when_they_queued_events(fresh: Database) -> None:  # noqa: F811
    """Old: every write of receipts woke the dispatcher, which then claimed from the outbox
    though nobody had a URL."""
    quiet, listening = owner(fresh), owner(fresh, report_url="http://127.0.0.1:9/r")
    (a,) = queued(fresh, quiet, ["a"], first=1)
    (b,) = queued(fresh, listening, ["b"], first=2)
    sent(fresh, {a: "ra", b: "rb"})

    async def run() -> None:
        woken: list[int] = []
        sink = EventSink(fresh, ThreadPoolExecutor(1), "ZA", on_written=lambda: woken.append(1))
        sink.start()
        sink.receipt(Receipt("c", "ra", Status.DELIVERED))
        await sink.flushed()
        assert status_of(fresh, a) == ["DELIVERED"] and woken == []
        sink.receipt(Receipt("c", "rb", Status.DELIVERED))
        await sink.flushed()
        assert status_of(fresh, b) == ["DELIVERED"] and woken == [1]
        await sink.stop()

    asyncio.run(run())


def test_a_wake_up_during_an_empty_claim_is_not_lost(fresh: Database) -> None:  # noqa: F811
    """Old: the round cleared its wake-up after a claim that found nothing, so a send committed
    (by another process) after the claim's SELECT, and its wake-up, waited for the next poll."""
    principal = owner(fresh)
    selected = threading.Event()
    hold = threading.Event()

    class Slow(DeliveryEngine):
        def _claim(self):  # type: ignore[no-untyped-def]
            found = super()._claim()
            selected.set()
            hold.wait(5)  # the claim's commit is slow (an fsync, the writer's lock...)
            return found

    async def run() -> None:
        engine = Slow(fresh, Taking(), DeliverySettings(poll_interval=3600, rounds=1), ThreadPoolExecutor(1))
        engine.start()
        await until(selected.is_set, "no first claim")
        hold.set()
        await asyncio.sleep(0.2)  # it found nothing, and waits
        selected.clear()
        hold.clear()
        engine.wake()  # a stray wake-up: a claim that will find nothing
        await until(selected.is_set, "no claim at the wake-up")
        ids = queued(fresh, principal, ["late"], first=5)  # committed after that claim's SELECT
        engine.wake()  # ...and its wake-up comes while the claim is still running
        hold.set()
        await until(lambda: status_of(fresh, *ids) == ["SENT"], "the wake-up was lost")
        await engine.stop()

    asyncio.run(run())


class Overtaken(Carrier):
    """Reports each message delivered before it answers the submission: the receipt reaches
    the sink before the answer it belongs to is recorded (as in bulk, where the recorder is
    busy and receipts come fast)."""

    name = "overtaken"

    async def start(self, events) -> None:  # type: ignore[no-untyped-def]
        self.events = events

    async def stop(self) -> None:
        pass

    async def submit(self, batch: list[Submission], report=None) -> list[SubmitResult]:  # type: ignore[no-untyped-def]
        for s in batch:
            self.events.receipt(Receipt(self.name, f"o{s.message_id}", Status.DELIVERED))
        await self.events.flushed()  # the sink tried them: no message was SENT under them yet
        return [SubmitResult(Outcome.ACCEPTED, carrier_ref=f"o{s.message_id}") for s in batch]


def test_a_receipt_that_overtook_its_answer_is_applied_when_the_answer_is_recorded(fresh: Database) -> None:  # noqa: F811
    """Old: a receipt that matched nothing yet waited for the sink's next retry (0.5 s) even
    once its answer was recorded. Here the retry is an hour apart: only the recorder's word
    that it wrote the answer applies the receipt in time."""
    principal = owner(fresh)
    ids = queued(fresh, principal, ["a", "b", "c"])

    async def run() -> None:
        executor = ThreadPoolExecutor(1)
        sink = EventSink(fresh, executor, "ZA", retry_every=3600, retry_for=7200)
        sink.start()
        carrier = Overtaken()
        await carrier.start(sink)
        engine = DeliveryEngine(fresh, carrier, DeliverySettings(poll_interval=3600), executor,
                                on_recorded=sink.recorded)
        engine.start()
        engine.wake()
        await until(lambda: status_of(fresh, *ids) == ["DELIVERED"] * 3, "the receipts waited for the retry")
        await engine.stop()
        await sink.stop()

    asyncio.run(run())
