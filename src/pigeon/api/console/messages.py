"""Messages: search and filter, keyset pages that scroll without slowing down, a message with
each part's status and its receipts, its live status, and a CSV export of any search."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
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
    render,
)
from pigeon.delivery.models import MessagePart
from pigeon.errors import Invalid, NotFound
from pigeon.lifecycle import FINAL, Status
from pigeon.localtime import local_day
from pigeon.messages import browse
from pigeon.messages.models import Direction, Message
from pigeon.phone import normalise
from pigeon.webhooks.models import WebhookEvent

STATUSES = [s.value for s in Status]
DIRECTIONS = [d.value for d in Direction]
CSV_COLUMNS = ["id", "created_at", "direction", "status", "from", "to", "parts", "encoding", "credits", "campaign",
               "sent_at", "final_at", "error_code", "body"]


@dataclass(frozen=True, slots=True)
class Asked:
    """A search as the form gave it (to refill the form and build the next page's URL)."""

    values: dict[str, str]
    whose: browse.Whose
    search: browse.Search
    after: browse.Cursor | None


def asked(request: Request, session: Session, visitor: Visitor) -> Asked:
    q = request.query_params
    values = {k: q.get(k, "").strip() for k in ("status", "direction", "number", "text", "campaign", "since", "until",
                                                "account", "user")}
    settings = context(request).settings
    account_id = account_asked(session, visitor, values["account"])
    values["account"] = str(account_id)  # the picker shows the account the list is of
    user_id: int | None = None
    if not (visitor.principal.is_admin or visitor.operator):
        user_id = visitor.principal.user_id
    elif values["user"]:
        found = session.scalar(select(User.id).where(User.email == values["user"].lower(),
                                                     User.account_id == account_id))
        if found is None:
            raise NotFound(f"No user {values['user']} in this account")
        user_id = found
    if values["status"] and values["status"] not in STATUSES:
        raise Invalid(f"No status {values['status']}")
    if values["direction"] and values["direction"] not in DIRECTIONS:
        raise Invalid(f"No direction {values['direction']}")
    number = normalise(values["number"], settings.default_region).e164 if values["number"] else None
    search = browse.Search(
        status=values["status"] or None, direction=values["direction"] or None, number=number,
        text=values["text"] or None, campaign=values["campaign"] or None,
        since=_day(values["since"], settings.timezone, "since"),
        until=_day(values["until"], settings.timezone, "until", end=True))
    return Asked(values, browse.Whose(account_id, user_id), search, _cursor(q.get("after")))


def _day(value: str, zone: str, field: str, *, end: bool = False) -> dt.datetime | None:
    return local_day(value.replace("-", ""), zone, field, end=end) if value else None


def _cursor(raw: str | None) -> browse.Cursor | None:
    return key_cursor(raw)


def _next_url(request: Request, cursor: browse.Cursor | None) -> str | None:
    if cursor is None:
        return None
    params = {**request.query_params, "after": cursor_text(cursor)}
    return f"{PREFIX}/messages/rows?{urlencode(params)}"


@page
def messages(request: Request, visitor: Visitor) -> Response:
    with context(request).db.read() as session:
        try:
            a = asked(request, session, visitor)
        except (Invalid, NotFound) as error:
            return render(request, "messages.html", visitor, status=404 if isinstance(error, NotFound) else 400,
                          error=error.detail, rows=[], values={}, statuses=STATUSES, directions=DIRECTIONS, more=None,
                          picker=account_picker(request, session, visitor,
                                                account_shown(session, visitor, request.query_params.get("account"))))
        rows, cursor = browse.page(session, a.whose, a.search, a.after)
        return render(request, "messages.html", visitor, rows=rows, values=a.values, statuses=STATUSES,
                      directions=DIRECTIONS, picker=account_picker(request, session, visitor, a.whose.account_id),
                      more=_next_url(request, cursor),
                      searched_to=_searched_to(rows, cursor), final=FINAL)


@page
def rows(request: Request, visitor: Visitor) -> Response:
    """The next page of rows, for the list's infinite scroll."""
    with context(request).db.read() as session:
        a = asked(request, session, visitor)
        found, cursor = browse.page(session, a.whose, a.search, a.after)
        return render(request, "_message_rows.html", visitor, rows=found, more=_next_url(request, cursor),
                      searched_to=_searched_to(found, cursor), final=FINAL)


def _searched_to(found: list[Message], cursor: browse.Cursor | None) -> dt.datetime | None:
    """Where a short page's walk stopped (the search goes on from there), else None."""
    return cursor[0] if cursor is not None and len(found) < browse.PAGE else None


def _scope_of(session: Session, visitor: Visitor, message_id: str) -> Message:
    """The message if the visitor may see it: a user their own; an administrator their
    account's; the operator any. Anything else does not exist for them."""
    found = session.get(Message, message_id) if "\x00" not in message_id else None
    if found is None or not reaches(session, visitor, found.account_id):
        raise NotFound("No such message")
    if not (visitor.principal.is_admin or visitor.operator) and found.user_id != visitor.principal.user_id:
        raise NotFound("No such message")
    return found


@page
def message(request: Request, visitor: Visitor) -> Response:
    with context(request).db.read() as session:
        found = _scope_of(session, visitor, request.path_params["message_id"])
        parts = list(session.scalars(select(MessagePart).where(MessagePart.message_id == found.id)
                                     .order_by(MessagePart.seq)))
        events = list(session.scalars(select(WebhookEvent).where(WebhookEvent.message_id == found.id)
                                      .order_by(WebhookEvent.created_at)))
        sender = session.get(User, found.user_id)
        return render(request, "message.html", visitor, m=found, parts=parts, events=events, final=FINAL,
                      sender=sender.email if sender else "")


@page
def status(request: Request, visitor: Visitor) -> Response:
    """The message's status badge: polled by the page until it is final."""
    with context(request).db.read() as session:
        found = _scope_of(session, visitor, request.path_params["message_id"])
        return render(request, "_status.html", visitor, m=found, final=FINAL)


@page
def export(request: Request, visitor: Visitor) -> Response:
    """Every message of the search as CSV, streamed page by page (each in its own read)."""
    db = context(request).db
    with db.read() as session:
        a = asked(request, session, visitor)
        first = browse.page(session, a.whose, a.search, a.after, size=1000)  # a bad search is refused, not cut short

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        found, cursor = first
        while True:
            for m in found:
                writer.writerow([m.id, m.created_at.isoformat(), m.direction, m.status, _cell(m.from_number or ""),
                                 _cell(m.to_number), m.parts, m.encoding, m.credit_cost / 1000, _cell(m.campaign or ""),
                                 _iso(m.sent_at), _iso(m.final_at), m.error_code or "", _cell(m.body)])
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if cursor is None:
                return
            with db.read() as session:
                found, cursor = browse.page(session, a.whose, a.search, cursor, size=1000)

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="messages.csv"'})


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""


def _cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (CSV injection); a phone
    number in E.164 (``+`` and digits) is left as it is."""
    if text[:1] == "+" and text[1:].isdigit():
        return text
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


NAV = [("messages", "Messages")]
ROUTES = [
    Route("/messages", messages, methods=["GET"]),
    Route("/messages/rows", rows, methods=["GET"]),
    Route("/messages.csv", export, methods=["GET"]),
    Route("/messages/{message_id}", message, methods=["GET"]),
    Route("/messages/{message_id}/status", status, methods=["GET"]),
]
