"""The statistics report: a team's outbound messages counted (or their credits summed) per
user and campaign, by status, in one grouped query.

What each figure holds (Zoom Connect's WebServiceStatistics):

- ``delivered``: DELIVERED; ``failed``: FAILED;
- ``failed_refunded``: FAILED_REFUNDED; ``failed_optout``: FAILED_OPTOUT, both only when asked
  for: otherwise those messages are left out altogether (0, and not in ``total``);
- ``sent``: SENT and UNKNOWN, the messages a carrier took that have no final status (yet);
- ``total``: every message counted, SCHEDULED ones (not yet handed to a carrier) included,
  though they are in no other figure.

A message belongs to the window ``[start, end)`` by when it was created (accepted), and counts
whether or not it was deleted (hidden) since. Inbound messages never count. With
``credit_value`` the figures are sums of credit_cost (thousandths) instead of counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pigeon.messages.models import Direction, Message, Status

M = Message.__table__

FIGURE_OF: dict[str, str] = {
    Status.DELIVERED.value: "delivered",
    Status.FAILED.value: "failed",
    Status.FAILED_REFUNDED.value: "failed_refunded",
    Status.FAILED_OPTOUT.value: "failed_optout",
    Status.SENT.value: "sent",
    Status.UNKNOWN.value: "sent",
}
REFUNDED_AND_OPTOUT = (Status.FAILED_REFUNDED.value, Status.FAILED_OPTOUT.value)


@dataclass(slots=True)
class Figures:
    """One WebServiceStatistics: message counts, or credit values in thousandths."""

    delivered: int = 0
    failed: int = 0
    failed_optout: int = 0
    failed_refunded: int = 0
    sent: int = 0
    total: int = 0

    def add(self, status: str, amount: int) -> None:
        name = FIGURE_OF.get(status)
        if name is not None:
            setattr(self, name, getattr(self, name) + amount)
        self.total += amount


@dataclass(slots=True)
class UserFigures:
    user_id: int
    total: Figures = field(default_factory=Figures)
    campaigns: dict[str | None, Figures] = field(default_factory=dict)

    def sorted_campaigns(self) -> list[tuple[str | None, Figures]]:
        """Campaigns by name, the messages without one (None) first."""
        return sorted(self.campaigns.items(), key=lambda item: (item[0] is not None, item[0] or ""))


@dataclass(slots=True)
class Report:
    grand_total: Figures
    users: list[UserFigures]


def report(
    session: Session,
    user_ids: list[int],
    start: dt.datetime,
    end: dt.datetime,
    *,
    campaign: str | None = None,
    include_refunded_and_optout: bool = False,
    credit_value: bool = False,
) -> Report:
    """The figures of these users (each one listed, in the order given, even with nothing to
    show) for messages created in ``[start, end)`` (naive UTC), optionally of one campaign."""
    users = {user_id: UserFigures(user_id) for user_id in user_ids}
    grand_total = Figures()
    if users:
        amount = func.coalesce(func.sum(M.c.credit_cost), 0) if credit_value else func.count()
        query = (
            select(M.c.user_id, M.c.campaign, M.c.status, amount)
            .where(
                M.c.user_id.in_(users),
                # deleted or not, both count; said so, the window is a range of the lists'
                # index (user_id, deleted, created_at, id)
                M.c.deleted.in_([False, True]),
                M.c.direction == Direction.OUTBOUND.value,
                M.c.created_at >= start,
                M.c.created_at < end,
            )
            .group_by(M.c.user_id, M.c.campaign, M.c.status)
        )
        if campaign is not None:
            query = query.where(M.c.campaign == campaign)
        if not include_refunded_and_optout:
            query = query.where(M.c.status.not_in(REFUNDED_AND_OPTOUT))
        for user_id, name, status, value in session.execute(query):
            figures = users[user_id]
            figures.campaigns.setdefault(name, Figures()).add(status, int(value))
            figures.total.add(status, int(value))
            grand_total.add(status, int(value))
    return Report(grand_total, list(users.values()))
