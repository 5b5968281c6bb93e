"""`pigeon smsc`, the simulated carrier SMSC: over real TCP on loopback.

The SMSC runs in the test's own event loop (``asyncio.run`` per test); the ESME side is a
tiny client written here with ``pigeon.smpp.pdu`` alone. One test runs the real command.
"""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from smpp_pair import Wire

from conftest import free_port
from pigeon.smpp import pdu as P
from pigeon.smpp.coding import Reassembler, decode_message
from pigeon.smpp.pdu import CommandId, Status, Tag
from pigeon.smsc.engine import (
    Engine,
    Rules,
    check_bind,
    encode_receipt,
    excerpt,
    format_id,
    receipt_id,
    receipt_text,
    wants_receipt,
)
from pigeon.smsc.server import Smsc
from pigeon.smsc.settings import ConfigError, Rule, SmscSettings, load_settings

TIMEOUT = 3.0
HEADER = struct.Struct(">IIII")


# ---------------------------------------------------------------------------------------
# A minimal ESME


class Esme:
    """An SMPP client on a real socket: write PDUs, read PDUs, nothing else."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = P.Decoder()
        self.queue: list[P.Pdu] = []
        self.sequence = 100
        self.eof = False

    @classmethod
    async def connect(cls, port: int) -> Esme:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def send(self, *pdus: P.Pdu) -> None:
        self.writer.write(b"".join(P.encode(p) for p in pdus))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.eof:
            return False
        try:
            data = await asyncio.wait_for(self.reader.read(65536), remaining)
        except TimeoutError:
            return False
        except ConnectionError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.queue.extend(self.decoder.feed(data))
        return True

    async def read(self, count: int = 1, timeout: float = TIMEOUT) -> list[P.Pdu]:
        """Exactly ``count`` PDUs, in arrival order (fails on timeout or EOF)."""
        deadline = time.monotonic() + timeout
        while len(self.queue) < count:
            if not await self._fill(deadline):
                raise AssertionError(f"wanted {count} PDUs, got {len(self.queue)}: {self.queue} (eof={self.eof})")
        out, self.queue = self.queue[:count], self.queue[count:]
        return out

    async def read_one(self, timeout: float = TIMEOUT) -> P.Pdu:
        return (await self.read(1, timeout))[0]

    async def nothing(self, seconds: float) -> None:
        """Assert that no PDU arrives for ``seconds``."""
        deadline = time.monotonic() + seconds
        while await self._fill(deadline):
            pass
        assert not self.queue, self.queue

    async def closed(self, timeout: float = TIMEOUT) -> list[P.Pdu]:
        """Wait for the server to close the connection; the PDUs that came before."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not await self._fill(deadline) and not self.eof:
                raise AssertionError(f"connection still open; got {self.queue}")
        out, self.queue = self.queue, []
        return out

    async def bind(self, kind: str = "transceiver", system_id: str = "pigeon", password: str = "secret") -> P.Pdu:
        make = {"transceiver": P.bind_transceiver, "transmitter": P.bind_transmitter,
                "receiver": P.bind_receiver}[kind]
        self.send(make(self.next_sequence(), system_id=system_id, password=password))
        return await self.read_one()

    def submit_pdu(self, destination: str = "27821234567", text: bytes = b"hello", registered: int = 1,
                   **fields: object) -> P.Pdu:
        return P.submit_sm(self.next_sequence(), source_addr="27820000001", destination_addr=destination,
                           registered_delivery=registered, short_message=text, **fields)

    async def submit(self, destination: str = "27821234567", text: bytes = b"hello", registered: int = 1,
                     **fields: object) -> P.Pdu:
        pdu = self.submit_pdu(destination, text, registered, **fields)
        self.send(pdu)
        resp = await self.read_one()
        assert resp.command_id == CommandId.SUBMIT_SM_RESP and resp.sequence == pdu.sequence, resp
        return resp

    async def receipt(self, timeout: float = TIMEOUT, ack: bool = True) -> P.Pdu:
        pdu = await self.read_one(timeout)
        assert pdu.command_id == CommandId.DELIVER_SM, pdu
        if ack:
            self.send(P.response(pdu, 0))
        return pdu

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def run(test: Callable[[Smsc], Awaitable[None]], **settings: object) -> None:
    """Run ``test`` against a fresh in-process Smsc on a free port."""
    settings.setdefault("port", 0)
    settings.setdefault("control_port", 0)
    settings.setdefault("receipt_delay", 0.0)

    async def main() -> None:
        smsc = Smsc(SmscSettings(**settings))
        await smsc.start()
        try:
            await asyncio.wait_for(test(smsc), 30)
        finally:
            await smsc.stop()

    asyncio.run(main())


async def bound(smsc: Smsc, kind: str = "transceiver", **kw: str) -> Esme:
    esme = await Esme.connect(smsc.port)
    resp = await esme.bind(kind, **kw)
    assert resp.status == 0, resp
    return esme


# ---------------------------------------------------------------------------------------
# Pure parts


def test_check_bind() -> None:
    accounts = {"pigeon": "secret"}
    assert check_bind(accounts, False, "pigeon", "secret") == Status.ESME_ROK
    assert check_bind(accounts, False, "pigeon", "wrong") == Status.ESME_RINVPASWD
    assert check_bind(accounts, False, "nobody", "secret") == Status.ESME_RINVSYSID
    assert check_bind(accounts, True, "pigeon", "secret") == Status.ESME_RALYBND


