"""What changes while a message waits in the queue is obeyed when it is claimed, in one mix:
a recipient who opts out, a sender moved to another account, a sender taken out of service,
a campaign declined, a campaign's rate lowered, an absurd rate; and a STOP's confirmation,
which none of these holds back. On both databases, with the claim a delivery process makes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_zoom_numbers import fresh

from conftest import API, Server, make_user, own_database, url_of
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import Principal, create_account
from pigeon.campaigns import service as campaigns
from pigeon.config import Settings
from pigeon.consent import service as consent
from pigeon.db import Database, utcnow
from pigeon.delivery import queue
from pigeon.delivery.pacing import MIN_RATE, Pacer
from pigeon.errors import Invalid
from pigeon.messages.models import Message
from pigeon.numbers import service as numbers
from pigeon.numbers.models import PhoneNumber, State
from pigeon.sending.service import Sender, accept


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def account(db: Database) -> Principal:
    with db.write() as session:
        new = create_account(session, f"{uuid.uuid4().hex[:8]}@example.com", credits=100)
        return Principal(new.user.id, new.user.account_id, new.user.email, True)


def number_in_campaign(db: Database, who: Principal, *, default: bool = False, throughput: float | None = None) -> str:
    with db.write() as session:
        row = numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=who.account_id)
        row.campaign_id = campaigns.create(session, who.account_id, "Waiting", status="active",
                                           throughput=throughput).id
        if default:
            numbers.make_default(session, row)
        return row.number


def balance(db: Database, who: Principal) -> float:
    with db.read() as session:
        return session.scalar(select(UserRow.credit_balance).where(UserRow.id == who.user_id)) / 1000


def statuses(db: Database, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    with db.read() as session:
        return {m.id: (m.status, m.error_code) for m in session.scalars(select(Message).where(Message.id.in_(ids)))}


def test_what_changed_while_a_message_waited_is_obeyed_at_its_claim(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db  # of its own: no other process claims its queue
    ann, bob = account(db), account(db)
    main, spare, paused = (number_in_campaign(db, ann, default=True), number_in_campaign(db, ann),
                           number_in_campaign(db, ann))
    sender = Sender(Settings(_env_file=None, database_url="sqlite://", demo_account=False))
    stopper, keeps, moved_to, paused_to = (f"+2782555{i:04d}" for i in range(4))
    now = utcnow()
    batch = [sender.prepare(stopper, "one"), sender.prepare(keeps, "two"),
             sender.prepare(moved_to, "three", sender=spare), sender.prepare(paused_to, "four", sender=paused)]
    with db.write() as session:
        accept(session, ann, batch, now)
    before = balance(db, ann)
    with db.write() as session:  # meanwhile: a STOP (answered at once), a number moved, one out of service
        consent.act(session, ann.account_id, main, stopper, "STOP", now)
        accept(session, ann, [dataclasses.replace(sender.prepare(stopper, "You are opted out."), sender=main, cost=0,
                                                  answers_keyword=True)], now)
        numbers.allocate(session, [session.scalar(select(PhoneNumber.id).where(PhoneNumber.number == spare))],
                         bob.account_id)
        session.scalar(select(PhoneNumber).where(PhoneNumber.number == paused)).state = State.PENDING.value
    with db.write() as session:
        claimed = queue.claim(session, utcnow() + dt.timedelta(seconds=1), limit=100, lease=dt.timedelta(seconds=30),
                              skip_locked=not db.is_sqlite, hand_over_first=64, pacer=Pacer(),
                              campaigns_required=True)
    going = {c.submission.to: c for c in claimed}
    assert set(going) == {keeps, stopper}  # the second one to the stopper is the confirmation
    assert going[stopper].urgent and going[stopper].submission.body == "You are opted out."
    ids = [m.id for m in batch]
    assert statuses(db, ids) == {
        ids[0]: ("FAILED_OPTOUT", "OPTED_OUT"), ids[1]: ("SCHEDULED", None),
        ids[2]: ("FAILED_REFUNDED", "SENDER_GONE"), ids[3]: ("FAILED_REFUNDED", "SENDER_GONE")}
    assert balance(db, ann) == before + sum(m.cost for m in (batch[0], batch[2], batch[3])) / 1000
    with db.read() as session:
        left = set(session.scalars(select(queue.Q.c.message_id)))
    assert left == {ids[1], going[stopper].submission.message_id}  # the refused rows are gone


def test_a_campaign_declined_or_slowed_while_its_messages_wait(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    ann = account(db)
    main = number_in_campaign(db, ann, default=True, throughput=2)
    sender = Sender(Settings(_env_file=None, database_url="sqlite://", demo_account=False))
    batch = [sender.prepare(f"+2783555{i:04d}", f"paced {i}") for i in range(6)]
    with db.write() as session:
        accept(session, ann, batch, utcnow())
    clock, start = Clock(), utcnow() + dt.timedelta(seconds=1)
    pacer = Pacer(clock)

    def claim(after: float, required: bool = True) -> list[queue.Claimed]:
        with db.write() as session:
            return queue.claim(session, start + dt.timedelta(seconds=after), limit=100,
                               lease=dt.timedelta(seconds=30), skip_locked=not db.is_sqlite, pacer=pacer,
                               campaigns_required=required)

    assert len(claim(0)) == 1  # 2 parts a second: the other five wait for 0.5, 1.0 ... 2.5 s
    with db.write() as session:  # the operator slows it to 1 a second
        campaign = session.scalar(select(PhoneNumber.campaign_id).where(PhoneNumber.number == main))
        campaigns.update_campaign(session, campaigns.get(session, ann.account_id, campaign), throughput=1.0)
    clock.now += 0.5
    assert len(claim(0.5)) == 1  # back from its slot, paced anew at the new rate
    clock.now += 0.5
    assert claim(1.0) == []  # the next one now waits a whole second
    clock.now += 0.5
    assert len(claim(1.5)) == 1
    with db.write() as session:
        campaigns.update_campaign(session, campaigns.get(session, ann.account_id, campaign), status="declined")
    clock.now += 10
    assert claim(30) == []
    assert sorted(s for s, _ in statuses(db, [m.id for m in batch]).values()) == ["FAILED_REFUNDED"] * 4 + [
        "SCHEDULED"] * 2


def test_an_absurd_rate_is_refused_and_cannot_stall_delivery(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    ann = account(db)
    with db.write() as session:
        made = campaigns.create(session, ann.account_id, "Slow", status="active", throughput=1)
        for tiny in (1e-9, 0.0, -1.0):
            with pytest.raises(Invalid):
                campaigns.update_campaign(session, made, throughput=tiny)
    pacer = Pacer(Clock())
    waits = [pacer.wait("C-x", 1e-12, 1, f"m{i}") for i in range(3)]  # a rate written before the check
    assert waits == [0.0, pytest.approx(1 / MIN_RATE), pytest.approx(2 / MIN_RATE)]
    assert utcnow() + dt.timedelta(seconds=max(waits)) > utcnow()  # a date, not an overflow


def test_a_stop_amid_a_paced_backlog_stops_its_message_and_its_answer_goes_first(database_url: str,
                                                                                   tmp_path: Path) -> None:
    """Over HTTP and across processes: a bulk send paced at 1 a second; a phone of it texts STOP
    (``pigeon simulate reply``, another process) while the backlog waits. Its message becomes
    FAILED_OPTOUT and its credit comes back; the confirmation goes out before the backlog ends;
    every other message is delivered."""
    with own_database(database_url, tmp_path) as db:
        server = Server(url_of(db), tmp_path).start()
        try:
            paced_backlog(db, server)
        finally:
            server.stop()


def paced_backlog(db: Database, server: Server) -> None:
    customer = make_user(db, server, credits=100)
    with db.read() as session:
        who = session.scalar(select(UserRow.account_id).where(UserRow.id == customer.user_id))
    with db.write() as session:
        row = numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=who)
        # 1 a second: the last slot is 11 s away, well beyond a loaded machine's start of a CLI process
        row.campaign_id = campaigns.create(session, who, "Paced", status="active", throughput=1).id
        numbers.make_default(session, row)
        main = row.number
    phones = [f"+2784555{i + 1:04d}" for i in range(12)]  # none ends in 000: the simulator refuses those
    sent = customer.http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": [
        {"recipientNumber": phone, "message": f"backlog {i}"} for i, phone in enumerate(phones)]})
    assert sent.status_code == 200, sent.text
    ids = [r["messageId"] for r in sent.json()["sendSmsResponses"]]
    deadline = time.monotonic() + 30
    while True:  # the first slot is used: the claim has paced the rest (ids[0]'s slot may be any of them)
        with db.read() as session:
            if session.scalar(select(func.count()).select_from(Message).where(Message.id.in_(ids),
                                                                            Message.sent_at.is_not(None))):
                break
        assert time.monotonic() < deadline, "nothing of the backlog was sent"
        time.sleep(0.05)
    with db.read() as session:  # the message whose slot is last (a claim paces its rows in no set order)
        latest = session.scalar(select(queue.Q.c.message_id).order_by(queue.Q.c.available_at.desc()).limit(1))
    stopped = ids.index(latest)
    stopper = phones[stopped]
    stop = subprocess.run([sys.executable, "-m", "pigeon", "simulate", "reply", "--from", stopper, "--to", main,
                           "--message", "STOP"], env=server.env, cwd=server.workdir, capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert customer.wait_status(latest, "FAILED_OPTOUT", timeout=30)["messageStatus"] == "FAILED_OPTOUT"
    for message_id in ids[:stopped] + ids[stopped + 1:]:
        customer.wait_status(message_id, "DELIVERED", timeout=30)
    with db.read() as session:
        answer = session.scalar(select(Message).where(Message.to_number == stopper, Message.id != latest))
        last = max(m.sent_at for m in session.scalars(select(Message).where(Message.id.in_(ids))) if m.sent_at)
        assert answer is not None and answer.status == "DELIVERED" and answer.credit_cost == 0
        assert answer.sent_at < last  # not behind the backlog (1 a second: 11 s from first to last)
    assert customer.balance() == 100 - 11  # twelve charged, the opted-out one given back
