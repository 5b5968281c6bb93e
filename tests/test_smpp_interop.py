"""Interoperability: Pigeon's SMPP code against SMPP code written elsewhere, over real TCP.

- ``smpplib`` (a maintained, synchronous pure-Python ESME) binds to ``pigeon smsc`` run as a
  subprocess: submits GSM, UDH-split and UCS-2 messages, reads the receipts (DELIVRD, and
  UNDELIV for a number ending 666) and the messages from phones injected through the
  control endpoint; and as a transmitter plus a receiver, with a refused bind and number.
- ``smpp34`` (a Rust-core SMPP library with an asyncio server) plays the SMSC, in a
  subprocess (``tests/interop/smpp34_smsc.py``), for Pigeon's ``SmppCarrier``: submits,
  receipts matched by reference, messages from phones, and a rebind after the SMSC unbinds.
  (Transceiver only: smpp34 1.5.0 answers a deliver_sm_resp on a receiver bind with
  generic_nack ESME_RINVCMDID, so a transmitter+receiver carrier cannot be tested against it.)

Both libraries are test dependencies: if one is missing, these tests fail rather than skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pigeon.carriers.base import InboundSms, Outcome, Receipt, Submission
from pigeon.carriers.settings import CarrierSettings
from pigeon.carriers.smpp import SmppCarrier
from pigeon.messages.models import Status
from pigeon.smpp.pdu import normalise_message_id

INTEROP = Path(__file__).parent / "interop"
TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JsonLinesProcess:
    """A helper process that prints JSON lines on stdout and may read JSON lines on stdin."""

    def __init__(self, args: list[str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(  # in tmp_path: a crash's core file, if any, lands there
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
            cwd=stderr_path.parent,
        )
        self.events: list[dict] = []
        self._lock = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "text", "line": line.rstrip("\n")}
            with self._lock:
                self.events.append(event)
                self._lock.notify_all()

    def wait(self, predicate: Callable[[list[dict]], bool], timeout: float = TIMEOUT) -> list[dict]:
        """Block until ``predicate(events)`` holds; fail with what was seen (and stderr) if not."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.events):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    pytest.fail(f"helper process: condition not met in {timeout}s; events {self.events}; "
                                f"exit {self.proc.poll()}; stderr {self.stderr()!r}")
                self._lock.wait(min(left, 0.1))
            return list(self.events)

    async def await_(self, predicate: Callable[[list[dict]], bool], timeout: float = TIMEOUT) -> list[dict]:
        return await asyncio.to_thread(self.wait, predicate, timeout)

    def send(self, command: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def of(self, kind: str) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e.get("event") == kind]

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        """Kill it; how it exits is not the test's concern (smpp34 may crash at exit)."""
        self.proc.kill()
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._stderr.close()


class Events:
    """The CarrierEvents a carrier reports to, collected for the test."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.inbound_messages: list[InboundSms] = []
        self.flushes = 0

    def receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)

    def inbound(self, message: InboundSms) -> None:
        self.inbound_messages.append(message)

    async def flushed(self) -> None:
        self.flushes += 1


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------------------
# smpplib's client against ``pigeon smsc``


def smsc_command() -> list[str]:
    """``python -m pigeon smsc`` once the command is registered, else the click command itself."""
    from pigeon import cli

    if "smsc" in getattr(cli.main, "commands", {}):
        return [sys.executable, "-m", "pigeon", "smsc"]
    return [sys.executable, "-c", "from pigeon.smsc.cli import smsc; smsc()"]


@pytest.fixture
def pigeon_smsc(tmp_path: Path) -> Iterator[tuple[JsonLinesProcess, int, int]]:
    port, control = free_port(), free_port()
    process = JsonLinesProcess(
        smsc_command() + ["--port", str(port), "--control-port", str(control), "--receipt-delay", "0.05"],
        tmp_path / "smsc.stderr",
    )
    try:
        process.wait(lambda events: any("listening on" in e.get("line", "") for e in events))
        yield process, port, control
    finally:
        process.proc.terminate()  # SIGTERM: pigeon smsc stops cleanly, and must
        with contextlib.suppress(subprocess.TimeoutExpired):
            assert process.proc.wait(5) == 0, process.stderr()
        process.close()


def text(value: bytes | str | None) -> str:
    """smpplib hands C-octet strings back as bytes."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value or ""


