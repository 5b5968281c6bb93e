"""Zoho Voice under many faults at once, over real HTTP: a send whose numbers the simulated
carrier treats four ways, an expired send claimed beside good ones, a crash while the status
callbacks' receiver is down, several processes on one PostgreSQL database with MMS, schedules
and a cancel racing each other, a STOP arriving while a scheduled send waits, and two tenants
guessing each other's ids. Each case checks every message's status, its callbacks (exactly the
statuses it went through, each once) and its credits."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from test_webhooks import Receiver
from test_zoho_voice import PNG, Zoho, count, zoho_for

from conftest import API, Server, own_database, url_of
from pigeon.db import Database, utcnow
from pigeon.delivery.models import QueueEntry
from pigeon.incidents.models import Incident
from pigeon.messages.models import Message
from pigeon.numbers import service as numbers
from pigeon.webhooks.models import State, WebhookEvent

LATER = "%Y-%m-%d %H:%M:%S"


# -- helpers ------------------------------------------------------------------------------------

def customer(suffix: str = "") -> str:
    """A US number no other test texts. With no suffix it ends in 1 (the simulator delivers it);
    the simulator refuses numbers ending 000, fails 666 (UNDELIV) and never answers 999."""
    if suffix:
        return f"+1415{random.randrange(2000, 9000)}{suffix}"
    return f"+1415{random.randrange(200_000, 900_000)}1"


def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Wait for ``check()`` to be truthy, at most ``timeout`` seconds; fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} (last: {value!r})"
        time.sleep(0.05)


def statuses(db: Database, ids: Iterable[str]) -> dict[str, str]:
    """Each message's Pigeon status, from the database."""
    with db.read() as session:
        return dict(session.execute(select(Message.id, Message.status).where(Message.id.in_(list(ids)))).all())


def rows(db: Database, ids: Iterable[str]) -> dict[str, Message]:
    with db.read() as session:
        found = session.scalars(select(Message).where(Message.id.in_(list(ids)))).all()
        session.expunge_all()
        return {m.id: m for m in found}


def posted(receiver: Receiver) -> list[tuple[str, str, str, dict]]:
    """The status callbacks the receiver answered 2xx: (logid, Zoho status, event id, body)."""
    found = []
    for post in receiver.delivered():
        body = json.loads(post["body"])
        headers = {name.lower(): value for name, value in post["headers"].items()}
        found.append((body["logid"], body["status"], headers["x-pigeon-event"], body))
    return found


def wait_callbacks(receiver: Receiver, expected: set[tuple[str, str]], timeout: float = 60.0) -> None:
    receiver.wait(lambda _: {(logid, status) for logid, status, _, _ in posted(receiver)} >= expected, timeout)


def outbox_settled(db: Database, ids: Iterable[str], timeout: float = 60.0) -> list[WebhookEvent]:
    """Wait until no callback event of these messages is still pending; their events."""
    ids = list(ids)

    def done() -> list[WebhookEvent] | None:
        with db.read() as session:
            events = session.scalars(select(WebhookEvent).where(WebhookEvent.message_id.in_(ids))).all()
            session.expunge_all()
        return None if any(e.state == State.PENDING for e in events) else events or None

    return until(done, "callback events still pending", timeout)


def assert_callbacks(receiver: Receiver, expected: set[tuple[str, str]], *, repeats_allowed: bool = False) -> None:
    """Exactly the expected (logid, status) callbacks came. Without ``repeats_allowed`` each
    came once; with it (an outbox retry after a crash may repeat a POST) each status of a
    message came under one event id only, and each event id carried one status."""
    got = posted(receiver)
    assert {(logid, status) for logid, status, _, _ in got} == expected
    if not repeats_allowed:
        twice = {pair: n for pair, n in Counter((logid, status) for logid, status, _, _ in got).items() if n > 1}
        assert not twice, f"callbacks POSTed more than once: {twice}"
    events_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    pairs_of: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for logid, status, event, _ in got:
        events_of[logid, status].add(event)
        pairs_of[event].add((logid, status))
    assert all(len(events) == 1 for events in events_of.values()), f"one status, several events: {events_of}"
    assert all(len(pairs) == 1 for pairs in pairs_of.values()), f"one event, several statuses: {pairs_of}"


