"""Delivery receipts to message statuses: matched by (carrier, reference), applied once.

Carriers reuse references (an SMSC restarted counts from 1 again), and send a receipt again
when its acknowledgement was lost. So a receipt is matched to the newest message (or part of
a concatenated message) that the carrier took under its reference no later than the receipt
arrived (``SKEW`` allows for clocks and a receipt read before its submit_sm_resp):

- if that message is still waiting (SENT), the receipt is applied to it;
- if it is final already, the receipt is a repeat of its own, or the early receipt of a
  newer message whose acceptance is not written yet: it is handed back, to be tried again a
  little later, and never applied to an older message still waiting under the same reference;
- if there is none, it is handed back likewise (the carrier may have answered before its
  acceptance was written, or even before its submit_sm_resp was read).

When the receipt names its phone (an SMPP receipt's source address), a message to another
number is not a candidate at all: an older namesake waiting under a reused reference never
takes a receipt meant for a message whose acceptance is not written yet, or was lost.

A reference that matches nothing is tried again under its other spellings
(``Receipt.alt_refs``, and the same number in decimal or hex). Two receipts for one reference
in one write are applied one after the other.

The message rows are locked (in id order) before their parts change, so when the receipts of
a message's parts are applied by several processes at once, each sees what the others wrote,
and the last one finishes the message: DELIVERED when every part is, FAILED as soon as one
part fails, exactly once.
"""

from __future__ import annotations

import datetime as dt
from itertools import groupby

from sqlalchemy import exists, literal, select
from sqlalchemy.orm import Session

from pigeon.carriers.base import Receipt
from pigeon.db import bulk
from pigeon.delivery.models import MessagePart
from pigeon.delivery.refs import stored_ref
from pigeon.delivery.statuses import finish
from pigeon.messages.models import Message, Status

M = Message.__table__
MP = MessagePart.__table__
CHUNK = 500
FAILED_DETAIL = "the carrier reported the message undelivered"
SKEW = dt.timedelta(seconds=2)  # a receipt may arrive this much before its message's recorded acceptance
SENT = Status.SENT.value


def apply_receipts(session: Session, receipts: list[Receipt], now: dt.datetime) -> list[Receipt]:
    """Apply what can be matched; return the receipts that matched no waiting message."""
    unmatched: list[Receipt] = []
    pending = receipts
    while pending:
        # one receipt per reference in each pass; a second one waits for the next pass
        this, later, seen = [], [], set()
        for receipt in pending:
            key = (receipt.carrier, stored_ref(receipt.carrier_ref))
            (later if key in seen else this).append(receipt)
            seen.add(key)
        unmatched += _apply_pass(session, this, now)
        pending = later
    return unmatched


def _apply_pass(session: Session, receipts: list[Receipt], now: dt.datetime) -> list[Receipt]:
    unmatched: list[Receipt] = []
    receipts = sorted(receipts, key=lambda r: r.carrier)
    for carrier, group in groupby(receipts, key=lambda r: r.carrier):
        items = list(group)
        for start in range(0, len(items), CHUNK):
            by_ref = {stored_ref(r.carrier_ref): r for r in items[start : start + CHUNK]}
            found = _apply(session, carrier, by_ref, now)
            missed = [r for ref, r in by_ref.items() if ref not in found]
            by_alt: dict[str, Receipt] = {}
            for r in missed:
                for alt in spellings(r):
                    alt = stored_ref(alt)
                    if alt != stored_ref(r.carrier_ref) and alt not in by_ref:
                        by_alt.setdefault(alt, r)
            if by_alt:
                matched = {id(by_alt[ref]) for ref in _apply(session, carrier, by_alt, now)}
                missed = [r for r in missed if id(r) not in matched]
            unmatched += missed
    return unmatched


