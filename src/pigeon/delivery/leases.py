"""A carrier's binds shared by the cluster: slots leased through the database; and each
process's share of the delivery, which paces the campaigns.

A carrier allows ``max_binds`` binds for its system_id, whatever the number of processes.
Each bind (a transceiver, or a transmitter and a receiver) is a slot in ``carrier_leases``;
a process binds only the slots it holds, and holds a slot only while it renews its lease
(every ``EVERY`` seconds, for ``TTL``). Times are the database's clock, so machines whose
clocks differ agree on when a lease lapsed.

- **Taking**: a free slot, or one whose lease lapsed, is taken by a conditional UPDATE (one
  winner however many try); the bind is made after the commit.
- **Sharing**: each delivering process also says it lives (``delivery_members``); a process
  holds at most its share, ``ceil(slots / live processes)``, and hands back a slot beyond it
  (unbound first, then freed), so the binds spread over the processes.
- **Losing**: a renewal that finds the slot no longer its own unbinds it at once; a process
  that cannot renew at all (the database is unreachable) unbinds every slot before its leases
  can lapse (``FENCE``, measured on its own monotonic clock from its last renewal), so a slot
  is never bound twice.
- **Dying**: the lapsed lease (at most ``TTL`` after the last renewal) is taken by another
  process at its next look: a bind moves within ``TTL + EVERY`` seconds and a bind's time.

The throughput is shared the same way: each slot sends at ``throughput / slots`` (the
carrier's own pacing, ``pigeon.carriers.smpp``), so the cluster never exceeds it; and each
campaign's throughput (``delivery.pacing``): a process paces it at its ``share``, the slots it
holds of all there are (with the simulator only, one of the live delivering processes). On
SQLite (one process) the one process holds every slot: today's binds and paces, unchanged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pigeon import metrics
from pigeon.carriers.base import Carrier
from pigeon.db import Database, utcnow
from pigeon.db.isolate import describe
from pigeon.delivery.links import this_process
from pigeon.delivery.models import CarrierLease, DeliveryMember
from pigeon.logs import about

log = logging.getLogger(__name__)
L = CarrierLease.__table__
D = DeliveryMember.__table__
EVERY = 1.0  # seconds between two renewals
TTL = dt.timedelta(seconds=5)  # a lease not renewed for this long is free to take
FENCE = 3.5  # seconds without a renewal after which a process unbinds (well inside TTL)
NEVER = dt.datetime(2000, 1, 1)  # a free slot's expiry


def now_of(session: Session) -> dt.datetime:
    """The database's clock (naive UTC); SQLite's is this machine's."""
    if session.get_bind().dialect.name == "sqlite":
        return utcnow()
    return session.execute(text("SELECT timezone('UTC', clock_timestamp())")).scalar_one()


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return (sqlite if session.get_bind().dialect.name == "sqlite" else postgresql).insert


def ensure_slots(session: Session, carrier: str, slots: int) -> None:
    """The carrier's slot rows exist (free), ``slots`` of them."""
    rows = [{"carrier": carrier, "slot": slot, "holder": None, "expires_at": NEVER} for slot in range(slots)]
    session.execute(_insert(session)(L).values(rows).on_conflict_do_nothing())


def take(session: Session, carrier: str, slots: int, holder: str, now: dt.datetime) -> int | None:
    """Take one free or lapsed slot among the first ``slots``; its number, or None."""
    free = session.scalars(select(L.c.slot).where(
        L.c.carrier == carrier, L.c.slot < slots, (L.c.holder.is_(None)) | (L.c.expires_at < now))
        .order_by(L.c.slot)).all()
    for slot in free:
        taken = session.execute(update(L).where(
            L.c.carrier == carrier, L.c.slot == slot, (L.c.holder.is_(None)) | (L.c.expires_at < now))
            .values(holder=holder, expires_at=now + TTL, taken_at=now)).rowcount
        if taken:
            return slot
    return None


def renew(session: Session, carrier: str, holder: str, slots: set[int], now: dt.datetime) -> set[int]:
    """Extend the leases ``holder`` still holds among ``slots``; those it still holds."""
    if not slots:
        return set()
    kept = session.execute(update(L).where(L.c.carrier == carrier, L.c.holder == holder, L.c.slot.in_(sorted(slots)))
                           .values(expires_at=now + TTL).returning(L.c.slot)).scalars().all()
    return set(kept)