def expected_callbacks(final: dict[str, str]) -> set[tuple[str, str]]:
    """The callbacks a message's Zoho statuses imply: SENT then its final status if the carrier
    took it; only its final status (FAILED, EXPIRED, BLOCKED) if it never went; only SENT if it
    is still SENT."""
    found = set()
    for logid, status in final.items():
        if status in ("SENT", "DELIVERED", "UNDELIVERED"):
            found.add((logid, "SENT"))
        found.add((logid, status))
    return found


def tomorrow() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime(LATER)


def make_due(db: Database, ids: Iterable[str]) -> None:
    """Bring these scheduled sends' time forward to now, together (one transaction: claimed together)."""
    with db.write() as session:
        moved = session.execute(update(QueueEntry).where(QueueEntry.message_id.in_(list(ids)))
                                .values(available_at=utcnow() - dt.timedelta(seconds=1))).rowcount
    assert moved == len(list(ids))


def send_mms(http: httpx.Client, sender: str, customers: str, callback: str | None = None,
             **extra: object) -> httpx.Response:
    data = {"customerNumber": customers, "message": "a picture", "senderId": sender, **extra}
    if callback:
        data["statusCallback"] = callback
    return http.post("/rest/json/v2/sms/send", data={"sms_data": json.dumps(data)},
                     files={"mms_media": ("photo.png", PNG, "image/png")})


def logids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [s["logid"] for s in answer.json()["sends"]]


def refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code, answer.text


def close(zoho: Zoho) -> None:
    zoho.http.close()
    zoho.user.http.close()


# -- 1. one send, four fates; an expired one among good ones -----------------------------------------

def test_a_send_to_ten_numbers_that_fare_four_ways_gives_each_its_own_status_callbacks_and_credits(
        db: Database, server: Server) -> None:
    zoho = zoho_for(db, server)
    receiver = Receiver().start()
    try:
        rejected, failing, silent = customer("000"), customer("666"), customer("999")
        good = [customer() for _ in range(7)]
        to = [good[0], rejected, good[1], failing, good[2], silent, *good[3:]]
        sent = zoho.send(",".join(to), "ten at once", statusCallback=receiver.url)
        ids = logids(sent)
        assert len(set(ids)) == 10 and [s["customerNumber"].replace(" ", "") for s in sent.json()["sends"]] == to
        by_number = dict(zip(to, ids, strict=True))
        want = {by_number[n]: "DELIVERED" for n in good} | {
            by_number[rejected]: "FAILED", by_number[failing]: "UNDELIVERED", by_number[silent]: "SENT"}
        for logid, status in want.items():
            zoho.wait(logid, status, timeout=30)
        expected = expected_callbacks(want)
        wait_callbacks(receiver, expected)
        outbox_settled(db, ids)

        # each number its own entry and status, in the logs and in Zoom Connect
        entries = {e["logid"]: e for e in zoho.logs(size=1000)["smsLogQuery"]}
        assert set(entries) == set(ids)
        assert {logid: e["status"] for logid, e in entries.items()} == want
        assert {e["customerNumber"].replace(" ", ""): logid for logid, e in entries.items()} == by_number
        assert entries[by_number[rejected]]["errorCode"] == "SIM_REJECTED"
        assert entries[by_number[failing]]["errorCode"] == "UNDELIV"
        pigeon = statuses(db, ids)
        assert pigeon[by_number[rejected]] == pigeon[by_number[failing]] == "FAILED_REFUNDED"
        assert pigeon[by_number[silent]] == "SENT" and all(pigeon[by_number[n]] == "DELIVERED" for n in good)
        assert zoho.user.message(by_number[rejected])["messageStatus"] == "FAILED_REFUNDED"

        # exactly the callbacks each status implies, each once, each body the entry as it was then
        assert_callbacks(receiver, expected)
        for logid, _, _, body in posted(receiver):
            assert body["customerNumber"] == entries[logid]["customerNumber"] and body["isBlocked"] is False
            assert body["statusDescription"] and body["senderId"].replace(" ", "") == zoho.number
        assert zoho.entry(by_number[silent])["status"] == "SENT", "no receipt ever came for the 999 number"

        # 10 charged at 0.5, the two that failed returned
        assert zoho.user.balance() == 100.0 - 10 * 0.5 + 2 * 0.5
    finally:
        receiver.stop()
        close(zoho)


