"""The outbound queue's operations, as plain functions over a write session.

``claim`` leases due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers never take
the same row; SQLite has one writer at a time anyway). ``record`` writes what the carrier
answered, and deletes the rows of messages handed over, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from pigeon.carriers.base import Outcome, Submission, SubmitResult
from pigeon.db import bulk
from pigeon.delivery.models import QueueEntry
from pigeon.messages.models import Message, Status
from pigeon.messages.service import fail_and_refund

Q = QueueEntry.__table__
M = Message.__table__


@dataclass(frozen=True, slots=True)
class Claimed:
    submission: Submission
    attempts: int


def claim(
    session: Session, now: dt.datetime, *, limit: int, lease: dt.timedelta, skip_locked: bool
) -> list[Claimed]:
    """Lease up to ``limit`` due messages, oldest due first."""
    due = select(Q.c.message_id).where(Q.c.available_at <= now).order_by(Q.c.available_at).limit(limit)
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    leased = session.execute(
        update(Q)
        .where(Q.c.message_id.in_(due.scalar_subquery()))
        .values(available_at=now + lease, attempts=Q.c.attempts + 1)
        .returning(Q.c.message_id, Q.c.attempts)
    ).all()
    if not leased:
        return []
    attempts = dict(leased)
    rows = session.execute(
        select(M.c.id, M.c.to_number, M.c.from_number, M.c.body, M.c.encoding, M.c.parts, M.c.status)
        .where(M.c.id.in_(attempts))
    ).all()
    claimed, stale = [], []
    for row in rows:
        if row.status != Status.SCHEDULED:
            stale.append(row.id)
            continue
        sub = Submission(row.id, row.to_number, row.from_number, row.body, row.encoding, row.parts)
        claimed.append(Claimed(sub, attempts[row.id]))
    if stale:
        session.execute(delete(Q).where(Q.c.message_id.in_(stale)))
    return claimed


def record(
    session: Session,
    now: dt.datetime,
    carrier: str,
    results: list[tuple[Claimed, SubmitResult]],
    *,
    max_attempts: int,
    retry_base: float,
    retry_max: float,
) -> None:
    """Write the carrier's answers: SENT, retried later, or failed with credits returned."""
    sent, retry, failed = [], [], []
    for claimed, result in results:
        message_id = claimed.submission.message_id
        if result.outcome is Outcome.ACCEPTED:
            sent.append((message_id, result.carrier_ref))
        elif result.outcome is Outcome.RETRY and claimed.attempts < max_attempts:
            delay = result.retry_after or min(retry_max, retry_base * 2 ** (claimed.attempts - 1))
            retry.append((message_id, now + dt.timedelta(seconds=delay)))
        else:
            code = result.error_code or ("RETRIES_EXHAUSTED" if result.outcome is Outcome.RETRY else None)
            failed.append((message_id, code, result.detail))
    bulk.update(session, "messages", "id",
                (("status", "text"), ("sent_at", "timestamp"), ("carrier", "text"), ("carrier_ref", "text")),
                [(message_id, Status.SENT.value, now, carrier, ref) for message_id, ref in sent])
    bulk.update(session, "outbound_queue", "message_id", (("available_at", "timestamp"),), retry)
    if failed:
        fail_and_refund(session, failed, now, from_statuses=(Status.SCHEDULED,))
    done = [message_id for message_id, _ in sent] + [message_id for message_id, _, _ in failed]
    if done:
        session.execute(delete(Q).where(Q.c.message_id.in_(done)))


def sent_through(session: Session, carrier: str) -> list[tuple[str, str, dt.datetime]]:
    """(ref, to, sent_at) of messages a carrier accepted and has not yet answered for."""
    rows = session.execute(
        select(M.c.carrier_ref, M.c.to_number, M.c.sent_at).where(
            M.c.carrier == carrier, M.c.status == Status.SENT
        )
    ).all()
    return [(r.carrier_ref, r.to_number, r.sent_at) for r in rows]
