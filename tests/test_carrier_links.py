"""Carrier links written by the process that holds them and read by any other, on both
backends: an upsert per report, staleness, the purge of long-gone processes; each carrier's
states (the simulator's one link, an SMPP carrier's binds), the rate made of their counts, and
the delivery engine reporting them every few seconds and forgetting them when it stops."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from test_smpp_carrier import Collector, carrier_for, sub, until

from pigeon.carriers.base import Outcome, Submission
from pigeon.carriers.router import Route, Router
from pigeon.carriers.settings import CarrierSettings, SimulatorSettings
from pigeon.carriers.simulator import SimulatedCarrier
from pigeon.carriers.smpp import SmppCarrier
from pigeon.config import DeliverySettings
from pigeon.db import Database, utcnow
from pigeon.delivery import links
from pigeon.delivery.engine import DeliveryEngine
from pigeon.delivery.models import CarrierLink
from pigeon.smpp import pdu as P
from pigeon.smsc.server import Smsc

T0 = dt.datetime(2026, 3, 1, 12, 0, 0)
SECOND = dt.timedelta(seconds=1)


def row(name: str, process: str = "host:1", state: str = "bound", **fields: object) -> links.Row:
    return links.Row(link=f"{name}@{process}", carrier=name.split("/")[0], process=process, state=state,
                     **fields)  # type: ignore[arg-type]


def test_report_upserts_and_current_reads_them_back(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    with db.write() as session:
        links.report(session, [row("acme/tx", window_used=3, window_size=64, sent_per_second=12.5, throughput=100.0),
                               row("simulator")], T0)
    with db.write() as session:  # the same link again: one row, its state as of now
        links.report(session, [row("acme/tx", state="down", last_error="the connection was lost",
                                   last_error_at=T0 + SECOND)], T0 + 2 * SECOND)
        links.report(session, [], T0 + 2 * SECOND)  # nothing to say: nothing written
    with db.read() as session:
        shown = links.current(session, T0 + 3 * SECOND, stale_after=5 * SECOND)
    assert [(s.row.carrier, s.row.link, s.state, s.stale) for s in shown] == [
        ("acme", "acme/tx@host:1", "down", False), ("simulator", "simulator@host:1", "bound", False)]
    acme = shown[0].row
    assert (acme.window_used, acme.window_size, acme.sent_per_second, acme.throughput) == (0, 0, 0.0, None)
    assert (acme.last_error, acme.last_error_at, acme.updated_at) == ("the connection was lost", T0 + SECOND,
                                                                     T0 + 2 * SECOND)
    assert shown[1].row.updated_at == T0


def test_a_link_not_reported_goes_stale_then_is_purged(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    with db.write() as session:
        links.report(session, [row("old", process="gone:7")], T0)
        links.report(session, [row("new", process="here:8")], T0 + 20 * SECOND)
    with db.read() as session:
        shown = {s.row.carrier: s for s in links.current(session, T0 + 21 * SECOND, stale_after=10 * SECOND)}
    assert shown["old"].stale and shown["old"].state == links.STALE and shown["old"].row.state == "bound"
    assert not shown["new"].stale and shown["new"].state == "bound"
    with db.write() as session:
        assert links.purge(session, T0 + 10 * SECOND) == 1
        assert links.forget(session, "nobody:1") == 0
    with db.read() as session:
        assert [s.row.carrier for s in links.current(session, T0 + 21 * SECOND)] == ["new"]
    with db.write() as session:
        assert links.forget(session, "here:8") == 1
    with db.read() as session:
        assert links.current(session, T0) == []


def test_long_texts_are_cut_to_their_columns(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    with db.write() as session:
        links.report(session, [links.Row(link="l" * 300, carrier="c" * 100, process="p" * 200, state="s" * 30,
                                         last_error="e" * 400, last_error_at=T0)], T0)
    with db.read() as session:
        (found,) = links.current(session, T0)
    assert (len(found.row.link), len(found.row.carrier), len(found.row.process), len(found.row.state),
            len(found.row.last_error or "")) == (160, 64, 96, 16, 255)


def test_the_reporter_turns_counts_into_rates() -> None:
    simulator = SimulatedCarrier(SimulatorSettings(delivery_delay=60))
    reporter = links.Reporter(Router([Route(simulator)]), process="box:42")

    async def submit(n: int) -> None:
        await simulator.submit([Submission(f"m{i}", "+27820000001", None, "hi", "GSM7", 1) for i in range(n)])

    (first,) = reporter.rows(100.0)
    assert first == links.Row(link="simulator@box:42", carrier="simulator", process="box:42", state="bound")
    asyncio.run(submit(30))
    (second,) = reporter.rows(102.0)
    assert second.sent_per_second == 15.0 and second.state == "bound"
    (third,) = reporter.rows(104.0)
    assert third.sent_per_second == 0.0


def test_an_smpp_carrier_reports_each_bind_and_why_it_is_down() -> None:
    """Over real TCP to Pigeon's SMSC simulator: both binds up, the window and the count of
    what went through the transmitter; the SMSC gone, each bind down with the reason."""

    async def run() -> None:
        async with Smsc(port=0, control_port=0, receipt_delay=0.0) as smsc:
            settings = CarrierSettings(name="acme", host="127.0.0.1", port=smsc.port, system_id="pigeon",
                                       password="secret", bind="transmitter+receiver", window=32, throughput=500,
                                       reconnect_min=0.05, reconnect_max=0.2)
            carrier = SmppCarrier(settings)
            await carrier.start(Collector())
            assert await carrier.wait_bound(5)
            tx, rx = carrier.link_states()
            assert (tx.name, tx.state, tx.window_used, tx.window_size, tx.sent, tx.throughput, tx.last_error) == (
                "acme/tx", "bound", 0, 32, 0, 500.0, None)
            assert (rx.name, rx.state, rx.window_size, rx.sent, rx.throughput) == ("acme/rx", "bound", 0, 0, None)
            results = await carrier.submit([sub(to=f"+2782{i:06d}1") for i in range(10)])
            assert all(r.outcome is Outcome.ACCEPTED for r in results), results
            assert carrier.link_states()[0].sent == 10
        # the SMSC is gone: the binds are unbound, then cannot connect again, and say so
        await until(lambda: all((s.last_error or "").startswith("cannot connect") for s in carrier.link_states()))
        tx, rx = carrier.link_states()
        assert tx.state == rx.state == "down"
        assert tx.last_error == rx.last_error
        assert tx.last_error.startswith(f"cannot connect to 127.0.0.1:{settings.port}: Connection refused")
        assert tx.last_error_at is not None and utcnow() - tx.last_error_at < dt.timedelta(seconds=5)
        await carrier.stop()

    asyncio.run(run())


def test_a_refused_bind_names_the_status() -> None:
    async def run() -> None:
        async with Smsc(port=0, control_port=0, receipt_delay=0.0) as smsc:
            carrier = carrier_for(smsc, password="wrong")
            await carrier.start(Collector())
            await until(lambda: carrier.link_states()[0].last_error is not None)
            (link,) = carrier.link_states()
            assert link.state != "bound" and smsc.stats()["bind_failures"] >= 1
            assert link.last_error == "bind refused: ESME_RINVPASWD (0x0000000E)"
            assert link.last_error_at is not None and utcnow() - link.last_error_at < dt.timedelta(seconds=5)
            await carrier.stop()

    asyncio.run(run())


def test_nothing_listening_names_the_address_and_a_later_bind_keeps_the_last_error() -> None:
    """Connection refused, then the SMSC comes up: bound, the refusal still shown; then the
    SMSC closes the connection: bound again, and that is the last error."""

    async def run() -> None:
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))  # bound but not listening: every connect is refused
        port = closed.getsockname()[1]
        carrier = SmppCarrier(CarrierSettings(name="acme", host="127.0.0.1", port=port, system_id="pigeon",
                                              password="secret", reconnect_min=0.05, reconnect_max=0.2))
        reporter = links.Reporter(carrier, process="box:1")
        await carrier.start(Collector())
        try:
            await until(lambda: carrier.link_states()[0].last_error is not None)
            (down,) = carrier.link_states()
            assert down.state == "down"
            assert down.last_error is not None
            assert down.last_error.startswith(f"cannot connect to 127.0.0.1:{port}: Connection refused"), down
            (row,) = reporter.rows(1.0)
            assert (row.state, row.last_error, row.last_error_at) == ("down", down.last_error, down.last_error_at)
            closed.close()
            async with Smsc(port=port, control_port=0, receipt_delay=0.0) as smsc:
                assert await carrier.wait_bound(5)
                (up,) = carrier.link_states()
                assert up.state == "bound" and up.last_error is not None
                assert up.last_error.startswith(f"cannot connect to 127.0.0.1:{port}")
                smsc.set_modes(drop_after=1)
                (result,) = await carrier.submit([sub()])  # written, dropped, written again after the rebind
                assert result.outcome is Outcome.ACCEPTED and carrier.tx.binds == 2
                (again,) = carrier.link_states()
                assert (again.state, again.last_error) == ("bound", "the SMSC closed the connection")
                assert again.last_error_at is not None and up.last_error_at is not None
                assert again.last_error_at >= up.last_error_at
                await carrier.stop()
        finally:
            closed.close()
            await carrier.stop()

    asyncio.run(run())


def test_throttling_is_a_link_error_and_a_bad_number_is_not() -> None:
    async def run() -> None:
        async with Smsc(port=0, control_port=0, receipt_delay=0.0) as smsc:
            carrier = carrier_for(smsc, submit_timeout=20)
            await carrier.start(Collector())
            assert await carrier.wait_bound(5)
            (refused,) = await carrier.submit([sub(to="+27821234000")])  # the simulator refuses numbers ending 000
            assert (refused.outcome, refused.error_code) == (Outcome.REJECTED, "ESME_RINVDSTADR")
            (link,) = carrier.link_states()
            assert (link.state, link.last_error, link.last_error_at) == ("bound", None, None)
            smsc.set_modes(throttle=10)
            results = await carrier.submit([sub(to=f"+2782{i:06d}1") for i in range(20)])
            assert all(r.outcome is Outcome.ACCEPTED for r in results) and smsc.stats()["throttled"] > 0
            (link,) = carrier.link_states()
            assert (link.state, link.last_error) == ("bound", "throttled by the SMSC (ESME_RTHROTTLED)")
            assert link.last_error_at is not None and utcnow() - link.last_error_at < dt.timedelta(seconds=5)
            await carrier.stop()

    asyncio.run(run())


def test_an_smsc_that_stops_answering_enquire_link_is_the_last_error() -> None:
    """A peer that accepts the bind and then says nothing: the client gives up on it."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = P.Decoder()
        while data := await reader.read(4096):
            for pdu in decoder.feed(data):
                if pdu.command_id == P.CommandId.BIND_TRANSCEIVER:
                    writer.write(P.encode(P.response(pdu, system_id="mute")))

    async def run() -> None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        carrier = SmppCarrier(CarrierSettings(name="acme", host="127.0.0.1", port=port, system_id="pigeon",
                                              password="secret", enquire_link=0.1, reconnect_min=5))
        await carrier.start(Collector())
        try:
            assert await carrier.wait_bound(5)
            await until(lambda: carrier.link_states()[0].last_error is not None)
            (link,) = carrier.link_states()
            assert link.last_error == "the SMSC stopped answering enquire_link (3 unanswered)"
        finally:
            await carrier.stop()
            server.close()

    asyncio.run(run())


