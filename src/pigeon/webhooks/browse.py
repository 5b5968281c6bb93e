"""The console's log of webhook deliveries: keyset pages of the events of one user or of a
team, newest first, optionally of one state and kind.

Each user's events are read from ``ix_webhook_events_user`` (user, created_at), seeking from
where the last page ended; a team's are each of its users' newest, merged: one statement per
fifty users (a UNION ALL of per-user index walks), so a page costs the same however long the
log has grown. The filters are met on the way down the index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Row, Select, select, tuple_, union_all
from sqlalchemy.orm import Session

from pigeon.accounts.models import User
from pigeon.webhooks.models import WebhookEvent

E = WebhookEvent.__table__
PAGE = 50
USERS_PER_STATEMENT = 50

Cursor = tuple[dt.datetime, str]
"""Where a page ends: its last event's creation time and id."""


@dataclass(frozen=True, slots=True)
class Filter:
    """Which events (None: any)."""

    state: str | None = None
    kind: str | None = None


def team(session: Session, account_id: int) -> list[int]:
    """The ids of an account's users (whose events make its log)."""
    return list(session.scalars(select(User.id).where(User.account_id == account_id).order_by(User.id)))


def _newest(user_id: int, flt: Filter, after: Cursor | None, limit: int) -> Select:
    query = (select(E.c.id, E.c.user_id, E.c.kind, E.c.message_id, E.c.url, E.c.state, E.c.attempts, E.c.created_at,
                    E.c.available_at, E.c.finished_at, E.c.last_error)
             .where(E.c.user_id == user_id).with_hint(E, "INDEXED BY ix_webhook_events_user", "sqlite"))
    if flt.state:
        query = query.where(E.c.state == flt.state)
    if flt.kind:
        query = query.where(E.c.kind == flt.kind)
    if after is not None:
        query = query.where(tuple_(E.c.created_at, E.c.id) < tuple_(*after))
    return query.order_by(E.c.created_at.desc(), E.c.id.desc()).limit(limit)


def page(session: Session, user_ids: Sequence[int], flt: Filter = Filter(), after: Cursor | None = None,
         size: int = PAGE) -> tuple[list[Row], Cursor | None]:
    """One page of these users' events after ``after``, newest first, and the cursor of the
    next page (None: this was the last)."""
    rows: list[Row] = []
    ids = list(dict.fromkeys(user_ids))
    for start in range(0, len(ids), USERS_PER_STATEMENT):
        walks = [_newest(u, flt, after, size + 1) for u in ids[start:start + USERS_PER_STATEMENT]]
        query = walks[0] if len(walks) == 1 else union_all(*(w.subquery().select() for w in walks))
        rows.extend(session.execute(query).all())
    rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    more = len(rows) > size
    rows = rows[:size]
    return rows, ((rows[-1].created_at, rows[-1].id) if more else None)