class SmpplibEsme:
    """An smpplib transceiver, with what it read: submit_sm_resp by sequence, deliver_sm in order."""

    def __init__(self, port: int, bind: str = "transceiver", password: str = "secret") -> None:
        import smpplib.client

        self.bind, self.password = bind, password
        self.client = smpplib.client.Client("127.0.0.1", port, timeout=1, allow_unknown_opt_params=True)
        self.responses: dict[int, object] = {}
        self.delivered: list = []
        self.client.set_message_sent_handler(lambda pdu: self.responses.__setitem__(pdu.sequence, pdu))
        self.client.set_message_received_handler(lambda pdu: self.delivered.append(pdu))  # None: ESME_ROK
        self.client.set_error_pdu_handler(lambda pdu: self.responses.__setitem__(pdu.sequence, pdu))

    def __enter__(self) -> SmpplibEsme:
        self.client.connect()
        resp = getattr(self.client, f"bind_{self.bind}")(system_id="pigeon", password=self.password)
        assert resp.status == 0 and text(resp.system_id) == "pigeon-smsc"
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if not exc[0]:
                assert self.client.unbind().command == "unbind_resp"
        finally:
            self.client.disconnect()

    def submit(self, to: str, message: str, *, encoding: int | None = None) -> list[int]:
        """Send ``message`` split by smpplib itself; the sequence numbers of its parts."""
        import smpplib.consts
        import smpplib.gsm

        args = (message,) if encoding is None else (message, encoding)
        parts, data_coding, esm_class = smpplib.gsm.make_parts(*args)
        sequences = []
        for part in parts:
            pdu = self.client.send_message(
                source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                source_addr="smpplib",
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                destination_addr=to,
                short_message=part,
                data_coding=data_coding,
                esm_class=esm_class,
                registered_delivery=True,
            )
            sequences.append(pdu.sequence)
        return sequences

    def read_until(self, condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"smpplib: {what} not seen within {timeout}s")
            self.client.read_once()  # blocks up to the socket timeout (then sends enquire_link)


#: The de-facto receipt text, strictly (SMPP 3.4 appendix B), read without Pigeon's own parser.
RECEIPT = re.compile(
    rb"id:(?P<id>[0-9A-Za-z]{1,65}) sub:\d{3} dlvrd:\d{3} submit date:\d{10} done date:\d{10} "
    rb"stat:(?P<stat>[A-Z]{7}) err:(?P<err>\d{3}) text:(?P<text>.{0,20})",
    re.DOTALL,
)


def receipts(delivered: list) -> dict[str, tuple[object, re.Match]]:
    """SMSC delivery receipts (esm_class message type 0x04): (pdu, text match) by the id named."""
    out = {}
    for pdu in delivered:
        if pdu.esm_class & 0x3C == 0x04:
            match = RECEIPT.fullmatch(pdu.short_message)
            assert match is not None, pdu.short_message
            out[match["id"].decode()] = (pdu, match)
    return out