def test_wants_receipt() -> None:
    assert not wants_receipt(0, "DELIVRD")
    assert wants_receipt(1, "DELIVRD") and wants_receipt(1, "UNDELIV")
    assert not wants_receipt(2, "DELIVRD") and wants_receipt(2, "UNDELIV")
    assert wants_receipt(0x11, "DELIVRD")  # intermediate-notification bit ignored
    assert not wants_receipt(0x10, "DELIVRD")


def test_rules_first_match_and_seeded_outcomes() -> None:
    rules = Rules([Rule(pattern="1$", stat="EXPIRED"), Rule(pattern="1", submit_status=0x58)])
    assert rules.decide("271") == ("EXPIRED", "001", 0, False)
    assert rules.decide("2712") == ("DELIVRD", "000", 0x58, False)
    assert rules.decide("272") == ("DELIVRD", "000", 0, False)
    draw = Rules([], {"DELIVRD": 0.5, "UNDELIV": 0.5}, seed=7)
    stats = [draw.decide("27")[0] for _ in range(1000)]
    assert 400 < stats.count("UNDELIV") < 600 and set(stats) == {"DELIVRD", "UNDELIV"}
    again = Rules([], {"DELIVRD": 0.5, "UNDELIV": 0.5}, seed=7)
    assert [again.decide("27")[0] for _ in range(1000)] == stats
    assert Rules([], {"UNDELIV": 1}).decide("27") == ("UNDELIV", "001", 0, False)


def test_ids_and_receipt_text() -> None:
    assert format_id(0xABC, "hex") == "abc"
    assert format_id(0xABC, "decimal") == "2748"
    assert format_id(0xABC, "hex_upper_padded") == "0000000ABC"
    assert receipt_id(0xABC, "abc", "same") == "abc"
    assert receipt_id(0xABC, "abc", "decimal") == "2748"
    assert receipt_id(0xABC, "abc", "padded") == "0000000abc"
    text = receipt_text("abc", "UNDELIV", "001", "2401020304", "2401020305", b"hi there")
    assert text == (b"id:abc sub:001 dlvrd:000 submit date:2401020304 done date:2401020305 "
                    b"stat:UNDELIV err:001 text:hi there")
    receipt = P.parse_receipt(text)
    assert receipt is not None and (receipt.message_id, receipt.stat, receipt.err) == ("abc", "UNDELIV", "001")
    assert excerpt(b"\x05\x00\x03\x01\x02\x01Hello\x00\x1b world, a long one", 0, 0x40) == b"Hello.. world, a lon"
    assert excerpt("Καλημέρα héllo".encode("utf-16-be"), 8) == b"???????? h?llo"
    wire = encode_receipt(9, {"source_addr": "111", "destination_addr": "222", "dest_addr_ton": 1}, text, b"")
    (decoded,) = P.Decoder().feed(wire)
    assert decoded.command_id == CommandId.DELIVER_SM and decoded.sequence == 9
    assert decoded.body["source_addr"] == "222" and decoded.body["destination_addr"] == "111"
    assert decoded.body["source_addr_ton"] == 1 and decoded.body["esm_class"] == 0x04
    assert decoded.body["short_message"] == text


def test_engine_without_sockets() -> None:
    """The simulator's engine runs on a fake clock with no transport: bytes in, bytes out."""

    wire = Wire(receipt_delay=0.5)
    wire.clock.now = 10.0
    esme = wire.connect()
    bind_resp, submit_resp = wire.send(
        esme, P.bind_transceiver(1, system_id="pigeon", password="secret"),
        P.submit_sm(2, destination_addr="27821234567", registered_delivery=1, short_message=b"x"))
    assert bind_resp.status == 0 and submit_resp.body["message_id"] == "1a2b3c"
    wire.clock.advance(0.4)
    wire.tick()
    assert not wire.take(esme) and wire.engine.pending == 1
    wire.clock.advance(0.1)
    wire.tick()
    (receipt,) = wire.take(esme)
    assert receipt.tlvs[Tag.RECEIPTED_MESSAGE_ID] == b"1a2b3c\0" and wire.engine.pending == 0


@pytest.mark.parametrize("receipt_id_format", ["same", "decimal", "padded"])
@pytest.mark.parametrize(("stat", "err", "tlvs"), [("DELIVRD", "000", True), ("UNDELIV", "042", True),
                                                   ("EXPIRED", "001", False)])