def free(session: Session, carrier: str, holder: str, slots: set[int]) -> None:
    """Give slots back (their binds are already gone)."""
    if slots:
        session.execute(update(L).where(L.c.carrier == carrier, L.c.holder == holder, L.c.slot.in_(sorted(slots)))
                        .values(holder=None, expires_at=NEVER))


def seen(session: Session, process: str, now: dt.datetime) -> int:
    """Say ``process`` lives; how many delivering processes live (itself included)."""
    insert = _insert(session)(D).values(process=process, seen_at=now)
    session.execute(insert.on_conflict_do_update(index_elements=[D.c.process], set_={"seen_at": now}))
    return session.scalar(select(func.count()).where(D.c.seen_at >= now - TTL)) or 1


def gone(session: Session, process: str, before: dt.datetime) -> None:
    """Forget ``process`` (it stops) and every process not seen since ``before``."""
    session.execute(delete(D).where((D.c.process == process) | (D.c.seen_at < before)))


def holders(session: Session, carrier: str, now: dt.datetime) -> dict[int, str]:
    """Who holds which of the carrier's slots now (lapsed leases left out)."""
    return dict(session.execute(select(L.c.slot, L.c.holder).where(
        L.c.carrier == carrier, L.c.holder.is_not(None), L.c.expires_at >= now)).all())


def share(slots: int, live: int) -> int:
    return math.ceil(slots / max(1, live))