def test_smpplib_client_against_pigeon_smsc(pigeon_smsc: tuple[JsonLinesProcess, int, int]) -> None:
    import httpx
    import smpplib.consts
    import smpplib.gsm

    _, port, control = pigeon_smsc
    short = "Hello from smpplib-client via Pigeon @ 100%"
    long = "".join(f"smpplib sentence number {i:02d}, split with a UDH. " for i in range(8))  # 3 parts of 153
    ucs2 = "Привет, Pigeon! ✓ Ünïcödé"

    with SmpplibEsme(port) as esme:
        sent = {
            "short": esme.submit("27821234567", short),
            "long": esme.submit("27821234568", long),
            "ucs2": esme.submit("27821234569", ucs2, encoding=smpplib.consts.SMPP_ENCODING_ISO10646),
            "fails": esme.submit("27821234666", "This one fails"),
        }
        assert [len(v) for v in sent.values()] == [1, 3, 1, 1]
        every = [seq for seqs in sent.values() for seq in seqs]
        esme.read_until(lambda: all(seq in esme.responses for seq in every), "every submit_sm_resp")
        ids = {}
        for name, seqs in sent.items():
            for seq in seqs:
                resp = esme.responses[seq]
                assert resp.command == "submit_sm_resp" and resp.status == 0, (name, resp.status)
                assert text(resp.message_id), (name, seq)
            ids[name] = [text(esme.responses[seq].message_id) for seq in seqs]
        all_ids = [i for v in ids.values() for i in v]
        assert len(set(all_ids)) == len(all_ids) == 6

        # The receipts, read by smpplib: one per submit_sm, naming the ids it was answered with.
        esme.read_until(lambda: len(receipts(esme.delivered)) >= 6, "6 delivery receipts")
        got = receipts(esme.delivered)
        assert set(got) == set(all_ids)
        for name, message_ids in ids.items():
            for message_id in message_ids:
                pdu, match = got[message_id]
                expected = (b"UNDELIV", b"001") if name == "fails" else (b"DELIVRD", b"000")
                assert (match["stat"], match["err"]) == expected, (name, pdu.short_message)
                assert text(pdu.receipted_message_id) == message_id
                assert pdu.message_state == (5 if name == "fails" else 2)
                assert text(pdu.source_addr) == {"short": "27821234567", "long": "27821234568",
                                                 "ucs2": "27821234569", "fails": "27821234666"}[name]
                assert text(pdu.destination_addr) == "smpplib"
        assert got[ids["short"][0]][1]["text"] == short[:20].encode()
        assert len(esme.delivered) == 6  # nothing else, and no receipt twice

        # What the simulator made of smpplib's parts: the same texts, joined by the UDH.
        log = httpx.get(f"http://127.0.0.1:{control}/messages").json()
        by_id = {m["id"]: m for m in log}
        assert by_id[ids["short"][0]]["text"] == short
        assert "".join(by_id[i]["text"] for i in ids["long"]) == long
        assert all(by_id[i]["esm_class"] & 0x40 for i in ids["long"])
        assert by_id[ids["ucs2"][0]]["data_coding"] == 8 and by_id[ids["ucs2"][0]]["text"] == ucs2

        # A message from a phone, injected through the control endpoint, reaches smpplib.
        before = len(esme.delivered)
        answer = httpx.post(f"http://127.0.0.1:{control}/mo",
                            json={"from": "+27821234567", "to": "12345", "text": "STOP all messages"})
        assert answer.status_code == 202 and answer.json() == {"parts": 1}
        esme.read_until(lambda: len(esme.delivered) > before, "the MO deliver_sm")
        mo = esme.delivered[before]
        assert mo.esm_class & 0x3C == 0 and mo.data_coding == 0
        assert mo.short_message == smpplib.gsm.gsm_encode("STOP all messages")
        assert (text(mo.source_addr), mo.source_addr_ton) == ("27821234567", 1)
        assert text(mo.destination_addr) == "12345"

        # ... in UCS-2, and a long one in UDH-concatenated parts.
        answer = httpx.post(f"http://127.0.0.1:{control}/mo",
                            json={"from": "+27821234567", "to": "12345", "text": "Ответ ✓", "coding": "ucs2"})
        assert answer.status_code == 202
        esme.read_until(lambda: len(esme.delivered) > before + 1, "the UCS-2 MO")
        mo = esme.delivered[before + 1]
        assert mo.data_coding == 8 and mo.short_message.decode("utf-16-be") == "Ответ ✓"
        answer = httpx.post(f"http://127.0.0.1:{control}/mo",
                            json={"from": "+27821234567", "to": "12345", "text": long})
        assert answer.status_code == 202 and answer.json() == {"parts": 3}
        esme.read_until(lambda: len(esme.delivered) >= before + 5, "the three parts of the long MO")
        parts = esme.delivered[before + 2 : before + 5]
        joined, references = b"", set()
        for seq, pdu in enumerate(parts, 1):
            udh = pdu.short_message[: pdu.short_message[0] + 1]
            assert pdu.esm_class & 0x40 and udh[:3] == b"\x05\x00\x03" and udh[4:] == bytes((3, seq))
            references.add(udh[3])
            joined += pdu.short_message[len(udh) :]
        assert joined == smpplib.gsm.gsm_encode(long) and len(references) == 1
        assert len(esme.delivered) == before + 5