def same_phone(reported: str, to_number: str) -> bool:
    """Whether a carrier's spelling of a number (international or national, with or without
    a plus or leading zeros) can be this E.164 number: the shorter one's digits end the longer
    one's. A spelling too short to tell (under 6 digits, or none) matches anything."""
    digits = "".join(c for c in reported if c.isdigit()).lstrip("0")
    if len(digits) < 6:
        return True
    mine = to_number.lstrip("+")
    return mine.endswith(digits) or digits.endswith(mine)


def spellings(receipt: Receipt) -> set[str]:
    """Other ways the carrier may have written the reference: the alternatives it gave, and
    each of those read as decimal and written in hex, or read as hex and written in decimal
    (SMSCs that answer submit_sm with "1a2b" and receipt "6699", or the reverse)."""
    out = set(receipt.alt_refs)
    for ref in (receipt.carrier_ref, *receipt.alt_refs):
        if ref.isascii() and ref.isdigit() and len(ref) < 20:
            out.add(format(int(ref), "x"))
        if len(ref) < 17:
            try:
                out.add(str(int(ref, 16)))
            except ValueError:
                pass
    return out


def _apply(session: Session, carrier: str, by_ref: dict[str, Receipt], now: dt.datetime) -> set[str]:
    """Apply receipts keyed by stored reference; return the references applied."""
    refs = list(by_ref)
    # the newest (sent_at, message id, seq, status) the carrier took under each reference
    # before its receipt came; seq 0 is a message sent in one piece
    newest: dict[str, tuple] = {}
    parts = select(MP.c.carrier_ref, MP.c.sent_at, MP.c.message_id, MP.c.seq, MP.c.status, M.c.to_number).join(
        M, M.c.id == MP.c.message_id).where(MP.c.carrier == carrier, MP.c.carrier_ref.in_(refs))
    whole = select(M.c.carrier_ref, M.c.sent_at, M.c.id, literal(0), M.c.status, M.c.to_number).where(
        M.c.carrier == carrier, M.c.carrier_ref.in_(refs), ~exists().where(MP.c.message_id == M.c.id))
    for query in (parts, whole):
        for ref, sent_at, message_id, seq, status, to_number in session.execute(query):
            receipt = by_ref[ref]
            if sent_at is not None and sent_at > (receipt.received_at or now) + SKEW:
                continue  # taken after the receipt came: not its message
            if receipt.phone and not same_phone(receipt.phone, to_number):
                continue  # a namesake: another number under a reused reference
            candidate = (sent_at or dt.datetime.min, message_id, seq, status)
            if ref not in newest or candidate[:2] > newest[ref][:2]:
                newest[ref] = candidate
    waiting = {ref: (message_id, seq) for ref, (_, message_id, seq, status) in newest.items() if status == SENT}
    if not waiting:
        return set()
    # Lock the messages, in id order, before anything of theirs changes (see the module's doc).
    session.execute(
        select(M.c.id).where(M.c.id.in_(sorted({mid for mid, _ in waiting.values()})))
        .order_by(M.c.id).with_for_update()
    ).all()
    part_changes, done, failed = [], [], []
    for ref, (message_id, seq) in waiting.items():
        receipt = by_ref[ref]
        if seq:
            part_changes.append((message_id, seq, receipt.status.value, receipt.error_code))
        elif receipt.status is Status.FAILED:
            failed.append((message_id, receipt.error_code, FAILED_DETAIL))
        else:
            done.append((message_id, receipt.status.value, receipt.error_code, receipt.at or now))
    if part_changes:
        _apply_to_parts(session, part_changes, now)
    finish(session, done, failed, now)
    return set(waiting)


def _apply_to_parts(session: Session, changes: list[tuple[str, int, str, str | None]], now: dt.datetime) -> None:
    """Set the parts' states (those still SENT; the message rows are locked), then settle
    their messages."""
    bulk.update(session, "message_parts", "message_id", (("status", "text"), ("error_code", "text")), changes,
                match=(("seq", "integer"),), where=f"message_parts.status = '{SENT}'")
    _settle(session, sorted({message_id for message_id, _, _, _ in changes}), now)


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
    finish(session, done, failed, now)