def test_an_expired_send_claimed_in_one_batch_with_good_ones_alone_expires(db: Database, server: Server) -> None:
    zoho = zoho_for(db, server)
    receiver = Receiver().start()
    try:
        later = tomorrow()
        with_validity = logids(zoho.send(",".join(customer() for _ in range(3)), "valid for five minutes",
                                         scheduledTime=later, timeZone="UTC", validityPeriod=5,
                                         statusCallback=receiver.url))
        without = logids(zoho.send(",".join(customer() for _ in range(2)), "valid for ever", scheduledTime=later,
                                   timeZone="UTC", statusCallback=receiver.url))
        late = logids(send_mms(zoho.http, zoho.number, customer(), receiver.url, scheduledTime=later, timeZone="UTC",
                               validityPeriod=5))
        ids = with_validity + without + late
        assert zoho.user.balance() == 100.0 - 6 * 0.5
        expired = with_validity[1]
        with db.write() as session:  # its validity ran out while it waited, and all six fall due together
            session.execute(update(Message).where(Message.id == expired)
                            .values(expires_at=utcnow() - dt.timedelta(minutes=1)))
            session.execute(update(QueueEntry).where(QueueEntry.message_id.in_(ids))
                            .values(available_at=utcnow() - dt.timedelta(seconds=1)))
        want = {logid: "DELIVERED" for logid in ids} | {expired: "EXPIRED"}
        for logid, status in want.items():
            zoho.wait(logid, status, timeout=30)
        expected = expected_callbacks(want)
        wait_callbacks(receiver, expected)
        outbox_settled(db, ids)
        assert_callbacks(receiver, expected)
        assert zoho.user.message(expired)["messageStatus"] == "FAILED_REFUNDED"
        assert rows(db, [expired])[expired].sent_at is None, "never sent"
        assert zoho.user.balance() == 100.0 - 5 * 0.5, "the expired one's credits came back, only its"
    finally:
        receiver.stop()
        close(zoho)


# -- 2. a crash with callbacks owed -------------------------------------------------------------------