def test_smpplib_transmitter_and_receiver_against_pigeon_smsc(pigeon_smsc: tuple[JsonLinesProcess, int, int]) -> None:
    import smpplib.exceptions
    import smpplib.smpp

    _, port, _ = pigeon_smsc
    refused = SmpplibEsme(port, password="wrong")
    refused.client.connect()
    with pytest.raises(smpplib.exceptions.PDUError) as error:
        refused.client.bind_transceiver(system_id="pigeon", password="wrong")
    assert error.value.args[1] == 0x0E  # ESME_RINVPASWD
    refused.client.disconnect()

    with SmpplibEsme(port, bind="transmitter") as tx, SmpplibEsme(port, bind="receiver") as rx:
        delivered = tx.submit("27821234567", "To the receiver bind")
        turned_away = tx.submit("27821234000", "A number the simulator refuses")
        tx.read_until(lambda: all(seq in tx.responses for seq in delivered + turned_away), "both submit_sm_resp")
        assert tx.responses[turned_away[0]].status == 0x0B  # ESME_RINVDSTADR, by the default rules
        accepted = tx.responses[delivered[0]]
        assert accepted.status == 0
        rx.read_until(lambda: len(rx.delivered) >= 1, "the receipt on the receiver bind")
        assert list(receipts(rx.delivered)) == [text(accepted.message_id)]
        assert receipts(rx.delivered)[text(accepted.message_id)][1]["stat"] == b"DELIVRD"
        assert tx.delivered == []

        ping = smpplib.smpp.make_pdu("enquire_link", client=tx.client)
        tx.client.send_pdu(ping)
        pong = tx.client.read_pdu()
        assert (pong.command, pong.status, pong.sequence) == ("enquire_link_resp", 0, ping.sequence)


# ---------------------------------------------------------------------------------------
# Pigeon's SmppCarrier against an SMSC built on smpp34


@pytest.fixture
def smpp34_smsc(tmp_path: Path) -> Iterator[tuple[JsonLinesProcess, int]]:
    import smpp34  # noqa: F401  (fail here, clearly, when the test dependency is missing)

    port = free_port()
    process = JsonLinesProcess(
        [sys.executable, str(INTEROP / "smpp34_smsc.py"), "--port", str(port), "--receipt-delay", "0.05"],
        tmp_path / "smpp34.stderr",
    )
    try:
        process.wait(lambda events: any(e["event"] == "ready" for e in events))
        yield process, port
    finally:
        process.close()


GSM_SHORT = "Hello from Pigeon {curly} [square] ~ 100€"
GSM_LONG = "".join(f"Part of a long message, sentence {i:02d}. " for i in range(9))  # 333 septets: 3 parts
UCS2 = "Привет from Pigeon 👋 — ünïcödé"


def submission(number: int, to: str, body: str, encoding: str, parts: int) -> Submission:
    return Submission(f"{number:024x}", to=to, sender="Pigeon", body=body, encoding=encoding, parts=parts)


