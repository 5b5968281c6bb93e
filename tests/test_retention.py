"""Data retention on both backends: final messages older than the limit go, in batches, with
their parts, media links, media nobody else carries and finished webhook deliveries; what is
not final, what still has a webhook delivery pending, and what is recent stays; the archive
holds every purged message with its parts; a purge runs beside live sends without failing or
holding up any, from the command line and from the server's own schedule."""

from __future__ import annotations

import datetime as dt
import gzip
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
from sqlalchemy import func, insert, select

from conftest import Server, make_user, own_database, url_of
from pigeon.accounts.service import create_account
from pigeon.db import Database, utcnow
from pigeon.delivery.models import MessagePart, QueueEntry
from pigeon.media.models import Media, MessageMedia
from pigeon.messages.models import Message
from pigeon.usecases import retention
from pigeon.webhooks.models import WebhookEvent

NOW = utcnow().replace(microsecond=0)
OLD = NOW - dt.timedelta(days=40)
CUT = NOW - dt.timedelta(days=30)


def mid(at: dt.datetime) -> str:
    return int(at.replace(tzinfo=dt.UTC).timestamp()).to_bytes(4, "big").hex() + uuid.uuid4().hex[:16]


def message(account: int, user: int, at: dt.datetime, status: str = "DELIVERED", direction: str = "OUTBOUND",
            **more: object) -> dict:
    return {"id": mid(at), "account_id": account, "user_id": user, "direction": direction, "status": status,
            "from_number": None, "to_number": "+27821234567", "body": f"{status} at {at:%Y-%m-%d}",
            "encoding": "GSM7", "parts": 1, "credit_cost": 1000, "created_at": at, "read": False, "deleted": False,
            "sent_at": None, "final_at": None, "carrier": None, "carrier_ref": None, "mms": None, **more}


def seed(db: Database) -> dict[str, str]:
    """One account's messages of every kind that matters; their ids by name."""
    with db.write() as session:
        user = create_account(session, f"keep-{uuid.uuid4().hex[:8]}@example.com", credits=10).user
        a, u = user.account_id, user.id
        rows = {
            "old delivered": message(a, u, OLD, parts=2, carrier="acme", carrier_ref="r1", sent_at=OLD, final_at=OLD),
            "old failed": message(a, u, OLD, "FAILED_REFUNDED"),
            "old inbound": message(a, u, OLD, direction="INBOUND"),
            "old reported": message(a, u, OLD),
            "old reporting": message(a, u, OLD),  # its webhook delivery still pending
            "old scheduled": message(a, u, OLD, "SCHEDULED"),
            "old sent": message(a, u, OLD, "SENT", sent_at=OLD),  # no receipt yet, however old
            "old mms": message(a, u, OLD, mms=True),
            "old mms shared": message(a, u, OLD, mms=True),
            "new delivered": message(a, u, NOW),
            "new mms shared": message(a, u, NOW, mms=True),
        }
        session.execute(insert(Message.__table__), list(rows.values()))
        ids = {name: row["id"] for name, row in rows.items()}
        session.execute(insert(MessagePart.__table__), [
            {"message_id": ids["old delivered"], "seq": seq, "carrier": "acme", "carrier_ref": f"r{seq}",
             "status": "DELIVERED", "error_code": None, "sent_at": OLD} for seq in (1, 2)])
        session.execute(insert(QueueEntry.__table__), [{"message_id": ids["old scheduled"], "available_at": NOW,
                                                        "attempts": 0, "in_flight": False, "urgent": False}])
        own, shared = str(uuid.uuid4()), str(uuid.uuid4())
        session.execute(insert(Media.__table__), [
            {"id": m, "account_id": a, "file_name": "a.png", "content_type": "image/png", "size": 3, "data": b"png",
             "created_at": OLD} for m in (own, shared)])
        session.execute(insert(MessageMedia.__table__), [
            {"message_id": ids["old mms"], "media_id": own, "position": 0},
            {"message_id": ids["old mms shared"], "media_id": shared, "position": 0},
            {"message_id": ids["new mms shared"], "media_id": shared, "position": 0}])
        events = [(ids["old reported"], "DELIVERED"), (ids["old reporting"], "PENDING")]
        session.execute(insert(WebhookEvent.__table__), [
            {"id": str(uuid.uuid4()), "user_id": u, "kind": "report", "receiver": "http://example.com:80",
             "url": "http://example.com/hook", "params": "{}", "message_id": m, "state": state, "attempts": 1,
             "created_at": OLD, "available_at": OLD} for m, state in events])
        ids["own media"], ids["shared media"] = own, shared
    return ids


def present(db: Database, table, column, values) -> set[str]:  # type: ignore[no-untyped-def]
    with db.read() as session:
        return set(session.scalars(select(column).where(column.in_(values))).all())


