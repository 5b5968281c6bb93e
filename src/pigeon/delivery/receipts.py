"""Delivery receipts to message statuses: matched by (carrier, reference), applied once.

A reference is looked up among the parts of concatenated messages first, then among whole
messages; a receipt whose reference matches nothing is tried again under its other spellings
(``Receipt.alt_refs``, and the same number in decimal or hex). A concatenated message is
DELIVERED when every part is, and fails as soon as one part fails.

A receipt for a message that is not SENT any more is a repeat and changes nothing. A receipt
that matches nothing at all is handed back: the carrier may have answered before its
acceptance was written, and the caller tries it again a little later.
"""

from __future__ import annotations

import datetime as dt
from itertools import groupby

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from pigeon.carriers.base import Receipt
from pigeon.db import bulk
from pigeon.delivery.models import MessagePart
from pigeon.messages.models import Message, Status
from pigeon.messages.service import fail_and_refund
from pigeon.webhooks.service import report_events

M = Message.__table__
MP = MessagePart.__table__
CHUNK = 500
FAILED_DETAIL = "the carrier reported the message undelivered"


def apply_receipts(session: Session, receipts: list[Receipt], now: dt.datetime) -> list[Receipt]:
    """Apply what can be matched; return the receipts that matched no message."""
    unmatched: list[Receipt] = []
    receipts = sorted(receipts, key=lambda r: r.carrier)
    for carrier, group in groupby(receipts, key=lambda r: r.carrier):
        items = list(group)
        for start in range(0, len(items), CHUNK):
            by_ref = {r.carrier_ref: r for r in items[start : start + CHUNK]}
            found = _apply(session, carrier, by_ref, now)
            missed = [r for ref, r in by_ref.items() if ref not in found]
            by_alt = {alt: r for r in missed for alt in spellings(r) if alt != r.carrier_ref}
            if by_alt:
                matched = {id(by_alt[ref]) for ref in _apply(session, carrier, by_alt, now)}
                missed = [r for r in missed if id(r) not in matched]
            unmatched += missed
    return unmatched


def spellings(receipt: Receipt) -> set[str]:
    """Other ways the carrier may have written the reference: the alternatives it gave, and
    each of those read as decimal and written in hex, or read as hex and written in decimal
    (SMSCs that answer submit_sm with "1a2b" and receipt "6699", or the reverse)."""
    out = set(receipt.alt_refs)
    for ref in (receipt.carrier_ref, *receipt.alt_refs):
        if ref.isdigit() and len(ref) < 20:
            out.add(format(int(ref), "x"))
        if len(ref) < 17:
            try:
                out.add(str(int(ref, 16)))
            except ValueError:
                pass
    return out


def _apply(session: Session, carrier: str, by_ref: dict[str, Receipt], now: dt.datetime) -> set[str]:
    """Apply receipts keyed by reference; return the references that matched."""
    found = _apply_to_parts(session, carrier, by_ref, now)
    rest = {ref: r for ref, r in by_ref.items() if ref not in found}
    if rest:
        found |= _apply_to_messages(session, carrier, rest, now)
    return found


def _apply_to_messages(session: Session, carrier: str, by_ref: dict[str, Receipt], now: dt.datetime) -> set[str]:
    rows = session.execute(
        select(M.c.id, M.c.carrier_ref, M.c.status).where(M.c.carrier == carrier, M.c.carrier_ref.in_(by_ref))
    ).all()
    done, failed = [], []
    for row in rows:
        if row.status != Status.SENT:
            continue
        receipt = by_ref[row.carrier_ref]
        if receipt.status is Status.FAILED:
            failed.append((row.id, receipt.error_code, FAILED_DETAIL))
        else:
            done.append((row.id, receipt.status.value, receipt.error_code, receipt.at or now))
    _finish(session, done, failed, now)
    return {row.carrier_ref for row in rows}


def _apply_to_parts(session: Session, carrier: str, by_ref: dict[str, Receipt], now: dt.datetime) -> set[str]:
    rows = session.execute(
        select(MP.c.message_id, MP.c.seq, MP.c.carrier_ref, MP.c.status).where(
            MP.c.carrier == carrier, MP.c.carrier_ref.in_(by_ref)
        )
    ).all()
    if not rows:
        return set()
    changes = [
        {"b_id": row.message_id, "b_seq": row.seq, "b_status": by_ref[row.carrier_ref].status.value,
         "b_code": by_ref[row.carrier_ref].error_code}
        for row in rows
        if row.status == Status.SENT
    ]
    if changes:
        session.execute(
            update(MP)
            .where(MP.c.message_id == bindparam("b_id"), MP.c.seq == bindparam("b_seq"))
            .values(status=bindparam("b_status"), error_code=bindparam("b_code")),
            changes,
        )
        _settle(session, sorted({c["b_id"] for c in changes}), now)
    return {row.carrier_ref for row in rows}


def _settle(session: Session, message_ids: list[str], now: dt.datetime) -> None:
    """Give SENT concatenated messages the status their parts add up to, once they do.

    A message is SENT only once every part was acknowledged, in the transaction that wrote the
    last part's row, so the rows of a SENT message are all of its parts.
    """
    messages = session.execute(
        select(M.c.id).where(M.c.id.in_(message_ids), M.c.status == Status.SENT)
    ).scalars().all()
    if not messages:
        return
    parts: dict[str, list[tuple[str, str | None]]] = {}
    for row in session.execute(
        select(MP.c.message_id, MP.c.status, MP.c.error_code).where(MP.c.message_id.in_(messages)).order_by(MP.c.seq)
    ):
        parts.setdefault(row.message_id, []).append((row.status, row.error_code))
    done, failed = [], []
    for message_id in messages:
        states = parts.get(message_id, [])
        failure = next((code for status, code in states if status == Status.FAILED), False)
        if failure is not False:
            failed.append((message_id, failure, FAILED_DETAIL))
        elif states and all(status != Status.SENT for status, _ in states):
            unknown = [code for status, code in states if status == Status.UNKNOWN]
            if unknown:
                done.append((message_id, Status.UNKNOWN.value, unknown[0], now))
            else:
                done.append((message_id, Status.DELIVERED.value, states[-1][1], now))
    _finish(session, done, failed, now)


def _finish(session: Session, done: list[tuple], failed: list[tuple], now: dt.datetime) -> None:
    """Write final statuses, and queue their delivery reports in the same transaction."""
    if bulk.update(session, "messages", "id",
                   (("status", "text"), ("error_code", "text"), ("final_at", "timestamp")),
                   done, where=f"messages.status = '{Status.SENT.value}'"):
        report_events(session, [row[0] for row in done], now)
    if failed:
        fail_and_refund(session, failed, now, from_statuses=(Status.SENT,))
