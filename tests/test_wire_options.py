"""A sender's options on the wire and in delivery (Zoho Voice's dataCoding, flash, validityPeriod,
MMS): the SMPP codec's vectors, the router's choice of an MMS carrier, the claim's expiry on both
databases, and a message seen at `pigeon smsc` with its data coding, UDH and validity period."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Iterator

import pytest
from sqlalchemy import select, update
from test_smpp_e2e import SmscProcess

from conftest import Server, own_database, url_of
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import Principal, create_account
from pigeon.carriers.base import Carrier, CarrierEvents, InboundSms, Outcome, Receipt, Report, Submission, SubmitResult
from pigeon.carriers.router import Route, Router
from pigeon.carriers.settings import CarrierSettings, SimulatorSettings
from pigeon.carriers.simulator import SimulatedCarrier
from pigeon.carriers.smpp import SmppCarrier, absolute_time
from pigeon.config import Settings
from pigeon.db import Database, utcnow
from pigeon.delivery import queue
from pigeon.delivery.models import QueueEntry
from pigeon.ids import new_id
from pigeon.messages.models import Message, Status
from pigeon.sending.service import Sender, accept
from pigeon.smpp import pdu as P
from pigeon.smpp.coding import Alphabet, Part, Split, decode_message, encode_parts
from pigeon.smsc.server import Smsc
from pigeon.text import BINARY, GSM7, GSM7_BASIC, GSM7_EXTENDED, UCS2, analyse_as


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def decode(part: Part, packed: bool = False) -> str:
    return decode_message(part.short_message, data_coding=part.data_coding, esm_class=part.esm_class,
                          tlvs=part.tlvs, packed=packed).text


# -- the codec ----------------------------------------------------------------------------------

DATA = bytes(range(256)) * 2  # every octet value, twice: 512 octets


def test_binary_fits_one_part_in_140_octets_as_8_bit_data() -> None:
    (part,) = encode_parts(DATA[:140].hex(), forced=BINARY, reference=0x1234)
    assert part == Part(DATA[:140], 0x04, 0, part.tlvs) and not part.tlvs


def test_binary_over_140_octets_goes_in_134_octet_parts_after_the_carriers_udh() -> None:
    first, second = encode_parts(DATA[:141].hex(), forced=BINARY, reference=0x1234)
    assert first.short_message == h("05 00 03 34 02 01") + DATA[:134]
    assert second.short_message == h("05 00 03 34 02 02") + DATA[134:141]
    assert (first.data_coding, first.esm_class, second.data_coding, second.esm_class) == (0x04, 0x40, 0x04, 0x40)
    parts = encode_parts(DATA.hex().upper(), forced=BINARY, reference=0x1234, split=Split.UDH16)
    assert [len(p.short_message) for p in parts] == [140, 140, 140, 7 + 512 - 3 * 133]
    assert parts[2].short_message[:7] == h("06 08 04 12 34 04 03")
    assert b"".join(p.short_message[7:] for p in parts) == DATA
    sar = encode_parts(DATA[:300].hex(), forced=BINARY, reference=0x1234, split=Split.SAR)
    assert [p.short_message for p in sar] == [DATA[:134], DATA[134:268], DATA[268:300]]
    assert sar[1].tlvs[P.Tag.SAR_SEGMENT_SEQNUM] == b"\x02" and sar[0].esm_class == 0
    (payload,) = encode_parts(DATA.hex(), forced=BINARY, split=Split.PAYLOAD)
    assert payload.tlvs[P.Tag.MESSAGE_PAYLOAD] == DATA and payload.data_coding == 0x04


def test_binary_that_is_not_hex_is_refused() -> None:
    with pytest.raises(ValueError, match="hex"):
        encode_parts("abc", forced=BINARY)
    with pytest.raises(ValueError, match="hex"):
        encode_parts("zz", forced=BINARY)


def test_forced_ucs2_goes_as_ucs2_even_for_gsm_text() -> None:
    (part,) = encode_parts("Hi!", forced=UCS2)
    assert (part.short_message, part.data_coding) == ("Hi!".encode("utf-16-be"), 0x08)
    parts = encode_parts("a" * 71, forced=UCS2, reference=7)  # 70 fit alone; 71 take two parts of 67 + 4
    assert [p.short_message[:6] for p in parts] == [h("05 00 03 07 02 01"), h("05 00 03 07 02 02")]
    assert [len(p.short_message) for p in parts] == [6 + 134, 6 + 8]
    assert "".join(decode(p) for p in parts) == "a" * 71


def test_forced_gsm_is_gsm_as_the_carrier_spells_it_and_refuses_other_characters() -> None:
    assert encode_parts("Hi [x]", forced=GSM7)[0] == encode_parts("Hi [x]")[0]  # what GSM text gets anyway
    assert encode_parts("Hi", forced=GSM7, alphabet=Alphabet.LATIN1)[0].data_coding == 0x03  # the carrier's choice
    assert encode_parts("Hi", forced=GSM7, alphabet=Alphabet.UCS2)[0].data_coding == 0x00  # forced beats all-UCS-2
    greek = encode_parts("ΔΩ", forced=GSM7, alphabet=Alphabet.LATIN1)[0]  # GSM, and not Latin-1
    assert (greek.data_coding, decode(greek)) == (0x00, "ΔΩ")
    with pytest.raises(ValueError, match="GSM 03.38"):
        encode_parts("привет", forced=GSM7)
    with pytest.raises(ValueError, match="unknown encoding"):
        encode_parts("hi", forced="EBCDIC")


def test_a_message_the_sender_did_not_force_keeps_the_carriers_choice() -> None:
    assert [encode_parts("Hi", alphabet=a)[0].data_coding for a in Alphabet] == [0x00, 0x03, 0x08]
    assert encode_parts("Привет")[0].data_coding == 0x08


@pytest.mark.parametrize(
    ("text", "forced", "alphabet", "dcs", "octets"),
    [
        ("Hi", None, Alphabet.GSM7, 0x10, b"Hi"),
        ("Hi", GSM7, Alphabet.GSM7, 0x10, b"Hi"),
        ("Hi", None, Alphabet.LATIN1, 0x10, b"Hi"),  # data_coding 3 has no message class: GSM
        ("Hi", GSM7, Alphabet.LATIN1, 0x10, b"Hi"),
        ("Hi", None, Alphabet.UCS2, 0x18, "Hi".encode("utf-16-be")),
        ("Привет", None, Alphabet.GSM7, 0x18, "Привет".encode("utf-16-be")),
        ("Hi", UCS2, Alphabet.GSM7, 0x18, "Hi".encode("utf-16-be")),
        ("c0ffee", BINARY, Alphabet.GSM7, 0x14, h("c0 ff ee")),
    ],
)
def test_flash_is_message_class_0(text: str, forced: str | None, alphabet: Alphabet, dcs: int, octets: bytes) -> None:
    (part,) = encode_parts(text, forced=forced, alphabet=alphabet, flash=True)
    assert (part.data_coding, part.short_message, part.esm_class) == (dcs, octets, 0)
    if forced != BINARY:
        assert decode(part) == text


def test_a_long_flash_message_is_class_0_in_every_part_packed_or_not() -> None:
    text = "Flash! " * 30  # 210 septets: two parts
    for packed in (False, True):
        parts = encode_parts(text, flash=True, packed=packed, reference=9)
        assert [(p.data_coding, p.esm_class) for p in parts] == [(0x10, 0x40), (0x10, 0x40)]
        plain = encode_parts(text, packed=packed, reference=9)
        assert [p.short_message for p in parts] == [p.short_message for p in plain]
        assert "".join(decode(p, packed) for p in parts) == text


@pytest.mark.parametrize("seed", range(5))
def test_the_parts_on_the_wire_are_the_parts_priced(seed: int) -> None:
    """What ``text.analyse_as`` counts (and the sender is charged for) is what goes, for each
    forced coding, on a carrier of 8-bit references; and the octets come back whole."""
    rng = random.Random(seed)
    for _ in range(40):
        data = rng.randbytes(rng.choice([1, 139, 140, 141, 268, 269, rng.randrange(1, 2000)]))
        parts = encode_parts(data.hex(), forced=BINARY, reference=rng.randrange(256))
        assert len(parts) == analyse_as(data.hex(), BINARY).parts
        assert b"".join(p.short_message[6:] if p.esm_class else p.short_message for p in parts) == data
        alphabet = "".join(sorted(GSM7_BASIC | GSM7_EXTENDED))
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 700)))
        for forced in (GSM7, UCS2):
            parts = encode_parts(text, forced=forced, reference=1)
            assert len(parts) == analyse_as(text, forced).parts
            assert "".join(decode(p) for p in parts) == text


def test_the_validity_period_is_an_smpp_absolute_time_in_utc() -> None:
    assert absolute_time(dt.datetime(2026, 12, 1, 5, 30, 7, 900_000)) == "261201053007000+"
    assert absolute_time(dt.datetime(2027, 1, 9, 23, 0, 0)) == "270109230000000+"
    zoned = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert absolute_time(zoned) == "261201060000000+"
    assert len(absolute_time(utcnow())) == 16


# -- the router: MMS only to a carrier that carries it --------------------------------------------


class Fake(Carrier):
    """A carrier in memory: takes everything while up; says whether it carries MMS."""

    def __init__(self, name: str, *, mms: bool = False, up: bool = True) -> None:
        self.name, self.carries_mms, self.up = name, mms, up
        self.taken: list[str] = []

    @property
    def available(self) -> bool:
        return self.up

    async def start(self, events: CarrierEvents) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def submit(self, batch: list[Submission], report: Report | None = None) -> list[SubmitResult]:
        if not self.up:
            return [SubmitResult(Outcome.UNAVAILABLE, error_code="CARRIER_UNAVAILABLE") for _ in batch]
        self.taken += [s.message_id for s in batch]
        return [SubmitResult(Outcome.ACCEPTED, carrier_ref=s.message_id, carrier=self.name) for s in batch]


def message(to: str = "+27821234567", *, mms: bool = False, via: str | None = None) -> Submission:
    return Submission(new_id(), to, None, "hello", GSM7, 1, via=via, mms=mms)


def submit(router: Router, batch: list[Submission]) -> list[SubmitResult]:
    return asyncio.run(router.submit(batch))


def test_the_carriers_that_carry_mms() -> None:
    assert SimulatedCarrier(SimulatorSettings()).carries_mms
    assert not SmppCarrier(CarrierSettings(name="acme", system_id="pigeon")).carries_mms
    assert Router([Route(Fake("a")), Route(Fake("b", mms=True))]).carries_mms
    assert not Router([Route(Fake("a")), Route(Fake("b"))]).carries_mms


def test_an_mms_goes_only_to_a_carrier_that_carries_it_failover_included() -> None:
    sms, down, mms = Fake("sms"), Fake("down", mms=True, up=False), Fake("mms", mms=True)
    router = Router([Route(sms), Route(down), Route(mms)])
    text, media = message(), message(mms=True)
    results = submit(router, [text, media])
    assert [(r.outcome, r.carrier) for r in results] == [(Outcome.ACCEPTED, "sms"), (Outcome.ACCEPTED, "mms")]
    assert sms.taken == [text.message_id] and mms.taken == [media.message_id]
    mms.up = False  # every MMS carrier down: it waits for one, it is not refused
    (waiting,) = submit(router, [message(mms=True)])
    assert waiting.outcome is Outcome.UNAVAILABLE and sms.taken == [text.message_id]


def test_an_mms_no_carrier_can_carry_is_rejected_clearly() -> None:
    router = Router([Route(Fake("sms")), Route(Fake("uk", mms=True), prefixes=("+44",))])
    za, uk = submit(router, [message("+27821234567", mms=True), message("+447700900123", mms=True)])
    assert (za.outcome, za.error_code) == (Outcome.REJECTED, "NO_MMS_CARRIER") and "MMS" in (za.detail or "")
    assert (uk.outcome, uk.carrier) == (Outcome.ACCEPTED, "uk")
    # a peering or BYOC number's own carrier, which cannot carry MMS: refused the same way, not sent elsewhere
    (peering,) = submit(router, [message(mms=True, via="sms")])
    assert (peering.outcome, peering.error_code) == (Outcome.REJECTED, "NO_MMS_CARRIER")
    (nowhere,) = submit(router, [message(mms=True, via="gone")])
    assert nowhere.error_code == "NO_ROUTE"


# -- SMPP: the options in the submit_sm, and what a receipt of expiry says ----------------------


class Collector:
    def __init__(self) -> None:
        self.receipts: list[Receipt] = []

    def receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)

    def inbound(self, message: InboundSms) -> None:
        pass

    def flushed(self) -> Awaitable[None]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def test_the_smpp_carrier_puts_each_option_in_the_submit_sm() -> None:
    expires = dt.datetime(2031, 5, 17, 8, 9, 10)

    async def main() -> None:
        async with Smsc(port=0, control_port=0, receipt_delay=0.0) as smsc:
            carrier = SmppCarrier(CarrierSettings(name="acme", host="127.0.0.1", port=smsc.port, system_id="pigeon",
                                                  password="secret", validity=3600, reconnect_min=0.05))
            await carrier.start(Collector())
            assert await carrier.wait_bound(5)
            flash = Submission(new_id(), "+27820000001", None, "Now!", UCS2, 1, data_coding=2, flash=True,
                               expires_at=expires)
            data = Submission(new_id(), "+27820000002", None, DATA[:200].hex(), BINARY, 2, data_coding=1)
            plain = Submission(new_id(), "+27820000003", None, "Hi", GSM7, 1)
            media = Submission(new_id(), "+27820000004", None, "pic", GSM7, 1, mms=True)
            results = await carrier.submit([flash, data, plain, media])
            assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3 + [Outcome.REJECTED]
            assert results[3].error_code == "NO_MMS_CARRIER"
            seen = {m["destination"]: [] for m in smsc.messages()}
            for m in smsc.messages():
                seen[m["destination"]].append(m)
            assert sorted(seen) == ["27820000001", "27820000002", "27820000003"]  # the MMS never went
            (f,) = seen["27820000001"]
            assert (f["data_coding"], f["validity_period"], f["text"]) == (0x18, "310517080910000+", "Now!")
            first, second = seen["27820000002"]
            assert (first["data_coding"], first["esm_class"], second["esm_class"]) == (0x04, 0x40, 0x40)
            assert bytes.fromhex(first["short_message"])[6:] + bytes.fromhex(second["short_message"])[6:] == DATA[:200]
            (p,) = seen["27820000003"]
            assert (p["data_coding"], p["validity_period"]) == (0x00, "000000010000000R")  # the carrier's own
            await carrier.stop()

    asyncio.run(main())


@pytest.mark.parametrize(("text", "code"), [
    (b"id:00A1b2 sub:001 dlvrd:000 submit date:2611221200 done date:2611221201 stat:EXPIRED err:000 text:hi",
     "EXPIRED:000"),
    (b"id:00A1b2 sub:001 dlvrd:000 submit date:2611221200 done date:2611221201 stat:EXPIRED text:hi", "EXPIRED"),
])
def test_a_receipt_of_expiry_fails_the_message_with_a_code_that_says_expired(text: bytes, code: str) -> None:
    carrier = SmppCarrier(CarrierSettings(name="acme", system_id="pigeon"))
    receipt = carrier._receipt(P.deliver_sm(1, esm_class=0x04, source_addr="27821234567", short_message=text))
    assert receipt is not None and receipt.status is Status.FAILED
    assert receipt.error_code == code and receipt.error_code.partition(":")[0] == "EXPIRED"


# -- the claim: a message whose validity ended is not sent ----------------------------------------


def accepted(db: Database, texts: int, credits: float = 10) -> tuple[Principal, list[str]]:
    with db.write() as session:
        new = create_account(session, f"{uuid.uuid4().hex[:8]}@example.com", credits=credits)
        me = Principal(new.user.id, new.user.account_id, new.user.email, True)
    sender = Sender(Settings(_env_file=None, database_url="sqlite://", demo_account=False))
    batch = [sender.prepare(f"+2782555{i:04d}", f"message {i}") for i in range(texts)]
    with db.write() as session:
        accept(session, me, batch, utcnow())
    return me, [m.id for m in batch]


def set_options(db: Database, message_id: str, **values: object) -> None:
    with db.write() as session:
        session.execute(update(Message).where(Message.id == message_id).values(**values))


def balance(db: Database, user_id: int) -> int:
    with db.read() as session:
        return session.scalar(select(UserRow.credit_balance).where(UserRow.id == user_id))


def test_a_claim_fails_what_expired_and_carries_the_rest_with_their_options(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db  # of its own: nobody else claims its queue
    me, (expired, flash, plain) = accepted(db, 3)
    now = utcnow() + dt.timedelta(seconds=1)
    later = now + dt.timedelta(minutes=30)
    charged = balance(db, me.user_id)
    set_options(db, expired, expires_at=now - dt.timedelta(seconds=1), flash=True)
    set_options(db, flash, expires_at=later, flash=True, data_coding=2, encoding=UCS2, mms=True)
    with db.write() as session:
        claimed = queue.claim(session, now, limit=10, lease=dt.timedelta(seconds=30), skip_locked=not db.is_sqlite)
    subs = {c.submission.message_id: c.submission for c in claimed}
    assert sorted(subs) == sorted([flash, plain])
    assert (subs[flash].flash, subs[flash].data_coding, subs[flash].expires_at, subs[flash].mms) == (True, 2, later,
                                                                                                   True)
    assert (subs[plain].flash, subs[plain].data_coding, subs[plain].expires_at, subs[plain].mms) == (False, None, None,
                                                                                                   False)
    with db.read() as session:
        row = session.get(Message, expired)
        assert (row.status, row.error_code) == (Status.FAILED_REFUNDED, "EXPIRED")
        assert "validity period ended" in row.error_detail
        assert session.get(QueueEntry, expired) is None
        refund = row.credit_cost
    assert refund > 0 and balance(db, me.user_id) == charged + refund  # its credits back


def test_a_message_in_doubt_is_not_expired_by_the_claim(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    _, (doubtful,) = accepted(db, 1)
    now, lease = utcnow() + dt.timedelta(seconds=1), dt.timedelta(seconds=30)
    with db.write() as session:  # handed over, then the process died before recording the answer
        (first,) = queue.claim(session, now, limit=10, lease=lease, skip_locked=not db.is_sqlite, hand_over_first=10)
        assert first.handed
    set_options(db, doubtful, expires_at=now)
    with db.write() as session:
        (again,) = queue.claim(session, now + 2 * lease, limit=10, lease=lease, skip_locked=not db.is_sqlite)
    assert again.in_doubt and again.submission.expires_at == now  # resent (policy), its expiry for the SMSC
    with db.read() as session:
        assert session.get(Message, doubtful).status == Status.SCHEDULED


# -- end to end: `pigeon worker` → SMPP → `pigeon smsc` ----------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def wire(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SmscProcess,
                                                                                                     Database]]:
    """`pigeon smsc`, and a `pigeon worker` delivering through it from a database of its own
    (the two start side by side: the worker binds as soon as the SMSC listens)."""
    workdir = tmp_path_factory.mktemp("wire")
    smsc = SmscProcess(workdir)
    with own_database(request.param, workdir) as database:
        carrier = smsc.url + "?reconnect_min=0.1&reconnect_max=0.3"
        env = Server(url_of(database), workdir, extra_env={"PIGEON_CARRIER_URL": carrier}).env
        with open(workdir / "worker.log", "ab") as log:
            worker = subprocess.Popen([sys.executable, "-m", "pigeon", "worker"], env=env, cwd=workdir, stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            smsc.start().wait_bound(30)
            yield smsc, database
        finally:
            worker.terminate()
            worker.wait(10)
            smsc.stop()


def queued(database: Database, user_id: int, account_id: int, to: str, body: str, **options: object) -> str:
    """A message accepted as the API accepts it, with its send options written in the same commit."""
    sender = Sender(Settings(_env_file=None, database_url="sqlite://", demo_account=False))
    outgoing = sender.prepare(to, body)
    with database.write() as session:
        accept(session, Principal(user_id, account_id, "", True), [outgoing], utcnow())
        session.execute(update(Message).where(Message.id == outgoing.id).values(**options))
    return outgoing.id


def final(database: Database, message_id: str, timeout: float = 15) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        with database.read() as session:
            row = session.get(Message, message_id)
            session.expunge(row)
        if row.status not in (Status.SCHEDULED, Status.SENT) or time.monotonic() > deadline:
            return row
        time.sleep(0.05)


def test_options_arrive_at_the_smsc_and_expired_or_mms_messages_never_do(
    wire: tuple[SmscProcess, Database],
) -> None:
    smsc, database = wire
    with database.write() as session:
        user = create_account(session, f"{uuid.uuid4().hex[:8]}@example.com", credits=100).user
        user_id, account_id = user.id, user.account_id
    expires = (utcnow() + dt.timedelta(hours=2)).replace(microsecond=0)
    before = balance(database, user_id)
    base = f"+2782{uuid.uuid4().int % 10**5:05d}"
    flash = queued(database, user_id, account_id, base + "01", "Wake up!", flash=True, data_coding=2,
                   encoding=UCS2, expires_at=expires)
    binary = queued(database, user_id, account_id, base + "02", DATA[:150].hex(), data_coding=1,
                    encoding=BINARY, parts=2)
    expired = queued(database, user_id, account_id, base + "03", "too late",
                     expires_at=utcnow() - dt.timedelta(minutes=1))
    mms = queued(database, user_id, account_id, base + "04", "a picture", mms=True)
    assert final(database, flash).status == Status.DELIVERED
    assert final(database, binary).status == Status.DELIVERED
    lapsed, refused = final(database, expired), final(database, mms)
    assert (lapsed.status, lapsed.error_code) == (Status.FAILED_REFUNDED, "EXPIRED")
    assert (refused.status, refused.error_code) == (Status.FAILED_REFUNDED, "NO_MMS_CARRIER")
    assert balance(database, user_id) == before - final(database, flash).credit_cost - final(database,
                                                                                                binary).credit_cost
    seen: dict[str, list[dict]] = {}
    for m in smsc.messages():
        seen.setdefault("+" + m["destination"], []).append(m)
    assert base + "03" not in seen and base + "04" not in seen
    (f,) = seen[base + "01"]
    assert (f["data_coding"], f["esm_class"], f["text"]) == (0x18, 0, "Wake up!")
    assert f["validity_period"] == absolute_time(expires)
    first, second = seen[base + "02"]
    assert [(p["data_coding"], p["esm_class"], p["validity_period"]) for p in (first, second)] == [(0x04, 0x40, "")] * 2
    udh = bytes.fromhex(first["short_message"])[:5]
    assert udh[:3] == h("05 00 03") and udh[4] == 2
    assert bytes.fromhex(first["short_message"])[6:] + bytes.fromhex(second["short_message"])[6:] == DATA[:150]



class Leased(Fake):
    """A carrier whose binds are leased by the cluster: ``held`` says whether this process holds one."""

    slots = 1

    def __init__(self, name: str, *, held: bool) -> None:
        super().__init__(name, up=held)
        self.holding = held

    @property
    def standby(self) -> bool:
        return not self.holding


def test_a_carrier_bound_by_another_process_is_waited_for_not_failed_over() -> None:
    """Its binds are another process's: the message goes back to the queue for that process; a
    carrier that is down here (bound by this process, its link down) still fails over."""
    elsewhere, backup = Leased("acme", held=False), Fake("backup")
    router = Router([Route(elsewhere), Route(backup)])
    (waiting,) = submit(router, [message()])
    assert waiting.outcome is Outcome.UNAVAILABLE and backup.taken == []
    assert not router.standby  # the backup is bound here: the engine still claims
    down_here = Fake("acme", up=False)
    router = Router([Route(down_here), Route(backup)])
    (failed_over,) = submit(router, [message()])
    assert (failed_over.outcome, failed_over.carrier) == (Outcome.ACCEPTED, "backup")
    assert Router([Route(Leased("a", held=False)), Route(Leased("b", held=False))]).standby
