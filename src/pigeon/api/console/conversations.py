"""Conversations: an inbox with one row per customer number the visitor's scope has talked with
(an administrator and the operator: their account's; a user: their own), newest activity first,
in keyset pages; a thread with one customer, oldest to newest, whose new messages appear as
they come (a poll that brings only what is new) and whose outbound statuses turn live; and a
reply, sent through the same core as every send, from the number the customer last wrote to.

A thread the scope has no message in does not exist for the visitor (404): another account's
customer shows nothing of theirs."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon.api.console.send import STATUS, submit
from pigeon.api.console.web import PREFIX, Visitor, context, cursor_text, key_cursor, page, redirect, render
from pigeon.errors import Forbidden, InsufficientCredits, Invalid, NotFound
from pigeon.lifecycle import FINAL
from pigeon.messages import threads
from pigeon.messages.browse import Whose
from pigeon.messages.models import Direction, Message
from pigeon.numbers import service as numbers
from pigeon.phone import normalise
from pigeon.sending.service import Outgoing

POLL_SECONDS = 3
OVERLAP = dt.timedelta(seconds=30)
"""A poll asks again for what was written this long before the newest message it has, and
leaves out those it has (``seen``): a message whose transaction began earlier but committed
later than the newest one is not missed."""
INBOUND = Direction.INBOUND.value


def _whose(visitor: Visitor) -> Whose:
    everyone = visitor.principal.is_admin or visitor.operator
    return Whose(visitor.principal.account_id, None if everyone else visitor.principal.user_id)


def _same_site(request: Request) -> bool:
    """Whether this GET came from the console itself (or was typed), so that it may mark
    messages read: a link from another site (SameSite=Lax sends the cookie) must not."""
    return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")


def _customer(request: Request) -> str:
    """The customer number a path names, as messages store it (E.164 when it is a phone number)."""
    raw = request.path_params["customer"].strip()
    if not raw or len(raw) > 32 or "\x00" in raw:
        raise NotFound("No such conversation")
    try:
        return normalise(raw, context(request).settings.default_region).e164
    except Invalid:
        return raw


def _cursor(raw: str | None) -> threads.Cursor | None:
    return key_cursor(raw)


def _at(cursor: threads.Cursor) -> str:
    return cursor_text(cursor)


def path_of(customer: str) -> str:
    return f"{PREFIX}/conversations/{quote(customer, safe='')}"


# -- the inbox -------------------------------------------------------------------------------

def _inbox(request: Request, visitor: Visitor) -> dict[str, Any]:
    after = _cursor(request.query_params.get("after"))
    with context(request).db.read() as session:
        rows, cursor = threads.inbox(session, _whose(visitor), after)
    more = f"{PREFIX}/conversations/rows?{urlencode({'after': _at(cursor)})}" if cursor else None
    return {"rows": rows, "more": more, "path_of": path_of, "inbound": INBOUND}


@page
def inbox(request: Request, visitor: Visitor) -> Response:
    return render(request, "conversations.html", visitor, **_inbox(request, visitor))


@page
def inbox_rows(request: Request, visitor: Visitor) -> Response:
    """The next page of the inbox, for its infinite scroll."""
    return render(request, "_conversation_rows.html", visitor, **_inbox(request, visitor))


# -- a thread --------------------------------------------------------------------------------

def _reply_from(session: Session, visitor: Visitor, whose: Whose, customer: str) -> tuple[str | None, str | None]:
    """The number a reply goes from (the one the customer last wrote to, if the account may
    still send from it; else None: the account's default), and the account's default."""
    last = threads.answered_on(session, whose, customer)
    found = numbers.senders(session, visitor.principal.account_id, {last} if last else set())
    return (last if last in found.usable else None), found.default


def _poller(shown: list[Message]) -> dict[str, Any]:
    """Where the next poll starts, and the messages it has already (those near its start)."""
    if not shown:
        return {"since": None, "seen": []}
    since = max(m.created_at for m in shown) - OVERLAP
    return {"since": since, "seen": [m.id for m in shown if m.created_at >= since]}


def _poll_url(customer: str, since: dt.datetime | None, seen: list[str]) -> str:
    query = urlencode({"since": since.isoformat() if since else "", "seen": ",".join(seen)})
    return f"{path_of(customer)}/new?{query}"


def _thread(request: Request, visitor: Visitor, customer: str) -> dict[str, Any]:
    whose = _whose(visitor)
    before = _cursor(request.query_params.get("before"))
    db = context(request).db
    with db.read() as session:
        shown, earlier = threads.thread(session, whose, customer, before)
        if not shown:
            raise NotFound("No such conversation")
        reply_from, default = _reply_from(session, visitor, whose, customer)
    if _same_site(request) and any(m.direction == INBOUND and not m.read for m in shown):
        with db.write() as session:
            threads.mark_read(session, whose, customer)
    poll = _poller(shown)
    return {"customer": customer, "messages": shown, "final": FINAL, "inbound": INBOUND, "path": path_of(customer),
            "earlier": _at(earlier) if earlier else None, "reply_from": reply_from, "default": default,
            "poll_url": _poll_url(customer, poll["since"], poll["seen"]), "poll_seconds": POLL_SECONDS,
            "latest": before is None}


@page
def conversation(request: Request, visitor: Visitor) -> Response:
    return render(request, "conversation.html", visitor, **_thread(request, visitor, _customer(request)))


@page
def earlier(request: Request, visitor: Visitor) -> Response:
    """The page of messages before the oldest one shown (swapped in above them)."""
    customer = _customer(request)
    before = _cursor(request.query_params.get("before"))
    if before is None:
        raise Invalid("Say which messages to go back from")
    with context(request).db.read() as session:
        shown, cursor = threads.thread(session, _whose(visitor), customer, before)
    if not shown:
        raise NotFound("No such conversation, or nothing before that")
    return render(request, "_conversation_earlier.html", visitor, customer=customer, messages=shown, final=FINAL,
                  inbound=INBOUND, path=path_of(customer), earlier=_at(cursor) if cursor else None)


@page
def new(request: Request, visitor: Visitor) -> Response:
    """What came since the last poll, appended to the thread (204: nothing new)."""
    customer = _customer(request)
    whose = _whose(visitor)
    raw = request.query_params.get("since", "")
    try:
        since = dt.datetime.fromisoformat(raw) if raw else dt.datetime(1970, 1, 1)
    except ValueError:
        raise Invalid("That poll's position is not valid: reload the page.") from None
    seen = set(filter(None, request.query_params.get("seen", "").split(",")))
    db = context(request).db
    with db.read() as session:
        found = threads.since(session, whose, customer, since)
    fresh = [m for m in found if m.id not in seen]
    if not fresh:
        return Response(status_code=204)
    if _same_site(request) and any(m.direction == INBOUND and not m.read for m in fresh):
        with db.write() as session:
            threads.mark_read(session, whose, customer)
    poll = _poller(found)
    return render(request, "_conversation_new.html", visitor, customer=customer, messages=fresh, final=FINAL,
                  inbound=INBOUND, path=path_of(customer), poll_url=_poll_url(customer, poll["since"], poll["seen"]),
                  poll_seconds=POLL_SECONDS)


# -- a reply ---------------------------------------------------------------------------------

def _prepared(request: Request, visitor: Visitor, customer: str, text: str) -> tuple[Outgoing, str | None,
                                                                                    str | None]:
    """The reply, ready to submit, from the number the customer last wrote to (``NotFound``
    when the scope has no conversation with them)."""
    whose = _whose(visitor)
    with context(request).db.read() as session:
        if not threads.thread(session, whose, customer, size=1)[0]:
            raise NotFound("No such conversation")
        reply_from, default = _reply_from(session, visitor, whose, customer)
    return context(request).runtime.sender.prepare(customer, text, sender=reply_from), reply_from, default


@page
async def reply(request: Request, visitor: Visitor) -> Response:
    customer = _customer(request)
    form = request.state.form
    text = form.get("message")
    text = text if isinstance(text, str) else ""
    values: dict[str, Any] = {"customer": customer, "path": path_of(customer), "message": text}
    status = 200
    try:
        if not text.strip():
            raise Invalid("Write the reply to send")
        outgoing, values["reply_from"], values["default"] = await run_in_threadpool(
            _prepared, request, visitor, customer, text)
        await submit(request, visitor, [outgoing], f"reply to {customer}")
        values["notice"], values["message"] = f"Sent to {customer}.", ""
    except (Invalid, InsufficientCredits, Forbidden) as exc:
        values["error"] = exc.detail
        status = STATUS.get(type(exc), 400)
    if request.headers.get("hx-request"):  # 200, so that htmx shows a refusal too
        if "reply_from" not in values:
            values["reply_from"], values["default"] = await run_in_threadpool(_reply_numbers, request, visitor,
                                                                              customer)
        answer = render(request, "_conversation_reply.html", visitor, **values)
        if not values.get("error"):
            answer.headers["HX-Trigger"] = "pigeon-reply"  # the thread polls at once, and shows the reply
        return answer
    if not values.get("error"):
        return redirect(request, path_of(customer)[len(PREFIX):])
    page_values = await run_in_threadpool(_thread, request, visitor, customer)
    return render(request, "conversation.html", visitor, status=status,
                  **{**page_values, "error": values["error"], "message": text})


def _reply_numbers(request: Request, visitor: Visitor, customer: str) -> tuple[str | None, str | None]:
    with context(request).db.read() as session:
        return _reply_from(session, visitor, _whose(visitor), customer)


NAV = [("conversations", "Conversations")]
ROUTES = [
    Route("/conversations", inbox, methods=["GET"]),
    Route("/conversations/rows", inbox_rows, methods=["GET"]),
    Route("/conversations/{customer}", conversation, methods=["GET"]),
    Route("/conversations/{customer}/new", new, methods=["GET"]),
    Route("/conversations/{customer}/earlier", earlier, methods=["GET"]),
    Route("/conversations/{customer}/reply", reply, methods=["POST"]),
]