def test_fast_receipt_matches_the_reference(receipt_id_format: str, stat: str, err: str, tlvs: bool) -> None:
    from pigeon.smsc.engine import Message, receipt_tlvs

    engine = Engine(SmscSettings(receipt_id_format=receipt_id_format, receipt_tlvs=tlvs))
    submit = P.submit_sm(3, source_addr="27820000001", source_addr_ton=1, source_addr_npi=1,
                         destination_addr="12345", dest_addr_ton=3, esm_class=0x40, data_coding=0,
                         short_message=b"\x05\x00\x03\x07\x02\x01" + b"Hello \x1b\x14 world, and more")
    message = Message(0xABC, "abc", "pigeon", submit, stat, err, 0, 1_700_000_000.0)
    wall = 1_700_000_090.0
    text = receipt_text(receipt_id(0xABC, "abc", receipt_id_format), stat, err, engine.date(message.submitted),
                        engine.date(wall), excerpt(submit.body["short_message"], 0, 0x40))
    expected = encode_receipt(17, submit.body, text, receipt_tlvs("abc", stat, err) if tlvs else b"")
    assert engine.receipt_pdu(17, message, wall) == expected
    (decoded,) = P.Decoder().feed(expected)
    assert decoded.body["source_addr_ton"] == 3 and decoded.body["destination_addr"] == "27820000001"
    assert P.parse_receipt(decoded.body["short_message"]).submit_date == "2311142213"


