"""Numbers and carriers: an account's numbers (the operator: any account's, or the pool of
unallocated ones) with their kind, capabilities, campaign and default sender, in keyset pages;
and, for the operator only, each carrier link's live state as the delivering processes report
it (``pigeon.delivery.links``), a fragment the page polls every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon.accounts.models import Account, User
from pigeon.api.console.dashboard import account_of, accounts
from pigeon.api.console.web import PREFIX, Visitor, context, page, render
from pigeon.campaigns.models import SmsCampaign
from pigeon.db import utcnow
from pigeon.delivery import links
from pigeon.errors import NotFound
from pigeon.numbers import service
from pigeon.numbers.models import PhoneNumber

PAGE = 100
POOL = "pool"
POLL_SECONDS = 3


@dataclass(frozen=True, slots=True)
class Listed:
    """A page of numbers, with what its rows name (campaigns, users) read in one query each."""

    rows: list[PhoneNumber]
    campaigns: dict[str, str]  # id: display name
    users: dict[int, str]  # id: email
    more: str | None  # the next page's URL


def _pool_page(session: Session, text: str | None, after: str | None) -> list[PhoneNumber]:
    """The operator's pool (numbers of no account), in the order of their stored form."""
    query = select(PhoneNumber).where(PhoneNumber.account_id.is_(None))
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(PhoneNumber.number.like(like, escape="\\") |
                            PhoneNumber.display_name.like(like, escape="\\"))
    if after is not None:
        query = query.where(PhoneNumber.number > after)
    return list(session.scalars(query.order_by(PhoneNumber.number).limit(PAGE)))


def listed(request: Request, session: Session, visitor: Visitor) -> tuple[int | None, Listed]:
    """The account asked for (None: the pool) and the page of its numbers asked for."""
    q = request.query_params
    raw, text, after = q.get("account", "").strip(), q.get("q", "").strip()[:64] or None, q.get("after") or None
    if raw == POOL:
        if not visitor.operator:
            raise NotFound(f"No account {raw}")
        account_id, rows = None, _pool_page(session, text, after)
    else:
        account_id = account_of(session, visitor, raw)
        rows = service.page(session, account_id, service.Filter(text=text), after=after, size=PAGE)
    campaign_ids = {r.campaign_id for r in rows if r.campaign_id}
    user_ids = {r.user_id for r in rows if r.user_id}
    campaigns = dict(session.execute(select(SmsCampaign.id, SmsCampaign.display_name)
                                     .where(SmsCampaign.id.in_(campaign_ids))).tuples().all()) if campaign_ids else {}
    users = dict(session.execute(select(User.id, User.email).where(User.id.in_(user_ids))).tuples().all()) \
        if user_ids else {}
    more = None
    if len(rows) == PAGE:
        more = f"{PREFIX}/numbers/rows?{urlencode({**q, 'after': rows[-1].number})}"
    return account_id, Listed(rows, campaigns, users, more)


@page
def numbers(request: Request, visitor: Visitor) -> Response:
    db = context(request).db
    with db.read() as session:
        account_id, found = listed(request, session, visitor)
        account = session.get(Account, account_id) if account_id is not None else None
        choices = accounts(request, session, visitor, account_id)
        shown = links.current(session, utcnow()) if visitor.operator else []
    return render(request, "numbers.html", visitor, found=found, account=account, pool=account_id is None,
                  picker=choices, q=request.query_params.get("q", ""), links=shown, now=utcnow(),
                  poll=POLL_SECONDS)


@page
def rows(request: Request, visitor: Visitor) -> Response:
    """The next page of numbers, for the list's infinite scroll."""
    with context(request).db.read() as session:
        _, found = listed(request, session, visitor)
    return render(request, "_numbers_rows.html", visitor, found=found)


@page(operator=True)
def carriers(request: Request, visitor: Visitor) -> Response:
    """Every carrier link's state, as last reported: the fragment the page polls."""
    now = utcnow()
    with context(request).db.read() as session:
        shown = links.current(session, now)
    return render(request, "_numbers_carriers.html", visitor, links=shown, now=now, poll=POLL_SECONDS)


NAV = [("numbers", "Numbers")]
ROUTES = [
    Route("/numbers", numbers, methods=["GET"]),
    Route("/numbers/rows", rows, methods=["GET"]),
    Route("/numbers/carriers", carriers, methods=["GET"]),
]
