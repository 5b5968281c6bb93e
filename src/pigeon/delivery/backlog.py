"""How many of a scope's messages wait in the outbound queue, and how long the oldest due one
has waited: the dashboard's queue depth.

The queue knows messages, not accounts: its rows are joined to their messages. Each count
looks at no more than the ``cap`` first rows of the queue in the order they are claimed in
(``available_at``'s index), each joined to its message by key: a few milliseconds however deep
the queue and however many messages the scope has. Past ``cap`` rows a count is a floor
(``Backlog.capped``); the oldest due row is always among the first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from pigeon.delivery.models import QueueEntry
from pigeon.messages.models import Message
from pigeon.messages.stats import Scope

Q = QueueEntry.__table__
M = Message.__table__
CAP = 5_000


@dataclass(frozen=True, slots=True)
class Backlog:
    due: int  # the scope's messages due now (waiting for a carrier)
    later: int  # scheduled for later, waiting to be retried, or in a carrier's hands right now
    oldest_due: dt.datetime | None  # when the oldest due one became due
    capped: bool  # the queue is deeper than was looked at: the counts are floors


def backlog(session: Session, scope: Scope, now: dt.datetime, cap: int = CAP) -> Backlog:
    owner = M.c.account_id == scope.account_id if scope.user_id is None else M.c.user_id == scope.user_id
    counts, capped, oldest = [], False, None
    for due in (True, False):
        head = (select(Q.c.message_id, Q.c.available_at)
                .where(Q.c.available_at <= now if due else Q.c.available_at > now)
                .order_by(Q.c.available_at).limit(cap).subquery())
        looked, mine, first = session.execute(
            select(func.count(), func.coalesce(func.sum(case((owner, 1), else_=0)), 0),
                   func.min(case((owner, head.c.available_at))))
            .select_from(head.join(M, M.c.id == head.c.message_id))).one()
        counts.append(int(mine))
        capped = capped or looked >= cap
        oldest = first if due else oldest
    return Backlog(counts[0], counts[1], oldest, capped)