# ---------------------------------------------------------------------------------------
# Settings and configuration files


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    settings = SmscSettings()
    assert (settings.host, settings.port, settings.receipt_delay) == ("127.0.0.1", 2775, 1.0)
    assert [(a.system_id, a.password) for a in settings.accounts] == [("pigeon", "secret")]
    assert [r.pattern for r in settings.rules] == ["000$", "666$", "999$"]
    assert settings.rules[0].submit_status == 0x0B and settings.rules[2].no_receipt
    path = tmp_path / "smsc.toml"
    path.write_text('port = 3000\nreceipt_delay = 0.2\n[[accounts]]\nsystem_id = "a"\npassword = "b"\n'
                    '[[rules]]\npattern = "5$"\nstat = "EXPIRED"\n[outcomes]\nDELIVRD = 1\n')
    loaded = load_settings(path, port=4000, receipt_delay=None)
    assert loaded.port == 4000 and loaded.receipt_delay == 0.2
    assert loaded.accounts[0].system_id == "a" and loaded.rules[0].err == "001"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("port = [", None, "not valid TOML"),
        ("prot = 1", "prot", "unknown key"),
        ("port = 'x'", "port", "integer"),
        ('[[rules]]\npattern = "("', "rules[0].pattern", "not a regular expression"),
        ('[[rules]]\npattern = "1"\nstat = "LOST"', "rules[0].stat", "DELIVRD"),
        ('[[rules]]\npattern = "1"\nerr = "1"', "rules[0].err", "3 digits"),
        ("id_format = 'octal'", "id_format", "hex"),
        ("[outcomes]\nDELIVRD = 0", "outcomes", "more than 0"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, key: str | None, reason: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.file == str(path) and info.value.key == key
    assert reason in info.value.reason and str(path) in str(info.value)


def test_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.toml")


# ---------------------------------------------------------------------------------------
# Binding


def test_bind_outcomes() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await Esme.connect(smsc.port)
        # submit before bind
        esme.send(esme.submit_pdu())
        resp = await esme.read_one()
        assert resp.command_id == CommandId.SUBMIT_SM_RESP and resp.status == Status.ESME_RINVBNDSTS
        assert (await esme.bind(password="wrong")).status == Status.ESME_RINVPASWD
        assert (await esme.bind(system_id="nobody")).status == Status.ESME_RINVSYSID
        ok = await esme.bind()
        assert ok.command_id == CommandId.BIND_TRANSCEIVER_RESP and ok.status == 0
        assert ok.body["system_id"] == "pigeon-smsc" and ok.tlvs[Tag.SC_INTERFACE_VERSION] == b"\x34"
        again = await esme.bind("transmitter")
        assert again.command_id == CommandId.BIND_TRANSMITTER_RESP and again.status == Status.ESME_RALYBND
        # a receiver may not submit
        receiver = await bound(smsc, "receiver")
        receiver.send(receiver.submit_pdu())
        assert (await receiver.read_one()).status == Status.ESME_RINVBNDSTS
        stats = smsc.stats()
        assert stats["binds"] == 2 and stats["bind_failures"] == 3
        assert sorted(s["bind"] for s in stats["sessions"] if s["bind"]) == ["receiver", "transceiver"]

    run(test, accounts=[{"system_id": "pigeon", "password": "secret"}])


def test_several_accounts() -> None:
    async def test(smsc: Smsc) -> None:
        a = await bound(smsc, system_id="a", password="pa")
        b = await bound(smsc, system_id="b", password="pb")
        await a.submit(text=b"for a")
        await b.submit(text=b"for b")
        assert P.parse_receipt((await a.receipt()).body["short_message"]).text == "for a"
        assert P.parse_receipt((await b.receipt()).body["short_message"]).text == "for b"

    run(test, accounts=[{"system_id": "a", "password": "pa"}, {"system_id": "b", "password": "pb"}])


# ---------------------------------------------------------------------------------------
# submit_sm and receipts


def test_submit_and_receipt() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        started = time.monotonic()
        resp = await esme.submit(text=b"Hello from Pigeon, this is long")
        assert resp.status == 0 and resp.body["message_id"] == "1a2b3c"
        receipt = await esme.receipt()
        assert time.monotonic() - started >= 0.2
        body = receipt.body
        assert body["esm_class"] == 0x04 and body["data_coding"] == 0
        assert body["source_addr"] == "27821234567" and body["destination_addr"] == "27820000001"
        parsed = P.parse_receipt(body["short_message"])
        assert parsed is not None
        assert (parsed.message_id, parsed.stat, parsed.err) == ("1a2b3c", "DELIVRD", "000")
        assert parsed.text == "Hello from Pigeon, t"
        assert len(parsed.submit_date) == 10 and len(parsed.done_date) == 10
        assert b"sub:001 dlvrd:001 " in body["short_message"]
        assert receipt.tlvs[Tag.RECEIPTED_MESSAGE_ID] == b"1a2b3c\0"
        assert receipt.tlvs[Tag.MESSAGE_STATE] == b"\x02"
        assert Tag.NETWORK_ERROR_CODE not in receipt.tlvs
        await asyncio.sleep(0.05)
        stats = smsc.stats()
        assert stats["receipts_sent"] == 1 and stats["deliver_sm_resp"] == 1 and stats["receipts_pending"] == 0
        second = await esme.submit()
        assert second.body["message_id"] == "1a2b3d"

    run(test, receipt_delay=0.2)


def test_no_receipt_unless_asked() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        await esme.submit(registered=0)
        await esme.submit(registered=2)  # failure only, and it is delivered
        await esme.nothing(0.3)
        resp = await esme.submit("27821234666", registered=2)
        receipt = await esme.receipt()
        assert P.parse_receipt(receipt.body["short_message"]).message_id == resp.body["message_id"]
        assert smsc.stats()["accepted"] == 3

    run(test)


def test_default_rules() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        refused = await esme.submit("27821234000")
        assert refused.status == Status.ESME_RINVDSTADR and refused.body == {}
        failed = await esme.submit("27821234666", text=b"doomed")
        receipt = await esme.receipt()
        parsed = P.parse_receipt(receipt.body["short_message"])
        assert (parsed.message_id, parsed.stat, parsed.err) == (failed.body["message_id"], "UNDELIV", "001")
        assert b"dlvrd:000" in receipt.body["short_message"]
        assert receipt.tlvs[Tag.MESSAGE_STATE] == b"\x05"
        assert receipt.tlvs[Tag.NETWORK_ERROR_CODE] == b"\x03\x00\x01"
        await esme.submit("27821234999")
        await esme.nothing(0.3)
        stats = smsc.stats()
        assert (stats["submit_sm"], stats["accepted"], stats["rejected"]) == (3, 2, 1)

    run(test)


def test_configured_rules_and_outcomes() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        assert (await esme.submit("27821230058")).status == 0x58
        await esme.submit("27821230003")
        parsed = P.parse_receipt((await esme.receipt()).body["short_message"])
        assert (parsed.stat, parsed.err) == ("EXPIRED", "042")
        await esme.submit("27821234000")  # the default rules are replaced
        parsed = P.parse_receipt((await esme.receipt()).body["short_message"])
        assert (parsed.stat, parsed.err) == ("REJECTD", "001")

    run(test, rules=[{"pattern": "58$", "submit_status": 0x58}, {"pattern": "3$", "stat": "EXPIRED", "err": "042"}],
        outcomes={"REJECTD": 1.0}, seed=1)


@pytest.mark.parametrize(
    ("id_format", "receipt_id_format", "answered", "reported"),
    [
        ("hex", "same", "abc", "abc"),
        ("decimal", "same", "2748", "2748"),
        ("hex_upper_padded", "same", "0000000ABC", "0000000ABC"),
        ("hex", "decimal", "abc", "2748"),
        ("hex", "padded", "abc", "0000000abc"),
    ],
)
def test_id_formats(id_format: str, receipt_id_format: str, answered: str, reported: str) -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        resp = await esme.submit()
        assert resp.body["message_id"] == answered
        receipt = await esme.receipt()
        assert P.parse_receipt(receipt.body["short_message"]).message_id == reported
        assert receipt.tlvs[Tag.RECEIPTED_MESSAGE_ID] == answered.encode() + b"\0"

    run(test, id_format=id_format, receipt_id_format=receipt_id_format, first_id=0xABC)


def test_receipt_tlvs_off_and_ucs2_excerpt() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        await esme.submit(text="Привет, Pigeon".encode("utf-16-be"), data_coding=8)
        receipt = await esme.receipt()
        assert receipt.tlvs == {}
        assert P.parse_receipt(receipt.body["short_message"]).text == "??????, Pigeon"

    run(test, receipt_tlvs=False)


def test_window_of_64_in_one_write() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        pdus = [esme.submit_pdu(text=b"m%d" % i) for i in range(64)]
        esme.send(*pdus)
        got = await esme.read(128)
        resps = [p for p in got if p.command_id == CommandId.SUBMIT_SM_RESP]
        receipts = [p for p in got if p.command_id == CommandId.DELIVER_SM]
        assert [r.sequence for r in resps] == [p.sequence for p in pdus]
        assert all(r.status == 0 for r in resps)
        ids = [r.body["message_id"] for r in resps]
        assert len(set(ids)) == 64
        assert [P.parse_receipt(r.body["short_message"]).message_id for r in receipts] == ids
        esme.send(*[P.response(r, 0) for r in receipts])
        await asyncio.sleep(0.05)
        assert smsc.stats()["deliver_sm_resp"] == 64

    run(test)


def test_concatenated_submit_parts_are_messages() -> None:
    from pigeon.smpp.coding import encode_parts

    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        parts = encode_parts("x" * 300, reference=7)
        assert len(parts) == 2
        ids = []
        for part in parts:
            resp = await esme.submit(text=part.short_message, esm_class=part.esm_class)
            ids.append(resp.body["message_id"])
        receipts = [await esme.receipt(), await esme.receipt()]
        assert sorted(P.parse_receipt(r.body["short_message"]).message_id for r in receipts) == sorted(ids)
        assert P.parse_receipt(receipts[0].body["short_message"]).text == "x" * 20
        messages = smsc.messages(2)
        assert [m["id"] for m in messages] == ids and messages[0]["text"] == "x" * 153

    run(test)


# ---------------------------------------------------------------------------------------
# Modes


def test_throttle_mode() -> None:
    """On the fake clock: no waiting for the start of a second (this test used to sleep for it)."""
    wire = Wire(throttle=5)
    wire.clock.now = 100.0
    esme = wire.bind()
    got = wire.send(esme, *[P.submit_sm(10 + i, destination_addr="27821234567") for i in range(8)])
    assert [p.status for p in got] == [0] * 5 + [Status.ESME_RTHROTTLED] * 3
    assert wire.engine.stats()["throttled"] == 3
    wire.clock.advance(0.99)  # the same second: still throttled
    assert wire.send(esme, P.submit_sm(20, destination_addr="27821234567"))[0].status == Status.ESME_RTHROTTLED
    wire.clock.advance(0.01)  # the next second: five more
    got = wire.send(esme, *[P.submit_sm(30 + i, destination_addr="27821234567") for i in range(6)])
    assert [p.status for p in got] == [0] * 5 + [Status.ESME_RTHROTTLED]
    wire.engine.set_modes(throttle=None)
    got = wire.send(esme, *[P.submit_sm(40 + i, destination_addr="27821234567") for i in range(8)])
    assert all(p.status == 0 for p in got)


def test_queue_full_mode() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        esme.send(*[esme.submit_pdu() for _ in range(5)])
        statuses = [p.status for p in await esme.read(5)]
        assert statuses == [0, 0, 0, Status.ESME_RMSGQFUL, Status.ESME_RMSGQFUL]
        assert smsc.stats()["queue_full"] == 2 and smsc.stats()["receipts_pending"] == 3
        smsc.set_modes(receipt_delay=0)
        for _ in range(3):
            await esme.receipt()
        assert (await esme.submit()).status == 0

    run(test, queue_full_after=3, receipt_delay=30)


def test_response_delay_mode() -> None:
    """On the fake clock (this test used to wait the delay out for real)."""
    wire = Wire()
    esme = wire.bind()
    wire.engine.set_modes(response_delay=0.3)
    pdus = [P.submit_sm(10 + i, destination_addr="27821234567") for i in range(3)]
    (link,) = wire.send(esme, *pdus, P.enquire_link(7))  # not delayed
    assert link.command_id == CommandId.ENQUIRE_LINK_RESP
    assert wire.engine.has_work()
    wire.clock.advance(0.29)
    wire.tick()
    assert wire.take(esme) == []
    wire.clock.advance(0.01)
    wire.tick()
    resps = wire.take(esme)
    assert [r.sequence for r in resps] == [p.sequence for p in pdus] and not wire.engine.has_work()
    wire.engine.set_modes(response_delay=None)
    (resp,) = wire.send(esme, P.submit_sm(20, destination_addr="27821234567"))
    assert resp.status == 0


def test_drop_after_mode() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        smsc.set_modes(drop_after=3)
        pdus = [esme.submit_pdu(registered=0) for _ in range(5)]
        esme.send(*pdus)
        before = await esme.closed()
        assert [p.sequence for p in before] == [pdus[0].sequence, pdus[1].sequence]
        stats = smsc.stats()
        assert stats["drops"] == 1 and stats["modes"]["drop_after"] is None and stats["submit_sm"] == 3
        again = await bound(smsc)  # one-shot: the next connection works
        assert (await again.submit(registered=0)).status == 0

    run(test)


def test_drop_after_counts_across_chunks() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        await esme.submit(registered=0)
        await esme.submit(registered=0)
        esme.send(esme.submit_pdu(registered=0))
        assert await esme.closed() == []

    run(test, drop_after=3)


def test_receipt_before_response_mode() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        pdu = esme.submit_pdu()
        esme.send(pdu)
        receipt, resp = await esme.read(2)
        assert receipt.command_id == CommandId.DELIVER_SM and resp.command_id == CommandId.SUBMIT_SM_RESP
        assert P.parse_receipt(receipt.body["short_message"]).message_id == resp.body["message_id"]
        # with a separate receiver, its receipt is written before the transmitter's response
        await esme.close()
        await asyncio.sleep(0.05)
        tx = await bound(smsc, "transmitter")
        rx = await bound(smsc, "receiver")
        smsc.set_modes(receipt_before_response=True)
        resp = await tx.submit()
        receipt = await rx.receipt()
        assert P.parse_receipt(receipt.body["short_message"]).message_id == resp.body["message_id"]

    run(test, receipt_before_response=True, receipt_delay=5)


def test_mode_validation() -> None:
    async def test(smsc: Smsc) -> None:
        with pytest.raises(ValueError, match="unknown mode"):
            smsc.set_modes(speed=1)
        with pytest.raises(ValueError):
            smsc.set_modes(throttle=-1)
        assert smsc.set_modes(throttle=10, receipt_delay=None)["receipt_delay"] == 0.0
        assert smsc.modes()["throttle"] == 10

    run(test)


# ---------------------------------------------------------------------------------------
# Routing of receipts


def test_receipts_go_to_the_receiver_round_robin_and_wait_for_one() -> None:
    async def test(smsc: Smsc) -> None:
        tx = await bound(smsc, "transmitter")
        await tx.submit(text=b"held")
        await asyncio.sleep(0.1)
        assert smsc.stats()["receipts_pending"] == 1
        rx1 = await bound(smsc, "receiver")
        assert P.parse_receipt((await rx1.receipt()).body["short_message"]).text == "held"
        rx2 = await bound(smsc, "receiver")
        for _ in range(4):
            await tx.submit()
        got1 = [await rx1.receipt() for _ in range(2)]
        got2 = [await rx2.receipt() for _ in range(2)]
        assert len(got1) == len(got2) == 2
        await tx.nothing(0.1)

    run(test)


def test_unacknowledged_receipt_is_sent_again() -> None:
    async def test(smsc: Smsc) -> None:
        tx = await bound(smsc, "transmitter")
        rx = await bound(smsc, "receiver")
        resp = await tx.submit()
        first = await rx.receipt(ack=False)
        await rx.close()
        rx2 = await bound(smsc, "receiver")
        second = await rx2.receipt()
        assert first.body["short_message"] == second.body["short_message"]
        assert P.parse_receipt(second.body["short_message"]).message_id == resp.body["message_id"]
        await asyncio.sleep(0.05)
        assert smsc.stats()["receipts_requeued"] == 1

    run(test)


# ---------------------------------------------------------------------------------------
# Session housekeeping


def test_enquire_link_both_ways() -> None:
    """On the fake clock (this test used to wait three real intervals for the close)."""
    wire = Wire()
    esme = wire.bind()
    (resp,) = wire.send(esme, P.enquire_link(42))
    assert (resp.command_id, resp.sequence, resp.status) == (CommandId.ENQUIRE_LINK_RESP, 42, 0)
    wire.clock.advance(0.9)
    wire.links(1.0)
    assert wire.take(esme) == []  # not yet due
    wire.clock.advance(0.1)
    wire.links(1.0)
    (link,) = wire.take(esme)  # the SMSC's own
    assert link.command_id == CommandId.ENQUIRE_LINK
    assert wire.send(esme, P.response(link)) == [] and esme.smpp.links_unanswered == 0
    sent = []
    for _ in range(4):  # now stay silent: closed after three unanswered
        wire.clock.advance(1.0)
        wire.links(1.0)
        sent += wire.take(esme)
    assert [p.command_id for p in sent] == [CommandId.ENQUIRE_LINK] * 3
    assert wire.is_closed(esme) and wire.engine.stats()["drops"] == 1


def test_enquire_link_before_bind_and_unbind() -> None:
    wire = Wire()
    esme = wire.connect()
    assert wire.send(esme, P.enquire_link(1))[0].command_id == CommandId.ENQUIRE_LINK_RESP
    assert wire.send(esme, P.bind_transceiver(2, system_id="pigeon", password="secret"))[0].status == 0
    (resp,) = wire.send(esme, P.unbind(5))
    assert (resp.command_id, resp.sequence, resp.status) == (CommandId.UNBIND_RESP, 5, 0)
    assert wire.is_closed(esme)


def test_unknown_command_and_unexpected_request() -> None:
    wire = Wire()
    esme = wire.bind()
    (nack,) = wire.send(esme, raw=HEADER.pack(16, 0x00000103, 0, 77))  # data_sm: not supported
    assert (nack.command_id, nack.status, nack.sequence) == (CommandId.GENERIC_NACK, Status.ESME_RINVCMDID, 77)
    (nack,) = wire.send(esme, P.deliver_sm(78, short_message=b"from an ESME?"))
    assert (nack.command_id, nack.status, nack.sequence) == (CommandId.GENERIC_NACK, Status.ESME_RINVCMDID, 78)
    (resp,) = wire.send(esme, P.submit_sm(79, destination_addr="27821234567"))
    assert resp.status == 0  # still usable


def test_garbage_gets_nack_and_close() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        esme.send_raw(P.encode(P.enquire_link(3)) + b"\x00\x00\x00\x05garbage!" * 3)
        before = await esme.closed()
        assert [p.command_id for p in before] == [CommandId.ENQUIRE_LINK_RESP, CommandId.GENERIC_NACK]
        assert before[1].status == Status.ESME_RINVCMDLEN
        # a malformed body is recoverable: nack, and the session goes on
        other = await bound(smsc)
        other.send_raw(HEADER.pack(20, CommandId.SUBMIT_SM, 0, 9) + b"\x01\x02\x03\x04")
        nack = await other.read_one()
        assert (nack.command_id, nack.status, nack.sequence) == (CommandId.GENERIC_NACK, Status.ESME_RINVMSGLEN, 9)
        assert (await other.submit(registered=0)).status == 0

    run(test)


def test_stop_unbinds_sessions() -> None:
    async def main() -> None:
        smsc = Smsc(SmscSettings(port=0, control_port=0))
        await smsc.start()
        esme = await bound(smsc)
        idle = await Esme.connect(smsc.port)
        stopping = asyncio.create_task(smsc.stop())
        unbind = await esme.read_one()
        assert unbind.command_id == CommandId.UNBIND
        esme.send(P.response(unbind))
        assert await esme.closed() == []
        assert await idle.closed() == []
        await stopping

    asyncio.run(main())


# ---------------------------------------------------------------------------------------
# MO messages and the control endpoint


async def _http(method: str, url: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.request(method, url, **kw)


def test_mo_single_and_concatenated() -> None:
    async def test(smsc: Smsc) -> None:
        base = f"http://127.0.0.1:{smsc.control_port}"
        rx = await bound(smsc, "receiver")
        r = await _http("POST", f"{base}/mo", json={"from": "+27821234567", "to": "12345", "text": "Hi there"})
        assert r.status_code == 202 and r.json() == {"parts": 1}
        mo = await rx.receipt()
        assert mo.body["esm_class"] == 0 and mo.body["data_coding"] == 0
        assert (mo.body["source_addr"], mo.body["source_addr_ton"]) == ("27821234567", 1)
        assert mo.body["destination_addr"] == "12345"
        assert decode_message(mo.body["short_message"], data_coding=0).text == "Hi there"

        long_text = "Long reply " * 30
        for split, coding in (("udh8", "gsm7"), ("sar", "gsm7"), ("udh16", "ucs2"), ("payload", "latin1")):
            r = await _http("POST", f"{base}/mo", json={"from": "+27821234567", "to": "12345",
                                                        "text": long_text, "coding": coding, "split": split})
            assert r.status_code == 202, r.text
            parts = r.json()["parts"]
            assert parts == (1 if split == "payload" else (5 if coding == "ucs2" else 3)), (split, parts)
            joiner = Reassembler()
            whole = None
            for _ in range(parts):
                pdu = await rx.receipt()
                if split in ("udh8", "udh16"):
                    assert pdu.body["esm_class"] == 0x40
                if split == "sar":
                    assert Tag.SAR_MSG_REF_NUM in pdu.tlvs
                segment = decode_message(pdu.body["short_message"], data_coding=pdu.body["data_coding"],
                                         esm_class=pdu.body["esm_class"], tlvs=pdu.tlvs)
                whole = joiner.add(("mo",), segment, 0.0) or whole
            assert whole == long_text, (split, whole)
        await asyncio.sleep(0.05)
        stats = smsc.stats()
        assert stats["mo_sent"] == 5 and stats["sessions"][0]["awaiting_deliver_sm_resp"] == 0

    run(test, control_port=None)


def test_mo_errors() -> None:
    async def test(smsc: Smsc) -> None:
        base = f"http://127.0.0.1:{smsc.control_port}"
        message = {"from": "+27821234567", "to": "12345", "text": "hi"}
        r = await _http("POST", f"{base}/mo", json=message)
        assert r.status_code == 409 and "no receiver" in r.json()["error"]
        tx = await bound(smsc, "transmitter")
        assert (await _http("POST", f"{base}/mo", json=message)).status_code == 409
        rx = await bound(smsc, "receiver")
        for bad, word in (({**message, "coding": "ebcdic"}, "coding"), ({**message, "split": "x"}, "split"),
                          ({"to": "1", "text": "x"}, "from"), ({**message, "from": "1" * 30}, "source_addr"),
                          ({**message, "colour": 1}, "colour")):
            r = await _http("POST", f"{base}/mo", json=bad)
            assert r.status_code == 400 and word in r.json()["error"], r.text
        r = await _http("POST", f"{base}/mo", content=b"not json")
        assert r.status_code == 400
        r = await _http("POST", f"{base}/mo", json={**message, "system_id": "other"})
        assert r.status_code == 409
        await tx.nothing(0.05)
        await rx.nothing(0.05)

    run(test, control_port=None)


def test_control_stats_messages_mode_and_drop() -> None:
    async def test(smsc: Smsc) -> None:
        base = f"http://127.0.0.1:{smsc.control_port}"
        esme = await bound(smsc)
        await esme.submit(text=b"first", data_coding=0)
        await esme.submit("27821234000", text=b"refused")
        await esme.submit(text="ünïcode".encode("utf-16-be"), data_coding=8,
                          tlvs={Tag.USER_MESSAGE_REFERENCE: b"\x00\x07"})
        stats = (await _http("GET", f"{base}/stats")).json()
        assert (stats["submit_sm"], stats["accepted"], stats["rejected"], stats["binds"]) == (3, 2, 1, 1)
        assert stats["sessions"][0]["system_id"] == "pigeon"
        messages = (await _http("GET", f"{base}/messages?limit=2")).json()
        assert len(messages) == 2
        refused, uni = messages
        assert refused["id"] is None and refused["status"] == 0x0B and refused["text"] == "refused"
        assert uni["text"] == "ünïcode" and uni["data_coding"] == 8 and uni["tlvs"] == {"0204": "0007"}
        assert uni["short_message"] == "ünïcode".encode("utf-16-be").hex() and uni["stat"] == "DELIVRD"
        assert uni["destination"] == "27821234567" and uni["source"] == "27820000001"
        assert len((await _http("GET", f"{base}/messages")).json()) == 3
        assert (await _http("GET", f"{base}/messages?limit=x")).status_code == 400

        r = await _http("POST", f"{base}/mode", json={"throttle": 3, "response_delay": 0.01})
        assert r.status_code == 200 and r.json()["throttle"] == 3 and r.json()["response_delay"] == 0.01
        r = await _http("POST", f"{base}/mode", json={"throttle": None, "response_delay": None})
        assert r.json()["throttle"] is None
        r = await _http("POST", f"{base}/mode", json={"throttle": "lots"})
        assert r.status_code == 400 and "throttle" in r.json()["error"]
        r = await _http("POST", f"{base}/mode", json={"bogus": 1})
        assert r.status_code == 400 and "bogus" in r.json()["error"]

        rx = await bound(smsc, "receiver")
        r = await _http("POST", f"{base}/drop")
        assert r.status_code == 200 and r.json() == {"dropped": 2}
        await esme.closed()
        await rx.closed()
        assert smsc.stats()["drops"] == 2

    run(test, control_port=None)


def test_message_ring_is_bounded() -> None:
    async def test(smsc: Smsc) -> None:
        esme = await bound(smsc)
        esme.send(*[esme.submit_pdu(registered=0, text=b"%d" % i) for i in range(30)])
        await esme.read(30)
        messages = smsc.messages(100)
        assert [m["text"] for m in messages] == [str(i) for i in range(20, 30)]

    run(test, message_log=10)


# ---------------------------------------------------------------------------------------
# The command line


def _command(name: str) -> list[str]:
    from pigeon.cli import main

    if name in main.commands:
        return [sys.executable, "-m", "pigeon", name]
    function = name.replace("-", "_")
    return [sys.executable, "-c", f"from pigeon.smsc.cli import {function}; {function}()"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}


def test_cli_end_to_end(tmp_path: Path) -> None:
    port, control = free_port(), free_port()
    proc = subprocess.Popen(
        [*_command("smsc"), "--port", str(port), "--control-port", str(control), "--receipt-delay", "0.1",
         "--system-id", "acme", "--password", "pw", "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path,
    )
    try:
        banner = proc.stdout.readline().strip()
        assert banner == f"pigeon smsc listening on smpp://127.0.0.1:{port} (control http://127.0.0.1:{control})"

        async def session() -> None:
            esme = await Esme.connect(port)
            assert (await esme.bind(system_id="pigeon", password="secret")).status == Status.ESME_RINVSYSID
            assert (await esme.bind(system_id="acme", password="pw")).status == 0
            resp = await esme.submit(text=b"over the wire")
            receipt = await esme.receipt()
            assert P.parse_receipt(receipt.body["short_message"]).message_id == resp.body["message_id"]
            r = await _http("POST", f"http://127.0.0.1:{control}/mo",
                            json={"from": "+27821234567", "to": "12345", "text": "via http"})
            assert r.status_code == 202
            mo = await esme.receipt()
            assert decode_message(mo.body["short_message"], data_coding=mo.body["data_coding"]).text == "via http"
            tool = await asyncio.create_subprocess_exec(
                *_command("smsc-mo"), "--control", f"http://127.0.0.1:{control}", "--from", "+27829999999",
                "--to", "12345", "--coding", "ucs2", "via the command", stdout=subprocess.PIPE, env=_env())
            out, _ = await tool.communicate()
            assert tool.returncode == 0 and b"1 part" in out, out
            mo = await esme.receipt()
            assert mo.body["data_coding"] == 8 and mo.body["source_addr"] == "27829999999"
            assert decode_message(mo.body["short_message"], data_coding=8).text == "via the command"
            stats = httpx.get(f"http://127.0.0.1:{control}/stats").json()
            assert stats["receipts_sent"] == 1 and stats["mo_sent"] == 2
            # a clean stop unbinds the session
            proc.terminate()
            unbind = await esme.read_one(timeout=5)
            assert unbind.command_id == CommandId.UNBIND
            esme.send(P.response(unbind))
            await esme.closed(timeout=5)

        asyncio.run(session())
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_smsc_mo_errors() -> None:
    control = free_port()  # nothing listens there
    result = subprocess.run([*_command("smsc-mo"), "--control", f"http://127.0.0.1:{control}", "--from", "1",
                             "--to", "2", "hi"], capture_output=True, text=True, env=_env(), timeout=30)
    assert result.returncode != 0 and "cannot reach" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("port = [", "not valid TOML"), ("colour = 'red'", "colour: unknown key"),
     ("[[rules]]\npattern = 'x'\nstat = 'LOST'", "rules[0].stat")],
)
def test_cli_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "smsc.toml"
    path.write_text(text)
    result = subprocess.run([*_command("smsc"), "--config", str(path), "--port", "0"],
                            capture_output=True, text=True, env=_env(), timeout=30)
    assert result.returncode == 2, result
    assert str(path) in result.stderr and expected in result.stderr and "Traceback" not in result.stderr
