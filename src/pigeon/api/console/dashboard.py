"""Dashboard: a scope's last 24 hours in charts (messages per hour by status, the delivery
rate, the credits used), its queue now, and a few headline figures, updated live.

The page is only the frame (no query beyond the operator's list of accounts): its script
(``static/console/dashboard.js``) reads ``data.json`` at once and every few seconds, and updates
the charts (uPlot) and the figures in place. The scope: a user's own messages; an
administrator's account; the operator's pick of accounts (``account``, their own by default).
Another account, by parameter, does not exist for anyone else (404).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.accounts.models import Account, User
from pigeon.api.console.web import PREFIX, AccountChoices, Visitor, account_asked, account_picker, context, page, render
from pigeon.credits import MILLI
from pigeon.db import utcnow
from pigeon.delivery.backlog import Backlog, backlog
from pigeon.lifecycle import Status
from pigeon.messages import stats

REFRESH_SECONDS = 5
HOURS = 24
FAILED = (Status.FAILED.value, Status.FAILED_REFUNDED.value, Status.FAILED_OPTOUT.value)
PENDING = (Status.SCHEDULED.value, Status.SENT.value)
remembered = stats.Remembered()  # the older hours of each scope, read at most once a minute


def account_of(session: Session, visitor: Visitor, raw: str | None) -> int:
    """The account a request names (``account``), if the visitor reaches it; else their own."""
    return account_asked(session, visitor, raw)


def accounts(request: Request, session: Session, visitor: Visitor, chosen: int | None) -> AccountChoices | None:
    """The accounts the visitor may pick (the operator: every one; a reseller's administrator:
    theirs and their customers'; others: none to pick), as the request's search narrows them."""
    return account_picker(request, session, visitor, chosen)


def scope_of(session: Session, visitor: Visitor, raw: str | None) -> stats.Scope:
    account_id = account_of(session, visitor, raw)
    if visitor.operator or visitor.principal.is_admin:
        return stats.Scope(account_id)
    return stats.Scope(account_id, visitor.principal.user_id)


@page
def dashboard(request: Request, visitor: Visitor) -> Response:
    raw = request.query_params.get("account")
    with context(request).db.read() as session:
        scope = scope_of(session, visitor, raw)
        account = session.get(Account, scope.account_id)
        choices = accounts(request, session, visitor, scope.account_id)
    query = urlencode({"account": scope.account_id}) if raw else ""
    return render(request, "dashboard.html", visitor, scope=scope, account=account,
                  picker=choices, data_url=f"{PREFIX}/dashboard/data.json" + (f"?{query}" if query else ""),
                  refresh=REFRESH_SECONDS)


@page
def data(request: Request, visitor: Visitor) -> Response:
    """The scope's figures as JSON, for the page's script."""
    now = utcnow()
    with context(request).db.read() as session:
        scope = scope_of(session, visitor, request.query_params.get("account"))
        hours = remembered.hours(session, scope, now, HOURS)
        queue = backlog(session, scope, now)
        balance = _balance(session, scope)
    return JSONResponse(figures(hours, queue, balance, scope, now))


def _balance(session: Session, scope: stats.Scope) -> int:
    """Credits (thousandths) left: the user's, or the sum of the account's users'."""
    if scope.user_id is not None:
        return session.scalar(select(User.credit_balance).where(User.id == scope.user_id)) or 0
    return int(session.scalar(select(func.coalesce(func.sum(User.credit_balance), 0))
                              .where(User.account_id == scope.account_id)) or 0)  # PostgreSQL's sum: a numeric


def figures(hours: stats.Hours, queue: Backlog, balance: int, scope: stats.Scope, now: dt.datetime) -> dict:
    """What the page shows, as its script reads it: times in Unix seconds (UTC), credits whole."""
    out = hours.outbound
    totals = hours.totals
    rate = hours.overall_rate()
    return {
        "scope": {"account": scope.account_id, "user": scope.user_id},
        "now": _unix(now),
        "hours": [_unix(start) for start in hours.starts],
        "series": {
            "delivered": out[Status.DELIVERED.value],
            "pending": _sum(out, PENDING),
            "failed": _sum(out, FAILED),
            "unknown": out[Status.UNKNOWN.value],
            "received": hours.received,
        },
        "rate": [None if r is None else round(100 * r, 1) for r in hours.delivery_rate()],
        "credits": [c / MILLI for c in hours.credits],
        "statuses": totals,
        "totals": {
            "sent": sum(totals.values()),
            "delivered": totals[Status.DELIVERED.value],
            "failed": sum(totals[s] for s in FAILED),
            "pending": sum(totals[s] for s in PENDING),
            "unknown": totals[Status.UNKNOWN.value],
            "received": sum(hours.received),
            "rate": None if rate is None else round(100 * rate, 1),
            "credits": sum(hours.credits) / MILLI,
            "balance": balance / MILLI,
        },
        "queue": {
            "due": queue.due,
            "later": queue.later,
            "oldest_seconds": None if queue.oldest_due is None else max(0, int((now - queue.oldest_due).total_seconds())),
            "capped": queue.capped,
        },
    }


def _sum(series: dict[str, list[int]], names: tuple[str, ...]) -> list[int]:
    return [sum(values) for values in zip(*(series[n] for n in names), strict=True)]


def _unix(when: dt.datetime) -> int:
    return int(when.replace(tzinfo=dt.UTC).timestamp())


NAV = [("dashboard", "Dashboard")]
ROUTES = [
    Route("/dashboard", dashboard, methods=["GET"]),
    Route("/dashboard/data.json", data, methods=["GET"]),
]
