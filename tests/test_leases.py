"""A carrier's binds shared by a cluster through leases in the database, on both backends:
a slot is taken once however many try, renewed by its holder, free to take once it lapses;
processes share the slots, a lost lease unbinds, a dead holder's bind moves, a process that
cannot renew unbinds before its lease can lapse, and the SMSC never sees more binds than the
carrier allows."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

from test_smpp_carrier import Collector, until

from pigeon.carriers.settings import CarrierSettings
from pigeon.carriers.smpp import HEADROOM, SmppCarrier
from pigeon.db import Database
from pigeon.delivery import leases
from pigeon.smsc.server import Smsc

T0 = dt.datetime(2026, 3, 1, 12, 0, 0)


def test_a_slot_is_taken_renewed_and_free_once_it_lapses(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    with db.write() as session:
        leases.ensure_slots(session, "acme", 2)
        leases.ensure_slots(session, "acme", 2)  # again: nothing changes
        assert leases.take(session, "acme", 2, "A", T0) == 0
        assert leases.take(session, "acme", 2, "B", T0) == 1
        assert leases.take(session, "acme", 2, "C", T0) is None  # both held
    later = T0 + leases.TTL - dt.timedelta(seconds=1)
    with db.write() as session:
        assert leases.renew(session, "acme", "A", {0, 1}, later) == {0}  # B's slot is not A's to renew
        assert leases.holders(session, "acme", later) == {0: "A", 1: "B"}
    lapsed = T0 + leases.TTL + dt.timedelta(seconds=1)  # B never renewed
    with db.write() as session:
        assert leases.holders(session, "acme", lapsed) == {0: "A"}
        assert leases.take(session, "acme", 2, "C", lapsed) == 1
        assert leases.renew(session, "acme", "B", {1}, lapsed) == set()  # B finds it lost
        leases.free(session, "acme", "A", {0})
        assert leases.take(session, "acme", 2, "B", lapsed) == 0
        assert leases.holders(session, "acme", lapsed) == {0: "B", 1: "C"}


def test_many_takers_at_once_get_each_slot_once(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    with db.write() as session:
        leases.ensure_slots(session, "acme", 2)

    def try_take(holder: str) -> int | None:
        with db.write() as session:
            return leases.take(session, "acme", 2, holder, T0)

    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(try_take, [f"p{i}" for i in range(16)]))
    assert sorted(slot for slot in taken if slot is not None) == [0, 1]
    with db.read() as session:
        assert len(set(leases.holders(session, "acme", T0).values())) == 2


def test_members_share_the_slots(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    with db.write() as session:
        assert leases.seen(session, "a", T0) == 1
        assert leases.seen(session, "b", T0 + dt.timedelta(seconds=1)) == 2
        assert leases.seen(session, "a", T0 + leases.TTL + dt.timedelta(seconds=2)) == 1  # b not seen since
        leases.gone(session, "a", T0)
    assert [leases.share(2, live) for live in (1, 2, 3, 5)] == [2, 1, 1, 1]
    assert [leases.share(5, live) for live in (1, 2, 3)] == [5, 3, 2]


def leased(smsc: Smsc, **options: object) -> SmppCarrier:
    settings = dict(name="acme", host="127.0.0.1", port=smsc.port, system_id="pigeon", password="secret",
                    reconnect_min=0.05, reconnect_max=0.2, submit_timeout=5.0, response_timeout=3.0,
                    max_binds=2, throughput=200.0)
    settings.update(options)
    return SmppCarrier(CarrierSettings(**settings), leased=True)


class Process:
    """A delivering process in miniature: a leased carrier and its leases, on a shared database."""

    def __init__(self, db: Database, smsc: Smsc, name: str):
        self.carrier = leased(smsc)
        self.executor = ThreadPoolExecutor(1)
        self.leases = leases.BindLeases(db, self.executor, self.carrier, process=name)

    async def start(self) -> Process:
        await self.carrier.start(Collector())
        self.leases.start()
        return self

    def bound(self) -> int:
        return sum(1 for link in self.carrier.links if link.bound)

    async def die(self) -> None:
        """As SIGKILL would: renewals stop, the connections close, nothing is freed."""
        for task in (self.leases._task, self.leases._fence):
            if task is not None:
                task.cancel()
        for link in self.carrier.links:
            link._stopping = True
            link.drop()

    async def stop(self) -> None:
        self.leases.closing()
        await self.carrier.stop()
        await self.leases.stop()
        self.executor.shutdown()


class Processes:
    """Processes started on one SMSC and database; every one started is stopped at the end."""

    def __init__(self, db: Database, smsc: Smsc):
        self.db, self.smsc = db, smsc
        self.started: list[Process] = []

    async def start(self, name: str) -> Process:
        proc = Process(self.db, self.smsc, name)
        self.started.append(proc)
        return await proc.start()

    async def __aenter__(self) -> Processes:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.started:
            await proc.stop()


def test_three_processes_share_two_binds_and_a_dead_holders_bind_moves(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db

    async def run() -> None:
        account = {"system_id": "pigeon", "password": "secret", "max_binds": 2}
        async with Smsc(port=0, control_port=0, receipt_delay=0.0, accounts=[account]) as smsc:
            async with Processes(db, smsc) as cluster:
                procs = [await cluster.start(f"box:{i}") for i in range(3)]
                await until(lambda: sorted(p.bound() for p in procs) == [0, 1, 1], timeout=10)
                stats = smsc.stats()
                assert stats["binds_now"] == {"pigeon": 2} and stats["binds_over_limit"] == 0
                assert all(link.settings.throughput == 100.0 * HEADROOM for p in procs for link in p.carrier.links)
                # each holder paces a campaign at half its rate: the cluster's paces add up to it
                assert sorted(p.leases.share() for p in procs if p.bound()) == [0.5, 0.5]
                holder = next(p for p in procs if p.bound())
                standby = next(p for p in procs if not p.bound())
                assert standby.carrier.standby and not holder.carrier.standby
                died = time.monotonic()
                await holder.die()
                await until(lambda: standby.bound() == 1, timeout=12)
                moved = time.monotonic() - died
                assert moved < 10, moved
                await asyncio.sleep(2 * leases.EVERY)  # settled: still two binds, no third ever
                assert sorted(p.bound() for p in procs if p is not holder) == [1, 1]
                stats = smsc.stats()
                assert stats["peak_binds"] == {"pigeon": 2}
                assert stats["binds_over_limit"] == 0, "a bind was tried beyond the two the carrier allows"
            with db.read() as session:
                assert leases.holders(session, "acme", leases.now_of(session)) == {}

    asyncio.run(run())


def test_one_process_holds_every_slot_and_hands_one_back_when_another_comes(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db

    async def run() -> None:
        async with Smsc(port=0, control_port=0, receipt_delay=0.0) as smsc, Processes(db, smsc) as cluster:
            first = await cluster.start("box:1")
            await until(lambda: first.bound() == 2, timeout=10)  # alone: both slots, the whole rate
            assert first.leases.share() == 1.0
            second = await cluster.start("box:2")
            await until(lambda: (first.bound(), second.bound()) == (1, 1), timeout=10)
            assert first.leases.share() == second.leases.share() == 0.5
            assert smsc.stats()["peak_binds"]["pigeon"] == 2

    asyncio.run(run())


def test_a_process_that_cannot_renew_unbinds_before_its_lease_lapses(fresh_db: tuple[str, Database]) -> None:
    """PostgreSQL (other machines may take the lease): unbound at once, before it can lapse.
    SQLite (one machine; a stalled renewal is a busy writer): the bind is kept."""
    url, db = fresh_db

    async def run() -> None:
        async with Smsc(port=0, control_port=0, receipt_delay=0.0) as smsc, Processes(db, smsc) as cluster:
            proc = await cluster.start("box:1")
            await until(lambda: proc.bound() == 2, timeout=10)

            def unreachable(*_: object) -> None:
                raise ConnectionError("the database is unreachable")

            proc.leases._renew_and_take = unreachable  # type: ignore[method-assign]
            cut = time.monotonic()
            if url.startswith("sqlite"):
                assert not proc.leases.fences
                await asyncio.sleep(leases.FENCE + 1)
                assert proc.bound() == 2
                return
            await until(lambda: proc.bound() == 0, timeout=leases.TTL.total_seconds())
            fenced = time.monotonic() - cut
            assert fenced < leases.TTL.total_seconds() - 1, fenced  # before anyone may take them

    asyncio.run(run())
