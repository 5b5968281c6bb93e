"""The delivery engine: drains the outbound queue into a carrier, and carrier events back in.

Each process running it (``pigeon serve``, ``pigeon worker``) claims batches under a lease,
so any number share one PostgreSQL database without taking the same message twice. The
engine sleeps when the queue is empty, and wakes at once when this process accepts a send.

A carrier's answers are recorded as they come, not at the end of a round: the ``Recorder``
writes whatever has arrived since its last commit, at once, so a crash leaves in doubt only
the messages whose answers were not yet in (see ``delivery.queue`` for what becomes of them).
Every batched write here goes through ``db.isolate``: one item that cannot be written is set
aside as an incident, and the items beside it go on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from pigeon import hooks
from pigeon.carriers.base import Carrier, InboundSms, Receipt, SubmitResult
from pigeon.config import DeliverySettings
from pigeon.db import Database, utcnow
from pigeon.db.isolate import describe, write_isolated
from pigeon.delivery import links, queue
from pigeon.delivery.pacing import Pacer
from pigeon.delivery.receipts import apply_receipts
from pigeon.delivery.refs import stored_ref
from pigeon.inbound.service import receive
from pigeon.incidents import service as incidents
from pigeon.incidents.models import Kind
from pigeon.logs import about

log = logging.getLogger(__name__)
RETRY_WRITE = 0.5  # seconds between tries of a write the database refused (it is down, say)
MAX_WRITE = 2000  # carrier answers in one record write (its IN lists stay far below any bind limit)


class DeliveryEngine:
    """Claims due messages, submits them, and records what the carrier said."""

    GATHER = 0.05  # seconds a wake-up waits, while another round is in flight, so that one round carries many sends
    SLOT_MARGIN = 0.002  # seconds past a paced message's slot that the engine claims it (clocks differ a little)

    def __init__(self, db: Database, carrier: Carrier, settings: DeliverySettings, executor: Executor, *,
                 on_recorded: Callable[[set[tuple[str, str]]], None] | None = None, campaigns_required: bool = False,
                 report_links: float | None = links.EVERY, share: Callable[[], float] = lambda: 1.0):
        self.db = db
        self.carrier = carrier
        self.settings = settings
        self.executor = executor
        self.on_recorded = on_recorded  # told the (carrier, reference) pairs of each write of answers
        self.recorder = Recorder(executor, self._record, on_written=self._recorded)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._busy = 0  # rounds claiming or delivering
        self.pacer = Pacer(share=share)  # each campaign's throughput, this process's share of it (delivery.pacing)
        self.campaigns_required = campaigns_required  # a waiting message's sender must still be in an active campaign
        self.links = links.Reporter(carrier)
        self.report_links = report_links  # seconds between two reports of the carrier links' state (None: never)
        self._reporting: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run ``settings.rounds`` rounds side by side: one claims and records while another's
        batch is with the carrier (each claims its own rows, under its own lease)."""
        self._stopping = False
        self.recorder.start()
        self._tasks = [asyncio.create_task(self._run(), name=f"delivery-engine-{i}")
                       for i in range(self.settings.rounds)]
        if self.report_links:
            self._reporting = asyncio.create_task(self._report_links(self.report_links), name="carrier-links")

    async def stop(self, drain: float | None = None) -> None:
        """``stop_rounds``, then write the answers that came meanwhile and stop the recorder;
        this process's carrier links are forgotten."""
        await self.stop_rounds(drain)
        await self.recorder.stop()
        if self._reporting is not None:
            self._reporting.cancel()
            await asyncio.gather(self._reporting, return_exceptions=True)
            self._reporting = None
            try:
                await asyncio.get_running_loop().run_in_executor(self.executor, self._forget_links)
            except Exception as exc:  # they go stale, then are purged
                log.warning("could not forget this process's carrier links: %s", describe(exc))

    async def stop_rounds(self, drain: float | None = None) -> None:
        """Stop claiming; give the rounds in flight up to ``drain`` seconds (the settings'
        ``drain_seconds`` by default) to hand over their batches and record the answers, then
        cut them short. The recorder still takes what the carrier reports until ``stop``: stop
        the carrier in between, so that what it never wrote is answered as such (claimed
        again, not in doubt), and what it wrote and never heard of is in doubt."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, cut = await asyncio.wait(self._tasks, timeout=self.settings.drain_seconds if drain is None else drain)
            for task in cut:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if cut:
                log.warning("%d delivery rounds cut short at shutdown", len(cut))
        self._tasks = []

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            if self.carrier.standby:  # every bind is another process's: nothing to claim for
                await asyncio.sleep(self.settings.poll_interval)
                continue
            self._wake.clear()  # before the claim: a wake-up that comes during it is kept
            self._busy += 1
            try:
                claimed = await loop.run_in_executor(self.executor, self._claim)
                if claimed:
                    await self._deliver(claimed)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:  # the leases lapse and the messages are claimed again
                log.exception("delivery round failed; retrying")
            finally:
                self._busy -= 1
            if self._stopping:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), self._idle_wait())
                if self._busy and not self._stopping:
                    # Another round is in flight: let this one fill while it works. When
                    # none is, a wake-up is claimed at once.
                    await asyncio.sleep(self.GATHER)
            except TimeoutError:
                pass

    def _idle_wait(self) -> float:
        """The poll interval, or less when a paced message's slot comes sooner."""
        slot = self.pacer.next_wait()
        if slot is None:
            return self.settings.poll_interval
        return min(self.settings.poll_interval, slot + self.SLOT_MARGIN)

    async def _deliver(self, claimed: list[queue.Claimed]) -> None:
        """Hand the batch over ``handover`` messages at a time, each lot marked in flight (and
        committed) before the carrier gets it, and the next lot only once the carrier has no
        more than one lot unanswered: a crash leaves in doubt only what was handed over. Each
        answer goes to the recorder as soon as it is known."""
        loop = asyncio.get_running_loop()
        reported = [False] * len(claimed)
        answered = asyncio.Event()
        lot = self.settings.handover

        def report(i: int, result: SubmitResult) -> None:
            if not reported[i]:
                reported[i] = True
                self.recorder.add(claimed[i], result)
                answered.set()

        async def submit(indices: list[int]) -> None:
            results = await self.carrier.submit([claimed[i].submission for i in indices],
                                                lambda j, result: report(indices[j], result))
            for i, result in zip(indices, results, strict=True):
                report(i, result)

        renewing = asyncio.create_task(self._renew(claimed, reported))
        handing: list[asyncio.Task[None]] = []
        handed = 0
        try:
            for start in range(0, len(claimed), lot):
                while handed - sum(reported) > lot:
                    answered.clear()
                    await answered.wait()
                indices = list(range(start, min(len(claimed), start + lot)))
                if all(claimed[i].handed for i in indices):  # the claim marked this lot in flight
                    taken = {claimed[i].submission.message_id for i in indices}
                else:
                    taken = await loop.run_in_executor(self.executor, self._hand_over, [claimed[i] for i in indices])
                for i in indices:
                    if claimed[i].submission.message_id not in taken:
                        reported[i] = True  # cancelled meanwhile, or claimed by another: not ours to send
                indices = [i for i in indices if claimed[i].submission.message_id in taken]
                handed += len(indices)
                if indices:
                    handing.append(asyncio.create_task(submit(indices)))
            await asyncio.gather(*handing)
        finally:
            renewing.cancel()
            for task in handing:
                task.cancel()
            await asyncio.gather(*handing, return_exceptions=True)
        await self.recorder.written()

    async def _report_links(self, every: float) -> None:
        """Write the carrier links' state every ``every`` seconds (one small upsert), for the
        console of any process (``delivery.links``); purge long-gone processes' now and then."""
        loop = asyncio.get_running_loop()
        reports, failing = 0, False
        while True:
            try:
                rows = self.links.rows(loop.time())
                await loop.run_in_executor(self.executor, self._write_links, rows, self.links.gone,
                                           reports % links.PURGE_EVERY == 0)
                failing = False
            except Exception as exc:
                if not failing:
                    log.warning("could not report the carrier links' state: %s", describe(exc))
                failing = True
            reports += 1
            await asyncio.sleep(every)

    def _write_links(self, rows: list[links.Row], gone: list[str], purge: bool) -> None:
        now = utcnow()
        with self.db.write() as session:
            links.report(session, rows, now)
            links.drop(session, gone)
            if purge:
                links.purge(session, now - links.PURGE_AFTER)

    def _forget_links(self) -> None:
        with self.db.write() as session:
            links.forget(session, self.links.process)

    def _hand_over(self, claimed: list[queue.Claimed]) -> set[str]:
        with self.db.write() as session:
            return queue.hand_over(session, claimed)

    async def _renew(self, claimed: list[queue.Claimed], reported: list[bool]) -> None:
        """Keep the lease of what is still with the carrier while this process lives, so a
        slow carrier's round is not taken for a dead one's (and its messages for in doubt)."""
        loop = asyncio.get_running_loop()
        lease = dt.timedelta(seconds=self.settings.lease_seconds)
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 3)
            waiting = [c for c, done in zip(claimed, reported, strict=True) if not done]
            if not waiting:
                return
            try:
                await loop.run_in_executor(self.executor, self._extend, waiting, lease)
            except Exception:
                log.exception("could not renew the lease of %d messages", len(waiting))

    def _extend(self, claimed: list[queue.Claimed], lease: dt.timedelta) -> None:
        with self.db.write() as session:
            queue.extend(session, utcnow(), claimed, lease)

    def _claim(self) -> list[queue.Claimed]:
        with self.db.write() as session:
            return queue.claim(
                session,
                utcnow(),
                limit=self.settings.batch_size,
                lease=dt.timedelta(seconds=self.settings.lease_seconds),
                skip_locked=not self.db.is_sqlite,
                in_doubt=self.settings.in_doubt,
                hand_over_first=self.settings.handover,
                pacer=self.pacer,
                campaigns_required=self.campaigns_required,
            )

    def _recorded(self, items: list[tuple[queue.Claimed, SubmitResult]]) -> None:
        if self.on_recorded is None:
            return
        refs = {(result.carrier or self.carrier.name, stored_ref(ref))
                for _, result in items for ref in (result.carrier_ref, *result.part_refs.values()) if ref}
        if refs:
            self.on_recorded(refs)

    def _record(self, items: list[tuple[queue.Claimed, SubmitResult]]) -> list[tuple[queue.Claimed, SubmitResult]]:
        """Record answers, each batch in halves if it must be; returns what the database
        could not take now (it is down), to be tried again."""
        now = utcnow()
        s = self.settings

        def write(session, chunk):  # type: ignore[no-untyped-def]
            queue.record(session, now, self.carrier.name, chunk, max_attempts=s.max_attempts,
                         retry_base=s.retry_base, retry_max=s.retry_max)

        out = write_isolated(self.db, items, write)
        left = list(out.unwritten)
        for item, exc in out.failed:
            claimed, result = item
            log.warning("the answer for %s could not be recorded; set aside: %s", claimed.submission.message_id,
                        describe(exc), extra=about(message_id=claimed.submission.message_id, carrier=result.carrier))
            try:
                with self.db.write() as session:
                    queue.set_aside(session, now, claimed, result, describe(exc))
            except Exception:  # kept, and tried again: the answer is known, it must not be lost
                log.exception("could not set aside the answer for %s", claimed.submission.message_id,
                              extra=about(message_id=claimed.submission.message_id, carrier=result.carrier))
                left.append(item)
        if out.error is not None:
            log.warning("recording %d carrier answers failed (%s); retrying", len(out.unwritten), describe(out.error))
        return left


