"""The delivery engine: drains the outbound queue into a carrier, and carrier events back in.

Each process running it (``pigeon serve``, ``pigeon worker``) claims batches under a lease,
so any number share one PostgreSQL database without taking the same message twice. The
engine sleeps when the queue is empty, and wakes at once when this process accepts a send.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import Executor

from pigeon.carriers.base import Carrier, InboundSms, Receipt
from pigeon.config import DeliverySettings
from pigeon.db import Database, utcnow
from pigeon.delivery import queue
from pigeon.delivery.receipts import apply_receipts
from pigeon.inbound.service import receive

log = logging.getLogger(__name__)


class DeliveryEngine:
    """Claims due messages, submits them, and records what the carrier said."""

    GATHER = 0.05  # seconds a wake-up waits so that one round carries many sends

    def __init__(self, db: Database, carrier: Carrier, settings: DeliverySettings, executor: Executor):
        self.db = db
        self.carrier = carrier
        self.settings = settings
        self.executor = executor
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Run ``settings.rounds`` rounds side by side: one claims and records while another's
        batch is with the carrier (each claims its own rows, under its own lease)."""
        self._tasks = [asyncio.create_task(self._run(), name=f"delivery-engine-{i}")
                       for i in range(self.settings.rounds)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                claimed = await loop.run_in_executor(self.executor, self._claim)
                if claimed:
                    results = await self.carrier.submit([c.submission for c in claimed])
                    await loop.run_in_executor(self.executor, self._record, list(zip(claimed, results, strict=True)))
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:  # the leases lapse and the messages are claimed again
                log.exception("delivery round failed; retrying")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
                await asyncio.sleep(self.GATHER)  # woken by a send: let its neighbours join the round
            except TimeoutError:
                pass

    def _claim(self) -> list[queue.Claimed]:
        with self.db.write() as session:
            return queue.claim(
                session,
                utcnow(),
                limit=self.settings.batch_size,
                lease=dt.timedelta(seconds=self.settings.lease_seconds),
                skip_locked=not self.db.is_sqlite,
            )

    def _record(self, results: list) -> None:
        with self.db.write() as session:
            queue.record(
                session,
                utcnow(),
                self.carrier.name,
                results,
                max_attempts=self.settings.max_attempts,
                retry_base=self.settings.retry_base,
                retry_max=self.settings.retry_max,
            )


class EventSink:
    """Collects carrier receipts and inbound messages and writes them in batches.

    Receipts that match no message yet are tried again every ``retry_every`` seconds for up to
    ``retry_for`` seconds, then logged and dropped.
    """

    def __init__(
        self,
        db: Database,
        executor: Executor,
        default_region: str,
        *,
        timezone: str = "UTC",
        on_written: Callable[[], None] | None = None,
        flush_every: float = 0.05,
        retry_every: float = 0.5,
        retry_for: float = 120.0,
    ):
        self.db = db
        self.executor = executor
        self.default_region = default_region
        self.timezone = timezone
        self.on_written = on_written  # told after each write (its webhooks may be waiting)
        self.flush_every = flush_every
        self.retry_every = retry_every
        self.retry_for = retry_for
        self._receipts: list[tuple[Receipt, float]] = []
        self._inbound: list[InboundSms] = []
        self._waiting: list[tuple[Receipt, float]] = []
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def receipt(self, receipt: Receipt) -> None:
        self._receipts.append((receipt, 0.0))
        self._wake.set()

    def inbound(self, message: InboundSms) -> None:
        self._inbound.append(message)
        self._wake.set()

    def flushed(self) -> asyncio.Future[None]:
        """Resolves once everything reported before this call is stored."""
        future = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(future)
        self._wake.set()
        return future

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="carrier-events")

    async def stop(self) -> None:
        """Stop, writing what has already arrived (a receipt left unwritten at a crash is
        not lost either: the message stays SENT and the carrier's memory of it remains)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        receipts = self._receipts + self._waiting
        if receipts or self._inbound:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self.executor, self._write, receipts, self._inbound)
            except Exception:
                log.exception("could not write %d receipts at shutdown", len(receipts))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_retry = loop.time() + self.retry_every
        while True:
            timeout = max(0.0, next_retry - loop.time()) if self._waiting else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            self._wake.clear()
            await asyncio.sleep(self.flush_every)  # let a burst gather into one transaction
            if loop.time() >= next_retry:
                self._receipts += self._waiting
                self._waiting = []
                next_retry = loop.time() + self.retry_every
            receipts, self._receipts = self._receipts, []
            inbound, self._inbound = self._inbound, []
            waiters, self._flush_waiters = self._flush_waiters, []
            if not receipts and not inbound:
                _resolve(waiters)
                continue
            try:
                unmatched = await loop.run_in_executor(self.executor, self._write, receipts, inbound)
            except Exception:
                log.exception("writing %d receipts and %d inbound failed; retrying", len(receipts), len(inbound))
                self._waiting += receipts
                self._inbound = inbound + self._inbound
                self._flush_waiters = waiters + self._flush_waiters
                await asyncio.sleep(self.retry_every)
                continue
            _resolve(waiters)
            if self.on_written is not None:
                self.on_written()
            first_seen = {id(r): since for r, since in receipts}
            now = loop.time()
            for receipt in unmatched:
                since = first_seen[id(receipt)] or now
                if now - since < self.retry_for:
                    self._waiting.append((receipt, since))
                else:
                    log.warning("receipt %s from %s matched no message; dropped", receipt.carrier_ref, receipt.carrier)

    def _write(self, receipts: list[tuple[Receipt, float]], inbound: list[InboundSms]) -> list[Receipt]:
        now = utcnow()
        with self.db.write() as session:
            unmatched = apply_receipts(session, [r for r, _ in receipts], now)
            for message in inbound:
                receive(session, message, now, self.default_region, self.timezone)
        return unmatched


def _resolve(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
