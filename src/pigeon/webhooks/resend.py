"""Sending an event again: a delivered or failed event goes back to the outbox, due now.

It keeps its id (the nonce a receiver drops repeats by), its creation time (its place in the
log, and the start of its retry window) and its attempts (the next is counted on from them):
the dispatcher claims it like any pending event and POSTs it, signed as usual, to the user's
current URL. Within its retry window a failed attempt is retried as usual; past it, a resend
is one more attempt. Written in the caller's transaction, conditional on the event's state,
so that two presses queue it once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pigeon import hooks
from pigeon.accounts.models import User
from pigeon.errors import Conflict, Invalid, NotFound
from pigeon.webhooks.models import Kind, State, WebhookEvent

E = WebhookEvent.__table__
U = User.__table__
RESENDABLE = (State.DELIVERED.value, State.FAILED.value)
URL_OF = {Kind.REPLY.value: (U.c.reply_url, "reply URL"), Kind.REPORT.value: (U.c.report_url, "delivery report URL")}


def resend(session: Session, event_id: str, now: dt.datetime) -> WebhookEvent:
    """Queue a DELIVERED or FAILED event again, due ``now``: ``Conflict`` if it is still
    pending, ``Invalid`` if its user has since removed the URL it goes to."""
    event = session.get(WebhookEvent, event_id) if "\x00" not in event_id else None
    if event is None:
        raise NotFound("No such webhook event")
    if event.kind in URL_OF:
        column, name = URL_OF[event.kind]
        if not session.scalar(select(column).where(U.c.id == event.user_id)):
            raise Invalid(f"There is no {name} to send it to: set one first")
    done = session.execute(
        update(E).where(E.c.id == event.id, E.c.state.in_(RESENDABLE))
        .values(state=State.PENDING.value, available_at=now, finished_at=None)
    ).rowcount
    if not done:
        raise Conflict("This event is already waiting to be sent")
    hooks.count_queued(session, 1)
    session.refresh(event)
    return event
