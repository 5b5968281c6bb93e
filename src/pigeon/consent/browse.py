"""The console's view of consent: an account's opt-outs newest first, with the keyword event
that made each (its keyword, the number texted, the message), and its keyword events.

Both page by keyset. The events read ``ix_keyword_events_account_at`` (account, at) from where
the last page ended; an opt-out's event is found by the same index, at the very time the
opt-out was taken (``consent.act`` and ``set_consent`` write both with one ``now``). A search
by a whole number seeks ``ix_opt_outs_account`` (account, phone); a part of one is met on the
way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from pigeon.consent.keywords import Action
from pigeon.consent.models import ConsentPolicy, KeywordEvent, OptOut

PAGE = 50
MAX_SEARCH = 32

OptOutCursor = tuple[dt.datetime, str, str]
"""Where a page of opt-outs ends: its last row's time, scope and phone."""
EventCursor = tuple[dt.datetime, int]
"""Where a page of events ends: its last event's time and id."""


@dataclass(frozen=True, slots=True)
class Phone:
    """A search by phone: a whole E.164 number, or a part of one."""

    whole: str | None = None
    part: str | None = None


@dataclass(frozen=True, slots=True)
class Shown:
    """An opt-out as the console lists it: the row, and the event that made it (if kept)."""

    opt_out: OptOut
    event: KeywordEvent | None


def _like(text: str) -> str:
    return "%" + text[:MAX_SEARCH].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def opt_outs(session: Session, account_id: int, phone: Phone = Phone(), after: OptOutCursor | None = None,
             size: int = PAGE) -> tuple[list[Shown], OptOutCursor | None]:
    """One page of the account's opt-outs after ``after``, newest first, and the next page's
    cursor (None: this was the last)."""
    query = select(OptOut).where(OptOut.account_id == account_id)
    if phone.whole:
        query = query.where(OptOut.phone == phone.whole)
    elif phone.part:
        query = query.where(OptOut.phone.like(_like(phone.part), escape="\\"))
    if after is not None:
        query = query.where(tuple_(OptOut.at, OptOut.scope, OptOut.phone) < tuple_(*after))
    rows = list(session.scalars(query.order_by(OptOut.at.desc(), OptOut.scope.desc(), OptOut.phone.desc())
                                .limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    made = _events_of(session, account_id, rows)
    shown = [Shown(row, made.get((row.scope, row.phone, row.at))) for row in rows]
    return shown, ((rows[-1].at, rows[-1].scope, rows[-1].phone) if more else None)


def _events_of(session: Session, account_id: int, rows: list[OptOut]) -> dict[tuple, KeywordEvent]:
    """The opt-out event of each row, by (scope, phone, at): one read of the time index."""
    if not rows:
        return {}
    found = session.scalars(select(KeywordEvent).where(
        KeywordEvent.account_id == account_id, KeywordEvent.at.in_(sorted({r.at for r in rows})),
        KeywordEvent.phone.in_(sorted({r.phone for r in rows})), KeywordEvent.action == Action.OPT_OUT.value,
    ).order_by(KeywordEvent.id))
    return {(e.scope, e.phone, e.at): e for e in found}


def events(session: Session, account_id: int, phone: Phone = Phone(), after: EventCursor | None = None,
           size: int = PAGE) -> tuple[list[KeywordEvent], EventCursor | None]:
    """One page of the account's keyword events after ``after``, newest first, and the next
    page's cursor (None: this was the last)."""
    query = select(KeywordEvent).where(KeywordEvent.account_id == account_id)
    if phone.whole:
        query = query.where(KeywordEvent.phone == phone.whole)
    elif phone.part:
        query = query.where(KeywordEvent.phone.like(_like(phone.part), escape="\\"))
    if after is not None:
        query = query.where(tuple_(KeywordEvent.at, KeywordEvent.id) < tuple_(*after))
    rows = list(session.scalars(query.order_by(KeywordEvent.at.desc(), KeywordEvent.id.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, ((rows[-1].at, rows[-1].id) if more else None)


def policy_names(session: Session, account_id: int, limit: int = 1000) -> dict[str, str]:
    """The account's consent policies' names by id (to show a ``policy:ID`` scope by name)."""
    return dict(session.execute(select(ConsentPolicy.id, ConsentPolicy.name)
                                .where(ConsentPolicy.account_id == account_id)
                                .order_by(ConsentPolicy.name).limit(limit)).all())
