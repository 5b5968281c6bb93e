"""The audit log, for the operator only: every change made through the console, the APIs or the
command line, and every console sign-in (and failed one) and sign-out, newest first, in keyset
pages (``pigeon.audit.service.page``: the time index, or the account's), filtered by account
(the shared picker) and by action (one, such as ``contact.create``, or a family, such as
``contact`` or ``contact.*``)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon.accounts.models import Account
from pigeon.api.console.web import MAX_ID, PREFIX, Visitor, account_param, account_picker, context, page, render
from pigeon.audit import service as audit
from pigeon.audit.models import AuditEntry
from pigeon.errors import Invalid, NotFound

PAGE_SIZE = 50
MAX_ACTION = 64

Cursor = tuple[dt.datetime, int]


def _filters(request: Request, session: Session) -> tuple[dict[str, str], int | None, str | None]:
    """The filters as given (to refill the form), the account (checked to exist) and the action."""
    q = request.query_params
    values = {"account": q.get("account", "").strip(), "action": q.get("action", "").strip()}
    account_id = account_param(values["account"])
    if account_id is not None and session.get(Account, account_id) is None:
        raise NotFound(f"No account {values['account']}")
    action = values["action"] or None
    if action is not None and ("\x00" in action or len(action) > MAX_ACTION):
        raise Invalid(f"An action is at most {MAX_ACTION} characters, such as contact.create or contact")
    return values, account_id, action


def _cursor(raw: str | None) -> Cursor | None:
    if not raw:
        return None
    at, _, entry_id = raw.partition("~")
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        when = None
    if when is None or not (entry_id.isascii() and entry_id.isdigit() and int(entry_id) <= MAX_ID):
        raise Invalid("That page's position is not valid: start again.")
    return when, int(entry_id)


def _entries(request: Request, session: Session) -> tuple[dict[str, str], list[AuditEntry], str | None]:
    """One page of entries under the request's filters, and the URL of the next (None: the last)."""
    values, account_id, action = _filters(request, session)
    rows = audit.page(session, account_id=account_id, action=action,
                      before=_cursor(request.query_params.get("before")), size=PAGE_SIZE + 1)
    more = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        last = rows[-1]
        more = f"{PREFIX}/audit/rows?{urlencode({**values, 'before': f'{last.at.isoformat()}~{last.id}'})}"
    return values, rows, more


def _names(session: Session, rows: list[AuditEntry]) -> dict[int, str]:
    ids = {r.account_id for r in rows if r.account_id is not None}
    if not ids:
        return {}
    return dict(session.execute(select(Account.id, Account.name).where(Account.id.in_(ids))).tuples().all())


@page(operator=True)
def audit_log(request: Request, visitor: Visitor) -> Response:
    with context(request).db.read() as session:
        values, rows, more = _entries(request, session)
        picker = account_picker(request, session, visitor, account_param(values["account"]))
        return render(request, "audit.html", visitor, values=values, rows=rows, more=more, picker=picker,
                      names=_names(session, rows))


@page(operator=True)
def audit_rows(request: Request, visitor: Visitor) -> Response:
    """The next page of rows, for the list's infinite scroll."""
    with context(request).db.read() as session:
        _, rows, more = _entries(request, session)
        return render(request, "_audit_rows.html", visitor, rows=rows, more=more, names=_names(session, rows))


NAV = [("audit", "Audit log", "operator")]
ROUTES = [
    Route("/audit", audit_log, methods=["GET"]),
    Route("/audit/rows", audit_rows, methods=["GET"]),
]
