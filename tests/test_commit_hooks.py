"""``db.on_commit``: work done once the transaction commits, never before and never twice;
dropped with a rollback, and with the savepoint it was registered in (but not with a savepoint
released). On both backends."""

from __future__ import annotations

import logging

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
