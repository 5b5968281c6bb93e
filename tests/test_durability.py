"""Nothing accepted is lost, nothing is sent twice: crashes, restarts, several workers."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from conftest import API, Server, make_user
from pigeon.accounts.service import Principal, create_account
from pigeon.carriers.base import Outcome, SubmitResult
from pigeon.config import Settings
from pigeon.db import Database, utcnow
from pigeon.delivery import queue
from pigeon.delivery.models import QueueEntry
from pigeon.messages.models import Message
from pigeon.sending.service import Sender, accept


def statuses(db: Database) -> Counter:
    with db.read() as session:
        return Counter(dict(session.execute(select(Message.status, func.count()).group_by(Message.status)).all()))


def wait_all(db: Database, status: str, count: int, timeout: float = 30) -> Counter:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = statuses(db)
        if seen[status] == count:
            return seen
        time.sleep(0.1)
    return statuses(db)


def test_a_crash_loses_nothing(fresh_db: tuple[str, Database], tmp_path: Path) -> None:
    url, db = fresh_db
    env = {"PIGEON_SIMULATOR__DELIVERY_DELAY": "1.5", "PIGEON_DELIVERY__LEASE_SECONDS": "3"}
    first = Server(url, tmp_path, extra_env=env).start()
    user = make_user(db, first, credits=1000)
    entries = [{"recipientNumber": f"+2782123{i:04d}", "message": f"m{i}"} for i in range(1, 61)]
    response = user.http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": entries, "messagesPerMinute": 600})
    ids = [r["messageId"] for r in response.json()["sendSmsResponses"]]
    assert all(ids)
    deadline = time.monotonic() + 30  # the delivery process is up and sending (no fixed sleep: it
    while not statuses(db)["SENT"]:    # may take seconds to start on a loaded machine)
        assert time.monotonic() < deadline, "nothing was sent"
        time.sleep(0.05)
    first.kill()  # some SENT awaiting receipts, most still queued (one is due every 0.1 s)
    before = statuses(db)
    assert before["SCHEDULED"] > 0 and before["SENT"] > 0, before
    assert before["DELIVERED"] == 0
    second = Server(url, tmp_path, extra_env=env).start()
    try:
        after = wait_all(db, "DELIVERED", 60)
        assert after == Counter({"DELIVERED": 60}), after
        user.http.base_url = second.url
        assert user.balance() == 940.0
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(QueueEntry)) == 0
    finally:
        second.stop()


def test_workers_share_the_queue_and_send_each_message_once(fresh_db: tuple[str, Database], tmp_path: Path) -> None:
    url, db = fresh_db
    env = {"PIGEON_LOG_LEVEL": "DEBUG", "PIGEON_DELIVERY__BATCH_SIZE": "50", "PIGEON_SIMULATOR__DELIVERY_DELAY": "0.2"}
    server = Server(url, tmp_path, extra_env=env).start()
    workers = []
    for n in range(2):
        log = open(tmp_path / f"worker-{n}.log", "wb")
        workers.append(subprocess.Popen([sys.executable, "-m", "pigeon", "worker"], env=server.env,
                                        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 60  # each worker up and polling before the first send
        while not all("worker running" in (tmp_path / f"worker-{n}.log").read_text() for n in range(2)):
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        user = make_user(db, server, credits=10_000)
        for batch in range(4):
            entries = [{"recipientNumber": f"+2782{batch}12{i:04d}", "message": "x"} for i in range(1, 501)]
            assert user.http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": entries}).status_code == 200
        seen = wait_all(db, "DELIVERED", 2000, timeout=60)
        assert seen == Counter({"DELIVERED": 2000}), seen
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(10)
        server.stop()
    accepted = Counter()
    per_process = []
    for log in tmp_path.glob("*.log"):
        found = re.findall(r"accepted ([0-9a-f]{24}) for", log.read_text())
        per_process.append(len(found))
        accepted.update(found)
    assert len(accepted) == 2000
    assert max(accepted.values()) == 1, "a message was submitted twice"
    assert sum(1 for n in per_process if n) >= 2, f"only one process did the work: {per_process}"


def test_concurrent_claims_never_overlap(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    sender = Sender(Settings(prices={"default": 0}))
    with db.write() as session:
        new = create_account(session, "claims@example.com")
        principal = Principal(new.user.id, new.user.account_id, new.user.email, True)
        batch = [sender.prepare(f"+2782{i:07d}", "x") for i in range(1, 3001)]
        accept(session, principal, batch, utcnow())
    claimed: list[list[str]] = [[] for _ in range(4)]

    def drain(slot: int) -> None:
        while True:
            with db.write() as session:
                got = queue.claim(session, utcnow(), limit=100, lease=dt.timedelta(seconds=60),
                                  skip_locked=not db.is_sqlite)
                if not got:
                    return
                queue.record(session, utcnow(), "test",
                             [(c, SubmitResult(Outcome.ACCEPTED, carrier_ref=c.submission.message_id)) for c in got],
                             max_attempts=3, retry_base=1, retry_max=1)
            claimed[slot] += [c.submission.message_id for c in got]

    threads = [threading.Thread(target=drain, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [message_id for slot in claimed for message_id in slot]
    assert len(everything) == len(set(everything)) == 3000
    assert statuses(db) == Counter({"SENT": 3000})


def test_expired_leases_are_claimed_again_and_retries_back_off(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    sender = Sender(Settings())
    with db.write() as session:
        new = create_account(session, "lease@example.com", credits=10)
        principal = Principal(new.user.id, new.user.account_id, new.user.email, True)
        accept(session, principal, [sender.prepare("+27821234567", "x")], utcnow())
    now = utcnow()
    with db.write() as session:
        (first,) = queue.claim(session, now, limit=10, lease=dt.timedelta(seconds=30), skip_locked=False)
        assert queue.claim(session, now, limit=10, lease=dt.timedelta(seconds=30), skip_locked=False) == []
    later = now + dt.timedelta(seconds=31)
    with db.write() as session:
        (again,) = queue.claim(session, later, limit=10, lease=dt.timedelta(seconds=30), skip_locked=False)
        assert again.attempts == 2
        queue.record(session, later, "test", [(again, SubmitResult(Outcome.RETRY, detail="busy"))],
                     max_attempts=3, retry_base=10, retry_max=100)
    with db.write() as session:
        assert queue.claim(session, later + dt.timedelta(seconds=19), limit=10, lease=dt.timedelta(seconds=30), skip_locked=False) == []
        (third,) = queue.claim(session, later + dt.timedelta(seconds=21), limit=10, lease=dt.timedelta(seconds=30), skip_locked=False)
        queue.record(session, later, "test", [(third, SubmitResult(Outcome.RETRY))], max_attempts=3, retry_base=10, retry_max=100)
    assert statuses(db) == Counter({"FAILED_REFUNDED": 1})
    with db.read() as session:
        failed = session.scalar(select(Message))
        assert failed.error_code == "RETRIES_EXHAUSTED"
        from pigeon.accounts.service import balance
        assert balance(session, new.user.id) == 10.0
