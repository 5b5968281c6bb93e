"""Webhooks: the visitor's own webhook settings (reply URL, delivery report URL, the shared
secret: set, or made and shown once), and the log of deliveries with a resend button.

The settings follow ``pigeon account settings`` and the Zoom Connect developer settings
(``webhooks.service``: the same URL checks, private addresses refused unless the operator
allows them). The log is a user's own events, an administrator's team's (one user's on
request), the operator's of any account and a reseller's administrator's of its customers'
(``account``, from the account picker); keyset pages from
``ix_webhook_events_user`` (``webhooks.browse``). A resend queues a delivered or failed event
again (``webhooks.resend``); an event the visitor does not reach does not exist for them.
Every change is audited in its transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon.accounts.models import User
from pigeon.api.console.web import (
    PREFIX,
    Visitor,
    account_asked,
    account_picker,
    account_shown,
    context,
    cursor_text,
    key_cursor,
    page,
    reaches,
    redirect,
    render,
)
from pigeon.audit import service as audit
from pigeon.db import utcnow
from pigeon.errors import Invalid, NotFound
from pigeon.webhooks import browse
from pigeon.webhooks import service as webhooks
from pigeon.webhooks.models import Kind, State, WebhookEvent
from pigeon.webhooks.resend import RESENDABLE, resend

STATES = [s.value for s in State]
KINDS = [k.value for k in Kind]
SECRET_BYTES = 24
DONE = {"resent": "The event was queued again: it goes out in a moment."}


# -- what a request names --------------------------------------------------------------------

def _manages(visitor: Visitor) -> bool:
    return visitor.principal.is_admin or visitor.operator


@dataclass(frozen=True, slots=True)
class Asked:
    """A log search as the form gave it (to refill the form and build the next page's URL)."""

    values: dict[str, str]
    account_id: int
    user_ids: list[int]
    flt: browse.Filter
    after: browse.Cursor | None


def _asked(request: Request, session: Session, visitor: Visitor) -> Asked:
    q = request.query_params
    values = {k: q.get(k, "").strip() for k in ("state", "kind", "account", "user")}
    account_id = account_asked(session, visitor, values["account"])
    if values["state"] and values["state"] not in STATES:
        raise Invalid(f"No state {values['state']}: one of {', '.join(STATES)}")
    if values["kind"] and values["kind"] not in KINDS:
        raise Invalid(f"No kind {values['kind']}: one of {', '.join(KINDS)}")
    if not _manages(visitor):
        user_ids = [visitor.principal.user_id]
    elif values["user"]:
        found = session.scalar(select(User.id).where(User.email == values["user"].lower(),
                                                     User.account_id == account_id))
        if found is None:
            raise NotFound(f"No user {values['user']} in this account")
        user_ids = [found]
    else:
        user_ids = browse.team(session, account_id)
    flt = browse.Filter(state=values["state"] or None, kind=values["kind"] or None)
    return Asked(values, account_id, user_ids, flt, _cursor(q.get("after")))


def _cursor(raw: str | None) -> browse.Cursor | None:
    return key_cursor(raw)


def _next_url(request: Request, cursor: browse.Cursor | None) -> str | None:
    if cursor is None:
        return None
    params = {**request.query_params, "after": cursor_text(cursor)}
    return f"{PREFIX}/webhooks/rows?{urlencode(params)}"


def _emails(session: Session, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(session.execute(select(User.id, User.email).where(User.id.in_(sorted(user_ids)))).all())


def _event(session: Session, visitor: Visitor, event_id: str) -> WebhookEvent:
    """The event if the visitor reaches it: a user their own; an administrator their team's;
    the operator any. Anything else does not exist for them."""
    found = session.get(WebhookEvent, event_id) if "\x00" not in event_id and len(event_id) <= 36 else None
    owner = session.get(User, found.user_id) if found is not None else None
    if found is None or owner is None or not reaches(session, visitor, owner.account_id):
        raise NotFound("No such webhook event")
    if not _manages(visitor) and found.user_id != visitor.principal.user_id:
        raise NotFound("No such webhook event")
    return found


def _field(request: Request, name: str) -> str | None:
    """A form field as given, or None when the form left it out."""
    value = request.state.form.get(name)
    return value if isinstance(value, str) else None


# -- the page --------------------------------------------------------------------------------

def _page(request: Request, visitor: Visitor, *, status: int = 200, error: str | None = None,
          settings_error: str | None = None, new_secret: str | None = None, notice: str | None = None,
          values: dict[str, str] | None = None) -> Response:
    with context(request).db.read() as session:
        current = webhooks.get_settings(session, visitor.principal.user_id)
        shown = values or {"reply_url": current.reply_url or "", "report_url": current.report_url or ""}
        try:
            a = _asked(request, session, visitor)
            rows, cursor = browse.page(session, a.user_ids, a.flt, a.after)
            query, chosen = a.values, a.account_id
        except (Invalid, NotFound) as exc:
            status, error, rows, cursor, query = 400 if isinstance(exc, Invalid) else 404, exc.detail, [], None, {}
            chosen = account_shown(session, visitor, request.query_params.get("account"))
        return render(request, "webhooks.html", visitor, status=status, current=current, shown=shown,
                      new_secret=new_secret, settings_error=settings_error, error=error, rows=rows,
                      values=query, states=STATES, kinds=KINDS, more=_next_url(request, cursor),
                      emails=_emails(session, {r.user_id for r in rows}), resendable=RESENDABLE,
                      manages=_manages(visitor), notice=notice or DONE.get(request.query_params.get("done", "")),
                      allow_private=context(request).settings.webhooks_allow_private,
                      picker=account_picker(request, session, visitor, chosen))


@page
def webhooks_page(request: Request, visitor: Visitor) -> Response:
    return _page(request, visitor)


@page
def rows(request: Request, visitor: Visitor) -> Response:
    """The next page of the log, for its infinite scroll."""
    with context(request).db.read() as session:
        a = _asked(request, session, visitor)
        found, cursor = browse.page(session, a.user_ids, a.flt, a.after)
        return render(request, "_webhooks_rows.html", visitor, rows=found, more=_next_url(request, cursor),
                      emails=_emails(session, {r.user_id for r in found}), resendable=RESENDABLE,
                      manages=_manages(visitor))


# -- settings --------------------------------------------------------------------------------

@page
def save_settings(request: Request, visitor: Visitor) -> Response:
    """Set the visitor's own webhook URLs and secret: a URL field left empty stops those
    POSTs; a secret typed in replaces the secret; "make a new secret" makes one, shown once."""
    ctx = context(request)
    reply_url, report_url = _field(request, "reply_url"), _field(request, "report_url")
    typed = _field(request, "secret") or ""
    fresh = _field(request, "new_secret") == "1"
    values = {"reply_url": reply_url or "", "report_url": report_url or ""}
    try:
        if typed and fresh:
            raise Invalid("Type a secret or have one made, not both")
        secret = secrets.token_urlsafe(SECRET_BYTES) if fresh else typed
        # before the transaction: checking a URL looks its host up in DNS
        changes = webhooks.check_settings(reply_url, report_url, secret or None,
                                          allow_private=ctx.settings.webhooks_allow_private)
    except Invalid as exc:
        return _page(request, visitor, status=400, settings_error=exc.detail, values=values)
    with ctx.db.write() as session:
        before = webhooks.get_settings(session, visitor.principal.user_id)
        after = webhooks.update_settings(session, visitor.principal.user_id, changes)
        audit.record(session, "webhook.settings", actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                     account_id=visitor.principal.account_id, subject=visitor.principal.email,
                     detail=webhooks.describe_change(before, after, bool(secret)))
    shown = after.new_secret or (secret if fresh else None)
    return _page(request, visitor, new_secret=shown, notice="Your webhook settings were saved.")


# -- resend ----------------------------------------------------------------------------------

@page
def resend_event(request: Request, visitor: Visitor) -> Response:
    """Queue an event again; for htmx, its row as it is now."""
    with context(request).db.write() as session:
        found = _event(session, visitor, request.path_params["event_id"])
        was = found.state
        owner = session.get(User, found.user_id)
        event = resend(session, found.id, utcnow())
        audit.record(session, "webhook.resend", actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                     account_id=owner.account_id, subject=event.id,
                     detail=f"{event.kind} of message {event.message_id} for {owner.email}, was {was}")
        if request.headers.get("hx-request"):
            return render(request, "_webhooks_row.html", visitor, e=event, emails={owner.id: owner.email},
                          resendable=RESENDABLE, manages=_manages(visitor), resent=True)
    return redirect(request, "/webhooks?done=resent")


NAV = [("webhooks", "Webhooks")]
ROUTES = [
    Route("/webhooks", webhooks_page, methods=["GET"]),
    Route("/webhooks/rows", rows, methods=["GET"]),
    Route("/webhooks/settings", save_settings, methods=["POST"]),
    Route("/webhooks/{event_id}/resend", resend_event, methods=["POST"]),
]