def test_pigeon_carrier_against_smpp34_server(smpp34_smsc: tuple[JsonLinesProcess, int]) -> None:
    import smpplib.gsm

    process, port = smpp34_smsc

    async def scenario() -> None:
        carrier = SmppCarrier(CarrierSettings(name="smpp34", host="127.0.0.1", port=port, system_id="pigeon",
                                              password="secret", reconnect_min=0.1, enquire_link=5.0))
        events = Events()
        await carrier.start(events)
        try:
            assert await carrier.wait_bound(TIMEOUT), process.stderr()
            batch = [
                submission(0xABC1, "+27821234567", GSM_SHORT, "GSM7", 1),
                submission(0xABC2, "+27821234568", GSM_LONG, "GSM7", 3),
                submission(0xABC3, "+27821234569", UCS2, "UCS2", 1),
                submission(0xABC4, "+27821234666", "This one fails", "GSM7", 1),
            ]
            results = await carrier.submit(batch)
            assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 4, results

            # What smpp34 decoded from Pigeon's submit_sm: one PDU per part, the right bytes.
            submits = await process.await_(lambda ev: sum(e["event"] == "submit" for e in ev) >= 6)
            submits = [e for e in submits if e["event"] == "submit"]
            assert len(submits) == 6
            by_to: dict[str, list[dict]] = {}
            for e in submits:
                by_to.setdefault(e["to"], []).append(e)
                assert e["source"] == "Pigeon" and e["source_ton"] == 5
                assert e["dest_ton"] == 1 and e["registered_delivery"] == 1
            for pdus in by_to.values():  # smpp34 hands submits over in no particular order: UDH order
                pdus.sort(key=lambda e: bytes.fromhex(e["short_message"])[5] if e["esm_class"] & 0x40 else 0)
            for to, body in [("27821234567", GSM_SHORT), ("27821234568", GSM_LONG),
                             ("27821234569", UCS2), ("27821234666", "This one fails")]:
                payload = b""  # the user data, without any UDH, checked with smpplib's encoder, not Pigeon's
                for e in by_to[to]:
                    data = bytes.fromhex(e["short_message"])
                    payload += data[data[0] + 1 :] if e["esm_class"] & 0x40 else data
                if by_to[to][0]["data_coding"] == 8:
                    assert payload.decode("utf-16-be") == body
                else:
                    assert payload == smpplib.gsm.gsm_encode(body), to
            long_parts = by_to["27821234568"]
            assert len(long_parts) == 3
            for seq, e in enumerate(long_parts, 1):
                udh = bytes.fromhex(e["short_message"])[:6]
                assert e["esm_class"] & 0x40
                assert udh[:3] == b"\x05\x00\x03" and udh[4:] == bytes((3, seq))
            assert len({bytes.fromhex(e["short_message"])[3] for e in long_parts}) == 1
            ucs2 = by_to["27821234569"][0]
            assert ucs2["data_coding"] == 8
            assert bytes.fromhex(ucs2["short_message"]).decode("utf-16-be") == UCS2
            assert by_to["27821234567"][0]["data_coding"] == 0

            # The carrier's references are smpp34's ids, normalised ("000000A1" -> "a1").
            ids = {e["id"]: e for e in submits}
            first_ids = [by_to[to][0]["id"] for to in ("27821234567", "27821234568", "27821234569", "27821234666")]
            assert [r.carrier_ref for r in results] == [normalise_message_id(i) for i in first_ids]
            assert all(r.carrier_ref and not r.carrier_ref.startswith("0") for r in results)
            assert results[1].part_refs == {seq: normalise_message_id(e["id"])
                                            for seq, e in enumerate(long_parts, 1)}

            # One receipt per submit_sm (a part each), acknowledged, matched by reference.
            await until(lambda: len(events.receipts) >= 6, what="6 receipts")
            acked = await process.await_(lambda ev: sum(e["event"] == "receipt_acked" for e in ev) >= 6)
            assert all(e["status"] == 0 for e in acked if e["event"] == "receipt_acked")
            refs = {normalise_message_id(i): ids[i]["to"] for i in ids}
            assert sorted(r.carrier_ref for r in events.receipts) == sorted(refs)
            for receipt in events.receipts:
                assert receipt.carrier == "smpp34"
                if refs[receipt.carrier_ref].endswith("666"):
                    assert receipt.status == Status.FAILED and receipt.error_code == "UNDELIV:001"
                else:
                    assert receipt.status == Status.DELIVERED and receipt.error_code == "DELIVRD"

            # Messages from phones: plain GSM, UCS-2, and a two-part UDH message reassembled.
            process.send({"cmd": "mo", "from": "27821234567", "to": "12345", "text": "STOP please"})
            await until(lambda: len(events.inbound_messages) >= 1, what="the first MO")
            process.send({"cmd": "mo", "from": "27821234567", "to": "12345", "text": "Ответ ✓",
                          "data_coding": 8})
            await until(lambda: len(events.inbound_messages) >= 2, what="the UCS-2 MO")
            halves = [b"\x05\x00\x03\x7f\x02\x01" + b"First half, ", b"\x05\x00\x03\x7f\x02\x02" + b"second half."]
            for half in halves:
                process.send({"cmd": "mo", "from": "27821234567", "to": "12345", "short_message_hex": half.hex(),
                              "esm_class": 0x40})
            await until(lambda: len(events.inbound_messages) >= 3, what="the two-part MO")
            mo = await process.await_(lambda ev: sum(e["event"] == "mo_acked" for e in ev) >= 4)
            assert all(e["status"] == 0 for e in mo if e["event"] == "mo_acked")
            assert [(m.carrier, m.sender, m.to, m.body) for m in events.inbound_messages] == [
                ("smpp34", "+27821234567", "12345", "STOP please"),
                ("smpp34", "+27821234567", "12345", "Ответ ✓"),
                ("smpp34", "+27821234567", "12345", "First half, second half."),
            ]
        finally:
            await carrier.stop()
        await process.await_(lambda ev: any(e["event"] == "unbound" for e in ev))

    asyncio.run(scenario())


