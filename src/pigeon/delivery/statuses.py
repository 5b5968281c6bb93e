"""The only writer of a message's status: every ``UPDATE messages SET status`` is here.

Each function performs one row of ``pigeon.lifecycle.TRANSITIONS``, conditional on its
from-status (so a change already made, or overtaken, is not made twice), in the caller's
transaction, through ``pigeon.db.bulk`` (one statement for a batch). Messages that become
final are told to ``pigeon.hooks.finished`` in that same transaction: webhooks, and whoever
else the runtime subscribes, react there.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from pigeon import hooks, metrics
from pigeon.accounts.models import User
from pigeon.db import bulk, on_commit
from pigeon.lifecycle import Change, Status, source
from pigeon.logs import about
from pigeon.messages.models import Message

log = logging.getLogger(__name__)
M = Message.__table__
U = User.__table__
CANCELLED, CANCELLED_DETAIL = "CANCELLED", "deleted before it was sent"
_SENT_FROM = source(Change.SEND, Status.SENT).value
_LOST_FROM = source(Change.LOSE, Status.UNKNOWN).value
_DONE_FROM = source(Change.DELIVER, Status.DELIVERED).value
_REFUSED_FROM = source(Change.REFUSE, Status.FAILED_REFUNDED)
_FAILED_FROM = source(Change.FAIL, Status.FAILED_REFUNDED)
_OPTED_OUT_FROM = source(Change.OPT_OUT, Status.FAILED_OPTOUT)
OPTED_OUT_CODE, OPTED_OUT_DETAIL = "OPTED_OUT", "its recipient opted out while it waited to be sent"


def mark_sent(session: Session, sent: list[tuple[str, dt.datetime, str, str]]) -> int:
    """SCHEDULED -> SENT: (id, sent_at, carrier, stored reference) of messages the carrier took."""
    changed = bulk.update_returning(
        session, "messages", "id",
        (("status", "text"), ("sent_at", "timestamp"), ("carrier", "text"), ("carrier_ref", "text")),
        sorted((message_id, Status.SENT.value, at, name, ref) for message_id, at, name, ref in sent),
        ("id", "carrier"), where=f"messages.status = '{_SENT_FROM}'")
    if changed:
        hooks.sent(session, [message_id for message_id, _ in changed], max(at for _, at, _, _ in sent))
        on_commit(session, _count_sent, Counter(carrier for _, carrier in changed))
        if log.isEnabledFor(logging.DEBUG):
            for message_id, carrier in changed:
                log.debug("message %s sent through %s", message_id, carrier,
                          extra=about(message_id=message_id, carrier=carrier))
    return len(changed)


def lose(session: Session, message_ids: list[str], code: str, detail: str, now: dt.datetime) -> None:
    """SCHEDULED -> UNKNOWN: messages not yet sent that the carrier may have all the same
    (charged: they are never sent again)."""
    changed = bulk.update_returning(
        session, "messages", "id", (("status", "text"), ("error_code", "text"), ("error_detail", "text"),
                                    ("final_at", "timestamp")),
        [(mid, Status.UNKNOWN.value, code, detail[:255], now) for mid in sorted(message_ids)],
        ("id", "carrier"), where=f"messages.status = '{_LOST_FROM}'")
    if changed:
        hooks.finished(session, [message_id for message_id, _ in changed], now)
        on_commit(session, _count_finished, [(mid, carrier, Status.UNKNOWN.value, None) for mid, carrier in changed])


def finish(session: Session, done: list[tuple], failed: list[tuple], now: dt.datetime) -> None:
    """SENT -> final, from receipts: ``done`` (id, DELIVERED or UNKNOWN, error code, final_at);
    ``failed`` (id, error code, detail) become FAILED_REFUNDED (``fail_and_refund``)."""
    changed = bulk.update_returning(session, "messages", "id",
                                    (("status", "text"), ("error_code", "text"), ("final_at", "timestamp")),
                                    done, ("id", "carrier", "status", "sent_at", "final_at"),
                                    where=f"messages.status = '{_DONE_FROM}'")
    if changed:
        hooks.finished(session, [row[0] for row in changed], now)
        on_commit(session, _count_finished, [(mid, carrier, status, _latency(sent_at, final_at))
                                             for mid, carrier, status, sent_at, final_at in changed])
    if failed:
        fail_and_refund(session, failed, now, from_statuses=(_FAILED_FROM,))


def cancel(session: Session, message_ids: list[str], now: dt.datetime) -> int:
    """SCHEDULED -> FAILED_REFUNDED: messages deleted before they were sent."""
    return fail_and_refund(session, [(mid, CANCELLED, CANCELLED_DETAIL) for mid in message_ids], now,
                           from_statuses=(_REFUSED_FROM,))


def opt_out(session: Session, message_ids: list[str], now: dt.datetime) -> int:
    """SCHEDULED -> FAILED_OPTOUT: messages whose recipient opted out while they waited; their
    credits go back."""
    return fail_and_refund(session, [(mid, OPTED_OUT_CODE, OPTED_OUT_DETAIL) for mid in message_ids], now,
                           from_statuses=(_OPTED_OUT_FROM,), to=Status.FAILED_OPTOUT)


def fail_and_refund(
    session: Session,
    failures: Iterable[tuple[str, str | None, str | None]],
    now: dt.datetime,
    *,
    from_statuses: tuple[Status, ...],
    to: Status = Status.FAILED_REFUNDED,
) -> int:
    """Fail messages (id, error code, detail) still in one of ``from_statuses`` (to ``to``:
    FAILED_REFUNDED, or FAILED_OPTOUT) and give their credits back, once: a message already
    final is left alone. Their delivery reports are queued in the same transaction. Returns how
    many failed."""
    failures = list(failures)
    details = {message_id: (code, detail) for message_id, code, detail in failures}
    # Locked as read (in id order, as everyone locks messages), so a concurrent failure of the
    # same message waits here and then finds it final: credits are returned once.
    rows = session.execute(
        select(M.c.id, M.c.user_id, M.c.credit_cost, M.c.carrier, M.c.sent_at)
        .where(M.c.id.in_(sorted(details)), M.c.status.in_(from_statuses))
        .order_by(M.c.id)
        .with_for_update()
    ).all()
    if not rows:
        return 0
    # One statement for all of them, the status condition fixed in it (an expanding IN cannot
    # ride an executemany: two failures in one batch would fail the whole write).
    statuses = ", ".join(f"'{Status(s).value}'" for s in from_statuses)
    bulk.update(session, "messages", "id",
                (("status", "text"), ("final_at", "timestamp"), ("error_code", "text"), ("error_detail", "text")),
                [(r.id, to.value, now, _short(details[r.id][0], 32), _short(details[r.id][1], 255))
                 for r in rows],
                where=f"messages.status IN ({statuses})")
    refunds: dict[int, int] = defaultdict(int)
    for row in rows:
        refunds[row.user_id] += row.credit_cost
    credits = [{"b_user": user, "b_milli": milli} for user, milli in sorted(refunds.items()) if milli]  # one lock order
    if credits:
        session.execute(
            update(U)
            .where(U.c.id == bindparam("b_user"))
            .values(credit_balance=U.c.credit_balance + bindparam("b_milli")),
            credits,
        )
    hooks.finished(session, [row.id for row in rows], now)
    on_commit(session, _count_finished, [(row.id, row.carrier, to.value, _latency(row.sent_at, now)) for row in rows])
    return len(rows)


def _latency(sent_at: dt.datetime | str | None, final_at: dt.datetime | str | None) -> float | None:
    """Seconds from a carrier's acceptance to the final word on it (None: it was never sent).
    SQLite answers a raw statement's timestamps as text."""
    if sent_at is None or final_at is None:
        return None
    if isinstance(sent_at, str):
        sent_at = dt.datetime.fromisoformat(sent_at)
    if isinstance(final_at, str):
        final_at = dt.datetime.fromisoformat(final_at)
    return max(0.0, (final_at - sent_at).total_seconds())


def _count_sent(by_carrier: Counter) -> None:
    for carrier, count in by_carrier.items():
        metrics.SENT.labels(carrier or "none").inc(count)


def _count_finished(rows: list[tuple[str, str | None, str, float | None]]) -> None:
    """Each message that became final: (its id, carrier, status, seconds from sent to final)."""
    if log.isEnabledFor(logging.DEBUG):
        for message_id, carrier, status, _ in rows:
            log.debug("message %s is %s", message_id, status, extra=about(message_id=message_id, carrier=carrier))
    rows = [row[1:] for row in rows]  # type: ignore[misc]
    for (carrier, status), count in Counter((carrier or "none", status) for carrier, status, _ in rows).items():
        metrics.FINISHED.labels(carrier, status).inc(count)
    for carrier, _, latency in rows:
        if latency is not None:
            metrics.RECEIPT_LATENCY.labels(carrier or "none").observe(latency)


def _short(text: str | None, size: int) -> str | None:
    return text[:size] if text else text
