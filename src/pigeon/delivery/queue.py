"""The outbound queue's operations, as plain functions over a write session.

``claim`` leases due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers never take
the same row; SQLite has one writer at a time anyway). ``record`` writes what the carrier
answered, and deletes the rows of messages handed over, in the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from pigeon.carriers.base import Outcome, Submission, SubmitResult
from pigeon.db import bulk
from pigeon.delivery.models import MessagePart, QueueEntry
from pigeon.messages.models import Message, Status
from pigeon.messages.service import fail_and_refund

Q = QueueEntry.__table__
M = Message.__table__
MP = MessagePart.__table__
UNAVAILABLE_WAIT = 5.0  # seconds before a message no carrier could take is tried again


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
    sent_parts = _sent_parts(session, [row.id for row in rows if row.parts > 1 and attempts[row.id] > 1])
    claimed, stale = [], []
    for row in rows:
        if row.status != Status.SCHEDULED:
            stale.append(row.id)
            continue
        sub = Submission(row.id, row.to_number, row.from_number, row.body, row.encoding, row.parts)
        if row.id in sent_parts:
            carrier, refs = sent_parts[row.id]
            sub = dataclasses.replace(sub, sent_parts=refs, sent_carrier=carrier)
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
    """Write the carrier's answers: SENT, retried later, or failed with credits returned.

    ``carrier`` is the name recorded when a result does not name its own. The acknowledged
    parts of a message sent in several parts are kept, whatever became of the rest.
    """
    sent, retry, failed, parts = [], [], [], []
    for claimed, result in results:
        sub = claimed.submission
        message_id = sub.message_id
        new_parts = {seq: ref for seq, ref in result.part_refs.items() if seq not in sub.sent_parts}
        if new_parts:
            parts.append((message_id, sub.sent_carrier or result.carrier or carrier, new_parts))
        if result.outcome is Outcome.ACCEPTED:
            sent.append((message_id, result.carrier or carrier, result.carrier_ref))
        elif result.outcome is Outcome.UNAVAILABLE:  # not the message's fault: not an attempt
            wait = result.retry_after or UNAVAILABLE_WAIT
            retry.append((message_id, now + dt.timedelta(seconds=wait), claimed.attempts - 1))
        elif result.outcome is Outcome.RETRY and claimed.attempts < max_attempts:
            delay = result.retry_after or min(retry_max, retry_base * 2 ** (claimed.attempts - 1))
            retry.append((message_id, now + dt.timedelta(seconds=delay), claimed.attempts))
        else:
            code = result.error_code or ("RETRIES_EXHAUSTED" if result.outcome is Outcome.RETRY else None)
            failed.append((message_id, code, result.detail))
    if parts:
        _keep_parts(session, parts)
    bulk.update(session, "messages", "id",
                (("status", "text"), ("sent_at", "timestamp"), ("carrier", "text"), ("carrier_ref", "text")),
                [(message_id, Status.SENT.value, now, name, ref) for message_id, name, ref in sent])
    bulk.update(session, "outbound_queue", "message_id", (("available_at", "timestamp"), ("attempts", "integer")),
                retry)
    if failed:
        fail_and_refund(session, failed, now, from_statuses=(Status.SCHEDULED,))
    done = [message_id for message_id, _, _ in sent] + [message_id for message_id, _, _ in failed]
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


def _sent_parts(session: Session, message_ids: list[str]) -> dict[str, tuple[str, dict[int, str]]]:
    """For messages retried after some parts got through: {id: (carrier, {seq: ref})}."""
    if not message_ids:
        return {}
    out: dict[str, tuple[str, dict[int, str]]] = {}
    rows = session.execute(
        select(MP.c.message_id, MP.c.seq, MP.c.carrier, MP.c.carrier_ref).where(MP.c.message_id.in_(message_ids))
    )
    for row in rows:
        out.setdefault(row.message_id, (row.carrier, {}))[1][row.seq] = row.carrier_ref
    return out


def _keep_parts(session: Session, parts: list[tuple[str, str, dict[int, str]]]) -> None:
    """Write newly acknowledged parts of these messages."""
    bulk.insert(
        session,
        "message_parts",
        ("message_id", "seq", "carrier", "carrier_ref", "status"),
        [(message_id, seq, name, ref, Status.SENT.value)
         for message_id, name, refs in parts for seq, ref in sorted(refs.items())],
    )
