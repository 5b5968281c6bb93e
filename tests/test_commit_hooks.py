"""``db.on_commit``: work done once the transaction commits, never before and never twice;
dropped with a rollback, and with the savepoint it was registered in (but not with a savepoint
released). On both backends."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import text

from pigeon.db import Database, on_commit


def test_work_runs_once_the_whole_transaction_commits(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    done: list[str] = []
    with db.write() as session:
        session.execute(text("SELECT 1"))
        on_commit(session, done.append, "outer")
        with session.begin_nested():
            on_commit(session, done.append, "released savepoint")
        assert done == []  # a savepoint released is not the commit
        with pytest.raises(ZeroDivisionError), session.begin_nested():
            on_commit(session, done.append, "rolled back savepoint")
            raise ZeroDivisionError
        assert done == []
    assert done == ["outer", "released savepoint"]
    with db.write() as session:  # a new transaction of the same kind: nothing left over runs again
        session.execute(text("SELECT 1"))
    assert done == ["outer", "released savepoint"]


def test_work_is_dropped_with_the_transaction(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    done: list[str] = []
    with pytest.raises(RuntimeError), db.write() as session:
        session.execute(text("SELECT 1"))
        on_commit(session, done.append, "never")
        with session.begin_nested():
            on_commit(session, done.append, "never either")
        raise RuntimeError("rolled back")
    with db.write() as session:
        session.execute(text("SELECT 1"))
    assert done == []


def test_a_failing_piece_of_work_is_logged_and_the_rest_runs(fresh_db: tuple[str, Database],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    _, db = fresh_db
    done: list[str] = []
    with caplog.at_level(logging.ERROR, logger="pigeon.db.commit"), db.write() as session:
        session.execute(text("SELECT 1"))
        on_commit(session, lambda: 1 / 0)
        on_commit(session, done.append, "after")
    assert done == ["after"] and "work after a commit failed" in caplog.text


def test_a_batch_retried_in_halves_counts_each_message_once(fresh_db: tuple[str, Database]) -> None:
    """Three bad items among sixteen: the write is retried in halves, each a transaction of its
    own; the SENT counter ends equal to what the database holds, no more (rolled-back tries
    counted nothing), no less."""
    from test_faults import owner, queued

    from pigeon import metrics
    from pigeon.db import utcnow
    from pigeon.db.isolate import write_isolated
    from pigeon.delivery import statuses

    _, db = fresh_db
    ids = queued(db, owner(db), ["x"] * 16)
    bad = {ids[3], ids[4], ids[11]}
    carrier = f"c{uuid.uuid4().hex[:8]}"
    counter = metrics.SENT.labels(carrier)
    before = counter._value.get()

    def write(session, chunk):  # type: ignore[no-untyped-def]
        statuses.mark_sent(session, [(mid, utcnow(), carrier, f"r-{mid}") for mid in chunk])
        if bad & set(chunk):
            raise ValueError("a bad item")

    out = write_isolated(db, ids, write)
    assert sorted(item for item, _ in out.failed) == sorted(bad)
    with db.read() as session:
        stored = session.execute(text("SELECT count(*) FROM messages WHERE carrier = :c"), {"c": carrier}).scalar()
    assert stored == 13 and counter._value.get() - before == 13