@pytest.mark.parametrize("in_doubt", ["resend", "unknown"])
def test_status_callbacks_owed_when_the_server_is_killed_are_all_made_once_it_restarts(
        fresh_db: tuple[str, Database], tmp_path: Path, in_doubt: str) -> None:
    url, db = fresh_db
    # The server delivers itself (a delivery process would only get SIGTERM from Linux and
    # drain), so SIGKILL stops the API, the engine, the receipts and the outbox at once.
    # Receipts come 1.5 s after a submission, so a message can be caught SENT.
    env = {"PIGEON_DELIVERY_PROCESS": "false", "PIGEON_DELIVERY__LEASE_SECONDS": "3",
           "PIGEON_SIMULATOR__DELIVERY_DELAY": "1.5", "PIGEON_DELIVERY__IN_DOUBT": in_doubt}
    first = Server(url, tmp_path, extra_env=env).start()
    second: Server | None = None
    receiver = Receiver()
    hung = socket.socket()  # the receiver is down: connections are taken and never answered
    hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hung.bind(("127.0.0.1", receiver.port))
    hung.listen(64)
    zoho = zoho_for(db, first)
    try:
        delivered = logids(zoho.send(",".join(customer() for _ in range(4)), "four", statusCallback=receiver.url))
        delivered += logids(zoho.send(customer(), "one more", statusCallback=receiver.url))
        delivered += logids(send_mms(zoho.http, zoho.number, customer(), receiver.url))
        for logid in delivered:
            zoho.wait(logid, "DELIVERED", timeout=30)

        def tried() -> bool:  # each callback written and tried (and not answered: nobody does)
            with db.read() as session:
                events = session.scalars(select(WebhookEvent).where(WebhookEvent.message_id.in_(delivered))).all()
                return len(events) == 2 * len(delivered) and all(
                    e.state == State.PENDING and e.attempts >= 1 for e in events)

        until(tried, "the callbacks were not all tried while the receiver was down")
        # sent, their receipts not yet come; and a last send the kill finds in whatever state
        sent = logids(zoho.send(",".join(customer() for _ in range(3)), "sent", statusCallback=receiver.url))
        until(lambda: set(statuses(db, sent).values()) <= {"SENT", "DELIVERED"}, "not sent")
        last = logids(zoho.send(",".join(customer() for _ in range(3)), "just before", statusCallback=receiver.url))
        doubtful = logids(zoho.send(customer(), "handed over", scheduledTime=tomorrow(), timeZone="UTC",
                                    statusCallback=receiver.url))

        def leased() -> bool:  # some POSTs hang on the dead receiver, their events leased to this process
            with db.read() as session:
                return bool(session.scalar(select(func.count()).select_from(WebhookEvent).where(
                    WebhookEvent.state == State.PENDING,
                    WebhookEvent.available_at > utcnow() + dt.timedelta(seconds=4))))

        until(leased, "no callback was in flight")
        at_kill = statuses(db, sent + last)
        first.kill()
        with db.write() as session:  # and the crash caught this one handed to the carrier, its answer unwritten
            session.execute(update(QueueEntry).where(QueueEntry.message_id.in_(doubtful)).values(
                in_flight=True, attempts=1, available_at=utcnow() - dt.timedelta(seconds=1)))

        hung.close()
        second = Server(url, tmp_path, extra_env=env, port=first.port).start()
        receiver.start()
        ids = delivered + sent + last + doubtful
        final = until(lambda: (found := statuses(db, ids)) and set(found.values()) <= {"DELIVERED", "UNKNOWN"}
                      and found, "not all final", 60)
        # what had been sent is delivered; the one in doubt is sent again (DELIVERED) or made
        # UNKNOWN (SENT to Zoho: its one SENT callback), and so is any of the last the kill caught in flight
        in_doubt_final = {"resend": "DELIVERED", "unknown": "UNKNOWN"}[in_doubt]
        assert {final[logid] for logid in delivered + sent} == {"DELIVERED"}, at_kill
        assert {final[logid] for logid in doubtful} == {in_doubt_final}
        assert {final[logid] for logid in last} <= {"DELIVERED", in_doubt_final}, at_kill
        expected = expected_callbacks({logid: "SENT" if status == "UNKNOWN" else status
                                       for logid, status in final.items()})
        wait_callbacks(receiver, expected, timeout=90)
        events = outbox_settled(db, ids, timeout=60)
        assert {e.state for e in events} == {State.DELIVERED}, at_kill
        assert len(events) == len(expected), "one event per message and status"
        assert_callbacks(receiver, expected, repeats_allowed=True)
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(QueueEntry)) == 0
            in_doubt_kept = session.scalars(select(Incident.subject).where(Incident.kind == "in_doubt")).all()
        assert set(doubtful) <= set(in_doubt_kept), "an incident kept for the message in doubt"
        assert zoho.user.balance() == 100.0 - len(ids) * 0.5
    finally:
        hung.close()
        receiver.stop()
        close(zoho)
        for srv in (second, first):
            if srv is not None:
                srv.stop()


# -- 3. several processes on one PostgreSQL database ----------------------------------------------