def test_pigeon_carrier_rebinds_when_smpp34_unbinds(smpp34_smsc: tuple[JsonLinesProcess, int]) -> None:
    process, port = smpp34_smsc

    async def scenario() -> None:
        carrier = SmppCarrier(CarrierSettings(name="smpp34", host="127.0.0.1", port=port, system_id="pigeon",
                                              password="secret", reconnect_min=0.05, enquire_link=5.0))
        events = Events()
        await carrier.start(events)
        try:
            assert await carrier.wait_bound(TIMEOUT)
            assert carrier.tx.binds == 1
            await process.await_(lambda ev: any(e["event"] == "bind" for e in ev))  # smpp34's side knows it too
            process.send({"cmd": "unbind"})  # the SMSC ends the bind: unbind, unbind_resp, close
            await process.await_(lambda ev: any(e["event"] == "unbound" for e in ev))
            await until(lambda: carrier.tx.binds == 2 and carrier.available, what="the rebind")
            # smpp34's side reports the second bind on its own time
            await process.await_(lambda ev: sum(e["event"] == "bind" for e in ev) >= 2)
            binds = process.of("bind")
            assert len(binds) == 2 and binds[0]["session"] != binds[1]["session"]
            [result] = await carrier.submit([submission(0xBEEF, "+27821234567", "After the rebind", "GSM7", 1)])
            assert result.outcome == Outcome.ACCEPTED and result.carrier_ref
            await until(lambda: len(events.receipts) == 1, what="the receipt after the rebind")
            assert events.receipts[0].carrier_ref == result.carrier_ref
            assert events.receipts[0].status == Status.DELIVERED
        finally:
            await carrier.stop()

    asyncio.run(scenario())
