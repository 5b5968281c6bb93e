"""Delivery receipts to message statuses: matched by (carrier, reference), applied once.

A receipt for a message that is not SENT any more is a repeat and changes nothing. A receipt
whose reference matches no message yet is handed back: the carrier may have answered before
its acceptance was written, and the caller tries it again a little later.
"""

from __future__ import annotations

import datetime as dt
from itertools import groupby

from sqlalchemy import select
from sqlalchemy.orm import Session

from pigeon.carriers.base import Receipt
from pigeon.db import bulk
from pigeon.messages.models import Message, Status
from pigeon.messages.service import fail_and_refund

M = Message.__table__
CHUNK = 500


def apply_receipts(session: Session, receipts: list[Receipt], now: dt.datetime) -> list[Receipt]:
    """Apply what can be matched; return the receipts that matched no message."""
    unmatched: list[Receipt] = []
    receipts = sorted(receipts, key=lambda r: r.carrier)
    for carrier, group in groupby(receipts, key=lambda r: r.carrier):
        items = list(group)
        for start in range(0, len(items), CHUNK):
            unmatched += _apply(session, carrier, items[start : start + CHUNK], now)
    return unmatched


def _apply(session: Session, carrier: str, receipts: list[Receipt], now: dt.datetime) -> list[Receipt]:
    by_ref = {r.carrier_ref: r for r in receipts}
    rows = session.execute(
        select(M.c.id, M.c.carrier_ref, M.c.status).where(
            M.c.carrier == carrier, M.c.carrier_ref.in_(by_ref)
        )
    ).all()
    found = {row.carrier_ref for row in rows}
    done, failed = [], []
    for row in rows:
        if row.status != Status.SENT:
            continue
        receipt = by_ref[row.carrier_ref]
        if receipt.status is Status.FAILED:
            failed.append((row.id, receipt.error_code, "the carrier reported the message undelivered"))
        else:
            done.append((row.id, receipt.status.value, receipt.error_code, receipt.at or now))
    bulk.update(session, "messages", "id",
                (("status", "text"), ("error_code", "text"), ("final_at", "timestamp")),
                done, where=f"messages.status = '{Status.SENT.value}'")
    if failed:
        fail_and_refund(session, failed, now, from_statuses=(Status.SENT,))
    return [r for ref, r in by_ref.items() if ref not in found]