def test_the_engine_reports_its_links_and_forgets_them_when_it_stops(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db

    async def run() -> tuple[list[CarrierLink], list[CarrierLink], list[CarrierLink]]:
        carrier = SimulatedCarrier(SimulatorSettings(delivery_delay=0.05))
        executor = ThreadPoolExecutor(1)

        class Events:
            def receipt(self, receipt: object) -> None: ...
            def inbound(self, message: object) -> None: ...
            async def flushed(self) -> None: ...

        await carrier.start(Events())
        engine = DeliveryEngine(db, carrier, DeliverySettings(poll_interval=0.05), executor, report_links=0.1)
        engine.start()
        try:
            await asyncio.sleep(0.05)
            first = read()
            await asyncio.sleep(0.3)
            later = read()
        finally:
            await engine.stop()
            await carrier.stop()
            executor.shutdown()
        return first, later, read()

    def read() -> list[CarrierLink]:
        with db.read() as session:
            return list(session.scalars(select(CarrierLink)))

    started = time.monotonic()
    first, later, after = asyncio.run(run())
    assert len(first) == 1 and first[0].carrier == "simulator" and first[0].state == "bound"
    assert first[0].process == links.this_process() and first[0].link == f"simulator@{links.this_process()}"
    assert later[0].updated_at > first[0].updated_at  # reported again
    assert utcnow() - later[0].updated_at < dt.timedelta(seconds=time.monotonic() - started + 1)
    assert after == []  # stopped: forgotten
