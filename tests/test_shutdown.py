"""SIGTERM drains: no more claims, the rounds in flight finish and are recorded, receipts are
stored and acknowledged, the link unbinds, and the process exits in bounded time. Nothing is
left in doubt, so nothing is sent twice after the restart."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from test_smpp_e2e import SmscProcess

from conftest import API, Server, make_user
from pigeon.db import Database
from pigeon.incidents.models import Incident
from pigeon.messages.models import Message
from pigeon.migrations import upgrade


def statuses(db: Database) -> Counter:
    with db.read() as session:
        return Counter(dict(session.execute(select(Message.status, func.count()).group_by(Message.status)).all()))


def sending_through_a_throttled_smsc(tmp_path: Path, throttle: int, env: dict[str, str], messages: int,
                                     until: str, count: int) -> tuple[SmscProcess, Database, str, Server]:
    """`pigeon serve` delivering ``messages`` through a `pigeon smsc` that takes ``throttle``
    submit_sm a second, returned once the SMSC's ``until`` counter reaches ``count``."""
    smsc = SmscProcess(tmp_path, f"throttle = {throttle}\n").start()
    url = f"sqlite:///{tmp_path / 'pigeon.db'}"
    db = Database(url)
    upgrade(db)
    server = Server(url, tmp_path, extra_env={"PIGEON_CARRIER_URL": smsc.url, **env}).start()
    smsc.wait_bound()
    user = make_user(db, server, credits=5000)
    entries = [{"recipientNumber": f"+2782{i:06d}1", "message": f"drain {i}"} for i in range(messages)]
    assert user.http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": entries}).status_code == 200
    deadline = time.monotonic() + 10
    while smsc.stats()[until] < count:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return smsc, db, url, server


def test_sigterm_drains_mid_delivery_and_nothing_is_sent_twice(tmp_path: Path) -> None:
    env = {"PIGEON_DELIVERY__DRAIN_SECONDS": "8", "PIGEON_DELIVERY__LEASE_SECONDS": "5", "PIGEON_LOG_LEVEL": "INFO"}
    # throttled: a round is with the SMSC
    smsc, db, url, server = sending_through_a_throttled_smsc(tmp_path, 300, env, 1200, "submit_sm", 200)
    try:
        started = time.monotonic()
        server.proc.terminate()
        code = server.proc.wait(30)
        took = time.monotonic() - started
        assert code in (0, -15) and took < 8 + 7, (code, took)  # uvicorn re-raises SIGTERM once it has shut down
        assert not smsc.stats()["sessions"], "the link was not unbound"
        log = (tmp_path / f"server-{server.port}.log").read_text()
        assert "stopped" in log and "cut short" not in log, log[-2000:]
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(Incident)) == 0
        after_stop = statuses(db)
        assert after_stop["SCHEDULED"] > 0 and after_stop["SENT"] + after_stop["DELIVERED"] > 0, after_stop
        server = Server(url, tmp_path, extra_env={"PIGEON_CARRIER_URL": smsc.url, **env}).start()
        deadline = time.monotonic() + 60
        while statuses(db)["DELIVERED"] < 1200:
            assert time.monotonic() < deadline, statuses(db)
            time.sleep(0.2)
        assert smsc.stats()["accepted"] == 1200  # each once: nothing was in doubt
    finally:
        server.stop()
        smsc.stop()
        db.dispose()


def test_a_drain_cut_short_leaves_in_doubt_only_what_was_written(tmp_path: Path) -> None:
    """A drain that runs out of time takes back from the SMPP client what it never wrote:
    those messages are claimed again as they were, never counted in doubt, and under the
    at-most-once policy never made UNKNOWN."""
    env = {"PIGEON_DELIVERY__DRAIN_SECONDS": "1", "PIGEON_DELIVERY__LEASE_SECONDS": "3",
           "PIGEON_DELIVERY__IN_DOUBT": "unknown"}
    smsc, db, url, server = sending_through_a_throttled_smsc(tmp_path, 100, env, 600, "accepted", 50)
    try:
        server.proc.terminate()
        server.proc.wait(30)
        server = Server(url, tmp_path, extra_env={"PIGEON_CARRIER_URL": smsc.url, **env}).start()
        deadline = time.monotonic() + 90
        while statuses(db)["SCHEDULED"] + statuses(db)["SENT"]:
            assert time.monotonic() < deadline, statuses(db)
            time.sleep(0.2)
        final = statuses(db)
        with db.read() as session:
            in_doubt = session.scalar(select(func.count()).select_from(Incident))
        assert final["UNKNOWN"] == in_doubt <= 64, (final, in_doubt)  # at most a window's worth
        assert final["DELIVERED"] + final["UNKNOWN"] == 600
        assert smsc.stats()["accepted"] <= 600  # nothing sent twice
    finally:
        server.stop()
        smsc.stop()
        db.dispose()