@dataclass(slots=True)
class _Waiter:
    upto: int
    future: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Recorder:
    """Writes items as they arrive: each write takes all that came while the last one ran
    (a group commit with no fixed wait). Items the database cannot take now are kept, in
    order, and tried again."""

    def __init__(self, executor: Executor, write: Callable[[list], list],
                 on_written: Callable[[list], None] | None = None):
        self.executor = executor
        self.write = write  # returns the items not written (to try again)
        self.on_written = on_written  # told the items of each write, once they are stored
        self._pending: list = []
        self._added = 0
        self._done = 0
        self._waiters: list[_Waiter] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="delivery-recorder")

    def add(self, *item: object) -> None:
        self._pending.append(item)
        self._added += 1
        self._wake.set()

    async def written(self) -> None:
        """Resolves once everything added before this call is written."""
        if self._done >= self._added:
            return
        waiter = _Waiter(self._added)
        self._waiters.append(waiter)
        await waiter.future

    async def stop(self, timeout: float = 10.0) -> None:
        """Write what is pending (one more try if the database refuses), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._pending:
            log.error("%d carrier answers not recorded at shutdown: in doubt after their lease", len(self._pending))
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.cancel()
        self._waiters = []

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._stopping:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            items, self._pending = self._pending[:MAX_WRITE], self._pending[MAX_WRITE:]
            try:
                left = await loop.run_in_executor(self.executor, self.write, items)
            except Exception:
                log.exception("recording %d carrier answers failed; retrying", len(items))
                left = items
            self._done += len(items) - len(left)
            self._resolve()
            if self.on_written is not None and len(left) < len(items):
                kept = {id(item) for item in left}
                self.on_written([item for item in items if id(item) not in kept])
            if left:
                self._pending = left + self._pending
                if self._stopping:
                    return
                await asyncio.sleep(RETRY_WRITE)

    def _resolve(self) -> None:
        keep = []
        for waiter in self._waiters:
            if self._done >= waiter.upto:
                if not waiter.future.done():
                    waiter.future.set_result(None)
            else:
                keep.append(waiter)
        self._waiters = keep


@dataclass(slots=True)
class _Stored:
    """What one write of carrier events came to."""

    unmatched: list[Receipt] = field(default_factory=list)
    receipts_left: list[tuple[Receipt, float]] = field(default_factory=list)  # the database refused them
    inbound_left: list[InboundSms] = field(default_factory=list)
    events: int = 0  # webhook events queued


class EventSink:
    """Collects carrier receipts and inbound messages and writes them in batches: each write
    takes all that arrived while the last one ran, at once (a group commit with no fixed wait).

    Receipts that match no waiting message yet are tried again every ``retry_every`` seconds
    for up to ``retry_for`` seconds, then logged and dropped. A receipt or inbound message that
    cannot be written even on its own is set aside as an incident (and so acknowledged); the
    others go on.
    """

    def __init__(
        self,
        db: Database,
        executor: Executor,
        default_region: str,
        *,
        timezone: str = "UTC",
        on_written: Callable[[], None] | None = None,
        retry_every: float = 0.5,
        retry_for: float = 120.0,
    ):
        self.db = db
        self.executor = executor
        self.default_region = default_region
        self.timezone = timezone
        self.on_written = on_written  # told after a write that queued webhook events
        self.retry_every = retry_every
        self.retry_for = retry_for
        self._receipts: list[tuple[Receipt, float]] = []
        self._inbound: list[InboundSms] = []
        self._waiting: list[tuple[Receipt, float]] = []
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def receipt(self, receipt: Receipt) -> None:
        self._receipts.append((receipt, 0.0))
        self._wake.set()

    def inbound(self, message: InboundSms) -> None:
        self._inbound.append(message)
        self._wake.set()

    def recorded(self, refs: set[tuple[str, str]]) -> None:
        """Carrier answers under these (carrier, stored reference) pairs were just recorded:
        receipts that came before them and wait for them are tried again now, not at the
        next retry (a receipt can overtake its answer's commit, and usually does in bulk)."""
        if not self._waiting:
            return
        now, still = [], []
        for item in self._waiting:
            (now if (item[0].carrier, stored_ref(item[0].carrier_ref)) in refs else still).append(item)
        if now:
            self._waiting = still
            self._receipts += now
            self._wake.set()

    def flushed(self) -> asyncio.Future[None]:
        """Resolves once everything reported before this call is stored."""
        future = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(future)
        self._wake.set()
        return future

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="carrier-events")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop after writing what has already arrived (a receipt left unwritten at a crash is
        not lost either: the message stays SENT and the carrier's memory of it remains)."""
        self._stopping = True
        self._receipts += self._waiting  # one last try for those not matched yet
        self._waiting = []
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                log.error("carrier events not written in %.0fs at shutdown", timeout)
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for waiter in self._flush_waiters:
            if not waiter.done():
                waiter.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_retry = loop.time() + self.retry_every
        while True:
            if self._stopping and not self._receipts and not self._inbound:
                _resolve(self._flush_waiters)
                return
            timeout = max(0.0, next_retry - loop.time()) if self._waiting else None
            if not self._stopping:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
                self._wake.clear()
            # No wait here: what arrives while a write is in flight gathers for the next one.
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
                stored = await loop.run_in_executor(self.executor, self._write, receipts, inbound)
            except Exception:  # a bug of ours, not the items' (those are isolated): all again later
                log.exception("writing %d receipts and %d inbound failed; retrying", len(receipts), len(inbound))
                stored = _Stored(receipts_left=receipts, inbound_left=inbound)
            if stored.receipts_left or stored.inbound_left:
                self._receipts = stored.receipts_left + self._receipts
                self._inbound = stored.inbound_left + self._inbound
                self._flush_waiters = waiters + self._flush_waiters
                if self._stopping:
                    log.error("%d receipts and %d inbound messages not written at shutdown",
                              len(self._receipts), len(self._inbound))
                    return
                await asyncio.sleep(self.retry_every)
                continue
            _resolve(waiters)
            if self.on_written is not None and stored.events:
                self.on_written()
            first_seen = {id(r): since for r, since in receipts}
            now = loop.time()
            for receipt in stored.unmatched:
                since = first_seen[id(receipt)] or now
                if now - since < self.retry_for and not self._stopping:
                    self._waiting.append((receipt, since))
                elif not self._stopping:
                    log.warning("receipt %s from %s matched no waiting message; dropped",
                                receipt.carrier_ref, receipt.carrier, extra=about(carrier=receipt.carrier))

    def _write(self, receipts: list[tuple[Receipt, float]], inbound: list[InboundSms]) -> _Stored:
        """Write receipts and inbound messages, in halves if need be; set aside what fails alone."""
        now = utcnow()
        items: list[tuple[Receipt, float] | InboundSms] = [*receipts, *inbound]

        def write(session, chunk):  # type: ignore[no-untyped-def]
            unmatched = apply_receipts(session, [item[0] for item in chunk if isinstance(item, tuple)], now)
            for item in chunk:
                if isinstance(item, InboundSms):
                    receive(session, item, now, self.default_region, self.timezone)
            return unmatched, hooks.queued(session)

        out = write_isolated(self.db, items, write)
        stored = _Stored([r for unmatched, _ in out.results for r in unmatched],
                         events=sum(events for _, events in out.results))
        left = list(out.unwritten)
        for _, exc in out.failed:
            log.warning("a carrier event could not be written; set aside: %s", describe(exc))
        if out.failed and not self._set_aside(out.failed, now):
            left += [item for item, _ in out.failed]  # not even set aside: kept, never acknowledged
        for item in left:
            (stored.inbound_left if isinstance(item, InboundSms) else stored.receipts_left).append(item)  # type: ignore[arg-type]
        return stored

    def _set_aside(self, failed: list, now: dt.datetime) -> bool:
        rows: dict[str, list] = {"receipt": [], "inbound": []}
        for item, exc in failed:
            if isinstance(item, InboundSms):
                rows["inbound"].append((item.sender, describe(exc), {
                    "carrier": item.carrier, "sender": item.sender, "to": item.to, "body": item.body,
                    "media": [(m.file_name, m.content_type, len(m.data)) for m in item.media]}))
            else:
                r = item[0]
                rows["receipt"].append((r.carrier_ref, describe(exc), {
                    "carrier": r.carrier, "carrier_ref": r.carrier_ref, "status": r.status.value,
                    "error_code": r.error_code}))
        try:
            with self.db.write() as session:
                for stage, items in rows.items():
                    incidents.record(session, Kind.SET_ASIDE, stage, items, now)
        except Exception:
            log.exception("could not write %d set-aside carrier events as incidents", len(failed))
            return False
        return True


def _resolve(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