def test_several_processes_deliver_concurrent_zoho_sends_once_each(tmp_path: Path) -> None:
    """Two servers on one PostgreSQL database (one with two API workers), each with its delivery
    process; threads send through both at once: SMS with callbacks, MMS, sends scheduled a few
    seconds ahead (some cancelled from the other server just as they fall due), one number of a
    scheduled send cancelled, and a second account spending more credits than it has."""
    with own_database("postgresql", tmp_path) as db:
        url = url_of(db)
        debug = {"PIGEON_LOG_LEVEL": "DEBUG"}  # the simulator logs each submission it accepts
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = Server(url, tmp_path / "a", extra_env={**debug, "PIGEON_WORKERS": "2"}).start()
        b: Server | None = None
        receiver = Receiver().start()
        zoho = zoho_for(db, a, credits=1000.0)
        poor = zoho_for(db, a, credits=5.0)  # ten messages' worth, asked for many more
        opened: list[httpx.Client] = []
        try:
            b = Server(url, tmp_path / "b", extra_env=debug).start()  # a second API, and a second delivery process
            for directory in ("a", "b"):  # each delivery process up and polling before the first send
                until(lambda d=directory: any("worker running" in log.read_text()
                                              for log in (tmp_path / d).glob("*.log")), "no delivery process", 60)
            clients = [zoho.http, httpx.Client(base_url=b.url, headers=dict(zoho.http.headers), timeout=30)]
            poor_clients = [poor.http, httpx.Client(base_url=b.url, headers=dict(poor.http.headers), timeout=30)]
            opened += [clients[1], poor_clients[1]]
            doomed, spared = logids(clients[1].post("/rest/json/v1/sms/send", json={
                "senderId": zoho.number, "customerNumber": f"{customer()},{customer()}", "message": "never mind",
                "scheduledTime": tomorrow(), "timeZone": "UTC", "statusCallback": receiver.url}))
            soon_at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)).replace(microsecond=0)
            soon = soon_at.strftime(LATER)

            def job(n: int) -> tuple[str, list[str]]:
                http = clients[n % 2]
                if n == 9:
                    answer = clients[0].delete(f"/rest/json/v1/sms/schedule/{doomed}")
                    assert answer.status_code == 200, answer.text
                    return "cancel", []
                if n >= 32:  # the poor account: 2 numbers (1 credit) a send, 24 sends for 5 credits
                    answer = poor_clients[n % 2].post("/rest/json/v1/sms/send", json={
                        "senderId": poor.number, "customerNumber": f"{customer()},{customer()}",
                        "message": f"poor {n}", "statusCallback": receiver.url})
                    if answer.status_code == 402:
                        assert answer.json()["code"] == "ZVSMS-4029", answer.text
                        return "poor refused", []
                    return "poor", logids(answer)
                if n % 4 == 0:
                    return "mms", logids(send_mms(http, zoho.number, f"{customer()},{customer()}", receiver.url))
                if n % 4 == 1:
                    return "scheduled", logids(http.post("/rest/json/v1/sms/send", json={
                        "senderId": zoho.number, "customerNumber": f"{customer()},{customer()}",
                        "message": f"soon {n}", "scheduledTime": soon, "timeZone": "UTC",
                        "statusCallback": receiver.url}))
                return "sms", logids(http.post("/rest/json/v1/sms/send", json={
                    "senderId": zoho.number, "customerNumber": ",".join(customer() for _ in range(1 + n % 3)),
                    "message": f"now {n}", "statusCallback": receiver.url}))

            with ThreadPoolExecutor(8) as pool:
                done = list(pool.map(job, range(56)))
            sent = {kind: [logid for k, ids in done if k == kind for logid in ids] for kind, _ in done}
            accepted = [logid for kind, ids in done if not kind.startswith("poor") for logid in ids]
            assert len(accepted) == len(set(accepted)) and len(sent["mms"]) == 16 and len(sent["scheduled"]) == 14
            assert len(sent["poor"]) == 10, "the poor account's credits bought exactly ten messages"

            # cancel every other scheduled one from the server that did not take it, as it falls due:
            # each is cancelled (FAILED, never sent) or refused as no longer scheduled (then sent)
            racing = sent["scheduled"][::2]

            def cancel(i: int) -> httpx.Response:  # spread from 0.15 s before their time to 0.15 s after
                at = soon_at + dt.timedelta(seconds=0.3 * i / (len(racing) - 1) - 0.15)
                while dt.datetime.now(dt.UTC) < at:
                    time.sleep(0.005)
                return clients[i % 2].delete(f"/rest/json/v1/sms/schedule/{racing[i]}")

            with ThreadPoolExecutor(len(racing)) as pool:
                answers = list(pool.map(cancel, range(len(racing))))
            cancelled = {doomed}
            for logid, answer in zip(racing, answers, strict=True):
                if answer.status_code == 200:
                    cancelled.add(logid)
                else:
                    refused(answer, 400, "ZVSMS-4018")
            make_due(db, [spared])
            ids = [*accepted, doomed, spared, *sent["poor"]]
            want = {logid: "FAILED" if logid in cancelled else "DELIVERED" for logid in ids}
            until(lambda: {logid: "FAILED" if s == "FAILED_REFUNDED" else s for logid, s in statuses(db, ids).items()}
                  == want, "not all final as their cancels said", 60)
            expected = expected_callbacks(want)
            wait_callbacks(receiver, expected)
            events = outbox_settled(db, ids)
            assert_callbacks(receiver, expected)
            assert all(e.attempts == 1 for e in events), "an event claimed by two dispatchers"

            # the database: one message per accepted logid, nothing left queued or in doubt
            assert count(db, Message, user_id=zoho.user.user_id) == len(accepted) + 2
            assert count(db, Message, user_id=poor.user.user_id) == 10
            found = rows(db, ids)
            assert all(found[logid].error_code == "CANCELLED" for logid in cancelled)
            assert zoho.entry(doomed)["status"] == "FAILED" and zoho.entry(spared)["status"] == "DELIVERED"
            with db.read() as session:
                assert session.scalar(select(func.count()).select_from(QueueEntry)) == 0
                assert session.scalars(select(Incident.reason)).all() == []
            charged = sum(found[logid].credit_cost for logid in ids if logid not in cancelled)
            assert charged > 0 and zoho.user.balance() + poor.user.balance() == 1005.0 - charged / 1000
            assert poor.user.balance() == 0.0

            # the carrier took each message once (a cancelled one never), and both delivery processes took some
            per_server = []
            taken: Counter[str] = Counter()
            for directory in ("a", "b"):
                seen = [m for log in (tmp_path / directory).glob("*.log")
                        for m in re.findall(r"accepted ([0-9a-f]+) for", log.read_text())]
                per_server.append(len(seen))
                taken.update(seen)
            assert set(taken) == set(ids) - cancelled and max(taken.values()) == 1, "a message was submitted twice"
            assert all(per_server), f"only one delivery process worked: {per_server}"

            # every MMS's file, from either server (and either of a's workers)
            media_ids = {e["mmsMeta"][0]["mmsId"] for e in zoho.logs(size=1000)["smsLogQuery"]
                         if e["logid"] in sent["mms"]}
            assert len(media_ids) == 8, "one file per MMS send, shared by its numbers"
            for media_id in media_ids:
                for http in (*clients, zoho.http):
                    got = http.get("/rest/json/v2/sms/stream/mms", params={"id": media_id})
                    assert got.status_code == 200 and got.content == PNG
        finally:
            receiver.stop()
            for client in opened:
                client.close()
            close(zoho)
            close(poor)
            for srv in (b, a):
                if srv is not None:
                    srv.stop()


