"""`pigeon serve` with delivery in a process of its own (issue 10: both cores).

The poll interval is an hour here, so a send is delivered in time only if the API's commit
woke the delivery process. The child is killed, and restarted; the parent is stopped, and
killed, and the child goes with it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from conftest import API, Server, make_user
from pigeon.db import Database


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(check, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def split(db: Database, database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    srv = Server(database_url, tmp_path, extra_env={
        "PIGEON_DELIVERY_PROCESS": "true", "PIGEON_DELIVERY__POLL_INTERVAL": "3600"}).start()
    yield srv
    srv.stop()


def test_sends_are_delivered_by_the_woken_child_which_is_restarted_when_killed(db: Database, split: Server) -> None:
    user = make_user(db, split)
    (child,) = wait_for(lambda: children(split.proc.pid), "no delivery process")
    first = user.send(message="one").json()["messageId"]
    user.wait_status(first, "DELIVERED")

    os.kill(child, 9)
    (again,) = wait_for(lambda: [p for p in children(split.proc.pid) if p != child], "not restarted")
    time.sleep(1.0)  # it is listening again (a send before that is claimed when it starts)
    second = user.send(message="two").json()["messageId"]
    user.wait_status(second, "DELIVERED")

    split.stop()
    assert split.proc.returncode is not None
    wait_for(lambda: not alive(again), "the delivery process outlived serve")


def test_the_child_stops_when_serve_is_killed(db: Database, split: Server) -> None:
    (child,) = wait_for(lambda: children(split.proc.pid), "no delivery process")
    split.kill()
    wait_for(lambda: not alive(child), "the delivery process outlived a killed serve")


def test_api_workers_wake_one_delivery_process(db: Database, database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("several API processes: PostgreSQL")
    srv = Server(database_url, tmp_path, extra_env={
        "PIGEON_DELIVERY_PROCESS": "true", "PIGEON_DELIVERY__POLL_INTERVAL": "3600", "PIGEON_WORKERS": "2"}).start()
    try:
        user = make_user(db, srv)
        ids = []
        for n in range(1, 21):  # a connection each: both API workers take some
            with httpx.Client(base_url=srv.url, headers={"email": user.email, "token": user.token}) as http:
                ids.append(http.post(f"{API}/sms/send", json={"recipientNumber": f"+2782{n:07d}",
                                                               "message": f"m{n}"}).json()["messageId"])
        for message_id in ids:
            user.wait_status(message_id, "DELIVERED")
    finally:
        srv.stop()


def test_sqlite_writers_in_two_processes_take_turns_on_the_file_lock(tmp_path: Path) -> None:
    """A write waits, in the kernel, while another process holds the writer's lock, and goes
    the moment it is let go (SQLite's own busy handler would sleep and poll instead)."""
    import subprocess
    import sys
    import threading

    from sqlalchemy import text

    from pigeon.migrations import upgrade

    path = tmp_path / "turns.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()", f"{path}.lock"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    done = threading.Event()

    def write() -> None:
        with db.write() as session:
            session.execute(text("INSERT INTO server_keys (name, value) VALUES ('turns', 'x')"))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.5), "wrote while another process held the writer's lock"
    holder.stdin.close()  # it exits, and lets go
    holder.wait(10)
    assert done.wait(10)
    writer.join()
    db.dispose()