class BindLeases:
    """Drives a process's carriers' binds from their leases: renews, takes up to its share,
    hands back beyond it, unbinds what it lost, and fences itself when it cannot renew.

    Its database work runs on a thread of its own, so a long write of the process's (a purge
    batch, a big accept) never holds a renewal up. On SQLite (one machine, a local file) it does
    not fence: a stalled renewal there is a busy writer, not a lost network, and unbinding the
    one box's carrier for it would be worse than the stall."""

    def __init__(self, db: Database, executor: Executor | None, carrier: Carrier, *, process: str | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.db = db
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="pigeon-leases")
        self.carriers = [member for member in carrier.members() if member.slots]
        self.holder = f"{process or this_process()}:{uuid.uuid4().hex[:6]}"[-96:]
        self.clock = clock
        self.fences = not db.is_sqlite
        self._renewed = clock()
        self._task: asyncio.Task[None] | None = None
        self._fence: asyncio.Task[None] | None = None
        self._handing: set[asyncio.Task[None]] = set()
        self._leaving: dict[str, set[int]] = {c.name: set() for c in self.carriers}  # unbinding, still renewed
        self._failing = False
        self._closing = False
        self.live = 1  # delivering processes alive, as last seen

    def share(self) -> float:
        """This process's part of the cluster's delivery, for each campaign's pace: the bind
        slots it holds of all there are; holding none (the simulator alone, or a carrier of
        its own beside leased ones), one of the delivering processes alive."""
        held = sum(len(c.held) for c in self.carriers)
        if held:
            return held / sum(c.slots for c in self.carriers)
        return 1.0 / max(1, self.live)

    @property
    def standby(self) -> bool:
        """Its leased carriers' binds are all other processes' (or nobody's yet)."""
        return bool(self.carriers) and not any(c.held for c in self.carriers)

    def start(self) -> None:
        self._renewed = self.clock()
        self._task = asyncio.create_task(self._run(), name="bind-leases")
        if self.fences and self.carriers:
            self._fence = asyncio.create_task(self._watch(), name="bind-fence")

    def closing(self) -> None:
        """The process stops: keep renewing what it holds while its carriers unbind, take nothing more."""
        self._closing = True

    async def stop(self) -> None:
        """Stop renewing; free what is held (call once the carriers have unbound)."""
        self._closing = True
        for task in (self._task, self._fence, *self._handing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, self._free_all)
        except Exception as exc:  # they lapse within TTL, and another process takes them then
            log.warning("could not free this process's carrier leases: %s", describe(exc))
        metrics.STANDBY.set(0)

    async def step(self) -> None:
        """One look: renew, unbind at once what was lost, then take one slot per carrier, or
        hand one back (unbound in the background, renewed until it is freed)."""
        loop = asyncio.get_running_loop()
        started = self.clock()
        held = {c.name: set(c.held) | self._leaving[c.name] for c in self.carriers}
        kept, live, took = await loop.run_in_executor(self.executor, self._renew_and_take, held, not self._closing)
        self._renewed = started
        self.live = live
        for carrier in self.carriers:
            for slot in held[carrier.name] - kept[carrier.name] - self._leaving[carrier.name]:
                log.warning("%s: lost the lease of bind %d; unbinding it", carrier.name, slot,
                            extra=about(carrier=carrier.name))
                await carrier.let_go(slot, urgent=True)
            if self._closing:
                continue  # a slot taken meanwhile is freed with the rest at stop
            slot = took.get(carrier.name)
            if slot is not None:
                log.info("%s: took the lease of bind %d (%d processes deliver)", carrier.name, slot, live,
                         extra=about(carrier=carrier.name))
                await carrier.hold(slot)
            elif len(carrier.held) > share(carrier.slots, live) and not self._leaving[carrier.name]:
                extra = max(carrier.held)
                log.info("%s: handing bind %d back (%d processes deliver)", carrier.name, extra, live,
                         extra=about(carrier=carrier.name))
                task = asyncio.create_task(self._hand_back(carrier, extra))
                self._handing.add(task)
                task.add_done_callback(self._handing.discard)
        metrics.STANDBY.set(1 if self.standby else 0)

    async def _hand_back(self, carrier: Carrier, slot: int) -> None:
        """Unbind gracefully while the lease is still renewed, then free it."""
        self._leaving[carrier.name].add(slot)
        try:
            await carrier.let_go(slot)
            await asyncio.get_running_loop().run_in_executor(self.executor, self._free, carrier.name, {slot})
        except Exception as exc:  # not freed: it lapses within TTL
            log.warning("%s: handing bind %d back failed: %s", carrier.name, slot, describe(exc),
                        extra=about(carrier=carrier.name))
        finally:
            self._leaving[carrier.name].discard(slot)

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._failing:
                    log.warning("could not renew the carrier leases: %s", describe(exc))
                self._failing = True
            await asyncio.sleep(EVERY)

    async def _watch(self) -> None:
        """Unbind every slot at once when renewals have failed for ``FENCE`` seconds: well
        before its lease can lapse and another process bind it."""
        while True:
            await asyncio.sleep(EVERY / 4)
            if self.clock() - self._renewed <= FENCE:
                continue
            for carrier in self.carriers:
                for slot in sorted(carrier.held | self._leaving[carrier.name]):
                    log.error("%s: no lease renewed for %.1fs; unbinding bind %d", carrier.name, FENCE, slot,
                              extra=about(carrier=carrier.name))
                    try:
                        await carrier.let_go(slot, urgent=True)
                    except Exception:
                        log.exception("%s: could not unbind bind %d", carrier.name, slot)

    def _renew_and_take(self, held: dict[str, set[int]], taking: bool) -> tuple[dict[str, set[int]], int,
                                                                                 dict[str, int]]:
        with self.db.write() as session:
            now = now_of(session)
            live = seen(session, self.holder, now)
            kept = {c.name: renew(session, c.name, self.holder, held[c.name], now) for c in self.carriers}
            took: dict[str, int] = {}
            for carrier in self.carriers if taking else ():
                if len(kept[carrier.name]) < share(carrier.slots, live):
                    ensure_slots(session, carrier.name, carrier.slots)
                    slot = take(session, carrier.name, carrier.slots, self.holder, now)
                    if slot is not None:
                        took[carrier.name] = slot
            return kept, live, took

    def _free(self, carrier: str, slots: set[int]) -> None:
        with self.db.write() as session:
            free(session, carrier, self.holder, slots)

    def _free_all(self) -> None:
        with self.db.write() as session:
            for carrier in self.carriers:
                free(session, carrier.name, self.holder, set(range(carrier.slots)))
            gone(session, self.holder, now_of(session) - dt.timedelta(hours=1))