# -- 4. a STOP while a scheduled send waits -------------------------------------------------------------

def test_a_stop_while_a_scheduled_send_waits_blocks_only_that_customer_from_that_number(
        db: Database, server: Server) -> None:
    zoho = zoho_for(db, server)
    receiver = Receiver().start()
    second = customer()  # another number of the same account: the STOP was not to it
    with db.write() as session:
        numbers.add(session, numbers.Spec(second), "US", account_id=zoho.account_id)
    try:
        stopper, others = customer(), [customer(), customer()]
        later = tomorrow()
        batch = logids(zoho.send(",".join([others[0], stopper, others[1]]), "the sale starts", scheduledTime=later,
                                 timeZone="UTC", statusCallback=receiver.url))
        blocked = batch[1]
        elsewhere = logids(zoho.send(stopper, "from our other number", senderId=second, scheduledTime=later,
                                     timeZone="UTC", statusCallback=receiver.url))[0]
        assert zoho.user.balance() == 100.0 - 4 * 0.5

        done = subprocess.run([sys.executable, "-m", "pigeon", "simulate", "reply", "--from", stopper, "--to",
                               zoho.number, "--message", "STOP"], env=server.env, cwd=server.workdir,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

        # a new send to that customer from that number is refused and writes nothing
        messages, balance = count(db, Message, user_id=zoho.user.user_id), zoho.user.balance()
        refused(zoho.send(stopper, "another offer", statusCallback=receiver.url), 400, "ZVSMS-4013")
        refused(zoho.send(f"{customer()},{stopper}", "another offer"), 400, "ZVSMS-4013")
        refused(send_mms(zoho.http, zoho.number, stopper, receiver.url), 400, "ZVSMS-4013")
        assert count(db, Message, user_id=zoho.user.user_id) == messages and zoho.user.balance() == balance

        make_due(db, [*batch, elsewhere])
        want = {batch[0]: "DELIVERED", batch[2]: "DELIVERED", blocked: "BLOCKED", elsewhere: "DELIVERED"}
        for logid, status in want.items():
            zoho.wait(logid, status, timeout=30)
        assert zoho.user.message(blocked)["messageStatus"] == "FAILED_OPTOUT"
        assert zoho.entry(blocked)["isBlocked"] is True
        assert rows(db, [blocked])[blocked].sent_at is None, "never sent"
        expected = expected_callbacks(want)
        wait_callbacks(receiver, expected)
        outbox_settled(db, [*batch, elsewhere])
        assert_callbacks(receiver, expected)
        (body,) = [b for logid, _, _, b in posted(receiver) if logid == blocked]
        assert body["status"] == "BLOCKED" and body["isBlocked"] is True
        assert zoho.user.balance() == 100.0 - 3 * 0.5, "the blocked one's credits came back (the STOP's answer is free)"
    finally:
        receiver.stop()
        close(zoho)


# -- 5. two tenants ---------------------------------------------------------------------------------

def test_one_tenants_token_reaches_nothing_of_anothers_even_with_its_ids(db: Database, server: Server) -> None:
    a, b = zoho_for(db, server), zoho_for(db, server)
    try:
        shared = customer()  # both tenants text the same customer
        b_now = logids(b.send(shared, "zebra crossing today"))[0]
        b_job = logids(b.send(shared, "zebra sale tomorrow", scheduledTime=tomorrow(), timeZone="UTC"))[0]
        b_mms = send_mms(b.http, b.number, shared)
        assert b_mms.status_code == 200, b_mms.text
        b_media = b_mms.json()["send"]["mmsMeta"][0]["mmsId"]
        a_now = logids(a.send(shared, "hello from a"))[0]
        a_job = logids(a.send(shared, "a reminder", scheduledTime=tomorrow(), timeZone="UTC"))[0]
        b_ids = {b_now, b_job, b_mms.json()["send"]["logid"]}
        b.wait(b_now, "DELIVERED")
        b_balance = b.user.balance()

        # logs, conversations and schedules hold only a's own, however they are filtered
        everything = a.logs(size=1000)["smsLogQuery"]
        assert {e["logid"] for e in everything} == {a_now, a_job}
        assert {e["logid"] for e in a.logs(customerNumber=shared)["smsLogQuery"]} == {a_now, a_job}
        chats = a.http.get("/rest/json/v1/sms/chatlist").json()
        assert chats["meta"]["total"] == 1 and {e["logid"] for e in chats["chatlist"]} <= {a_now, a_job}
        for query in ({"search": "zebra"}, {"longCode": b.number}):
            assert a.http.get("/rest/json/v1/sms/chatlist", params=query).json()["meta"]["total"] == 0, query
        schedule = a.http.get("/rest/json/v1/sms/schedule").json()
        assert [e["jobId"] for e in schedule["schedule"]] == [a_job]
        assert a.http.get("/rest/json/v1/sms/schedule", params={"searchtext": "zebra"}).json()["meta"]["total"] == 0

        # b's job cannot be cancelled, nor its media streamed, with ids taken from b's answers
        refused(a.http.delete(f"/rest/json/v1/sms/schedule/{b_job}"), 404, "ZVSMS-4004")
        refused(a.http.delete(f"/rest/json/v1/sms/schedule/{b_now}"), 404, "ZVSMS-4004")
        refused(a.http.delete(f"/rest/json/v1/sms/schedule/{b_job.upper()}"), 404, "ZVSMS-4004")
        for mode in ("preview", "download"):
            refused(a.http.get("/rest/json/v2/sms/stream/mms", params={"id": b_media, "mode": mode}), 404,
                    "ZVSMS-4004")
        refused(a.http.get("/rest/json/v2/sms/stream/mms", params={"id": b_media},
                           headers={"Range": "bytes=0-10"}), 404, "ZVSMS-4004")
        refused(a.send(shared, "as b", senderId=b.number), 400, "ZVSMS-4012")
        assert a.user.http.get(f"{API}/messages/{b_now}").status_code == 404

        # b's own are untouched
        assert statuses(db, [b_job])[b_job] == "SCHEDULED"
        assert [e["jobId"] for e in b.http.get("/rest/json/v1/sms/schedule").json()["schedule"]] == [b_job]
        assert {e["logid"] for e in b.logs(size=1000)["smsLogQuery"]} == b_ids
        assert b.http.get("/rest/json/v2/sms/stream/mms", params={"id": b_media}).content == PNG
        assert b.user.balance() == b_balance
    finally:
        close(a)
        close(b)