def test_old_final_messages_go_with_what_hangs_on_them(fresh_db: tuple[str, Database], tmp_path: Path) -> None:
    _, db = fresh_db
    ids = seed(db)
    done = retention.purge(db, CUT, size=2, archive=tmp_path / "archive")  # small batches: several of them
    gone = {"old delivered", "old failed", "old inbound", "old reported", "old mms", "old mms shared"}
    kept = {"old reporting", "old scheduled", "old sent", "new delivered", "new mms shared"}
    M = Message.__table__
    assert present(db, M, M.c.id, [ids[n] for n in gone | kept]) == {ids[n] for n in kept}
    assert (done.messages, done.media, done.webhook_events) == (6, 1, 1)
    P, Q, MD, MM = (MessagePart.__table__, QueueEntry.__table__, Media.__table__, MessageMedia.__table__)
    assert present(db, P, P.c.message_id, [ids["old delivered"]]) == set()
    assert present(db, Q, Q.c.message_id, [ids["old scheduled"]]) == {ids["old scheduled"]}
    assert present(db, MD, MD.c.id, [ids["own media"], ids["shared media"]]) == {ids["shared media"]}
    assert present(db, MM, MM.c.message_id, [ids["old mms shared"], ids["new mms shared"]]) == {ids["new mms shared"]}
    E = WebhookEvent.__table__
    assert present(db, E, E.c.message_id, [ids["old reported"], ids["old reporting"]]) == {ids["old reporting"]}
    assert done.archived_to is not None
    with gzip.open(done.archived_to) as archive:
        archived = {row["id"]: row for row in map(orjson.loads, archive)}
    assert set(archived) == {ids[n] for n in gone}
    first = archived[ids["old delivered"]]
    assert [p["seq"] for p in first["parts"]] == [1, 2] and first["carrier_ref"] == "r1"
    assert first["body"].startswith("DELIVERED at") and first["created_at"].startswith(f"{OLD:%Y-%m-%dT%H:%M:%S}")
    again = retention.purge(db, CUT, size=2)
    assert again.messages == 0


def old_messages(db: Database, count: int) -> int:
    with db.write() as session:
        user = create_account(session, f"old-{uuid.uuid4().hex[:8]}@example.com", credits=10).user
        session.execute(insert(Message.__table__), [
            message(user.account_id, user.id, OLD - dt.timedelta(seconds=i)) for i in range(count)])
    return user.account_id


def count_of(db: Database, account: int) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).where(Message.__table__.c.account_id == account)) or 0


def sending(server: Server, db: Database, count: int, results: list) -> threading.Thread:
    user = make_user(db, server, credits=10 * count)

    def run() -> None:
        for i in range(count):
            response = user.send(f"+2782{i:06d}1", f"live {i}")
            results.append((response.status_code, response.json().get("messageId") or response.text))

    thread = threading.Thread(target=run)
    thread.start()
    thread.user = user  # type: ignore[attr-defined]
    return thread


def test_a_purge_beside_live_sends_fails_none_of_them(database_url: str, tmp_path: Path) -> None:
    with own_database(database_url, tmp_path) as db:
        old = old_messages(db, 3000)
        server = Server(url_of(db), tmp_path).start()
        try:
            results: list = []
            sender = sending(server, db, 150, results)
            purge = subprocess.run([sys.executable, "-m", "pigeon", "purge", "--older-than", "30", "--batch", "200"],
                                   env=server.env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
            sender.join(60)
            assert purge.returncode == 0, purge.stderr
            assert "purged 3000 messages older than 30 days" in purge.stdout
            assert count_of(db, old) == 0
            assert len(results) == 150 and all(status == 200 for status, _ in results), \
                [r for r in results if r[0] != 200]
            for _, message_id in results[-5:]:
                sender.user.wait_status(message_id, "DELIVERED")  # type: ignore[attr-defined]
        finally:
            server.stop()


def test_the_server_purges_on_its_own_schedule(database_url: str, tmp_path: Path) -> None:
    with own_database(database_url, tmp_path) as db:
        old = old_messages(db, 500)
        server = Server(url_of(db), tmp_path, {"PIGEON_RETENTION__DAYS": "30", "PIGEON_RETENTION__EVERY": "0.5",
                                               "PIGEON_RETENTION__BATCH": "100",
                                               "PIGEON_RETENTION__ARCHIVE": str(tmp_path / "kept")}).start()
        try:
            user = make_user(db, server)
            recent = user.send("+27821230001", "recent").json()["messageId"]
            deadline = time.monotonic() + 20
            while count_of(db, old):
                assert time.monotonic() < deadline, f"{count_of(db, old)} old messages left"
                time.sleep(0.2)
            user.wait_status(recent, "DELIVERED")
            (archive,) = (tmp_path / "kept").glob("messages-*.jsonl.gz")
            with gzip.open(archive) as lines:
                assert sum(1 for _ in lines) == 500
        finally:
            server.stop()
