"""Work done once a transaction commits, and dropped if it rolls back.

A counter of what a transaction changed (``pigeon.metrics``) must count it once, and only if
it is written: ``on_commit(session, fn, *args)`` runs ``fn(*args)`` after the session's
outermost commit. Work registered inside a savepoint that rolls back is dropped with it; the
rest of the transaction's work stays. A failure in ``fn`` is logged, never raised: the
commit has happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)
KEY = "pigeon.on_commit"


def on_commit(session: Session, fn: Callable[..., object], *args: object) -> None:
    """Run ``fn(*args)`` once the transaction ``session`` is in commits."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(KEY, []).append((transaction, fn, args))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the transaction goes on
        return
    for _, fn, args in session.info.pop(KEY, ()):
        try:
            fn(*args)
        except Exception:
            log.exception("work after a commit failed")


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(KEY)
    if not pending:
        return
    kept = [entry for entry in pending if not _within(entry[0], previous)]
    if kept:
        session.info[KEY] = kept
    else:
        session.info.pop(KEY, None)


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False
