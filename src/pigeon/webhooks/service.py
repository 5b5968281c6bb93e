"""Webhook settings and the outbox, as plain functions over a session.

Events are written by the transaction that causes them: ``report_events`` beside a message's
change to a final status, ``reply_event`` beside an inbound message. An event's id is a UUID
derived from what it reports (the message, and its status for a report), so the same change
can never make two events, and every attempt carries the same nonce: receivers drop repeats
by it. The dispatcher ``claim``s due events under a lease and ``finish``es them.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from pigeon.accounts.models import User
from pigeon.db import bulk
from pigeon.messages.models import Message, Status
from pigeon.webhooks.models import Kind, State, WebhookEvent
from pigeon.webhooks.urls import check_url, receiver

E = WebhookEvent.__table__
M = Message.__table__
U = User.__table__
NAMESPACE = uuid.UUID("6f1c1c9e-2a57-4c52-9a0e-7069676f6e21")
FINAL = frozenset({Status.DELIVERED, Status.FAILED, Status.FAILED_REFUNDED, Status.FAILED_OPTOUT, Status.UNKNOWN})
CHUNK = 500
SECRET_BYTES = 24


# -- settings ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DeveloperSettings:
    reply_url: str | None
    report_url: str | None
    has_secret: bool
    new_secret: str | None = None  # shown once, when Pigeon made it


def get_settings(session: Session, user_id: int) -> DeveloperSettings:
    row = session.execute(select(U.c.reply_url, U.c.report_url, U.c.webhook_secret).where(U.c.id == user_id)).one()
    return DeveloperSettings(row.reply_url, row.report_url, bool(row.webhook_secret))


def update_settings(
    session: Session,
    user_id: int,
    *,
    reply_url: str | None = None,
    report_url: str | None = None,
    secret: str | None = None,
    allow_private: bool,
) -> DeveloperSettings:
    """Change what is given (None keeps a value; "" clears a URL). A user with a URL and no
    secret gets one made for it, returned once as ``new_secret``. RefusedUrl or ValueError
    for a URL Pigeon will not call or a secret too short."""
    user = session.get(User, user_id, with_for_update=True)
    assert user is not None
    if reply_url is not None:
        user.reply_url = check_url(reply_url, allow_private=allow_private) if reply_url.strip() else None
    if report_url is not None:
        user.report_url = check_url(report_url, allow_private=allow_private) if report_url.strip() else None
    made = None
    if secret is not None:
        if not 8 <= len(secret) <= 255:
            raise ValueError("the shared secret must be 8 to 255 characters")
        user.webhook_secret = secret
    elif (user.reply_url or user.report_url) and not user.webhook_secret:
        made = user.webhook_secret = secrets.token_urlsafe(SECRET_BYTES)
    session.flush()
    return DeveloperSettings(user.reply_url, user.report_url, bool(user.webhook_secret), made)


# -- events --------------------------------------------------------------------------------

def local_stamp(value: dt.datetime, zone: str, fmt: str) -> str:
    """A naive UTC time written in ``zone`` (the dialect's dates are local, like dateToSend)."""
    return value.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).strftime(fmt)


def event_id(kind: Kind, message_id: str, status: str = "") -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{message_id}:{status}"))


def report_events(session: Session, message_ids: Iterable[str], now: dt.datetime) -> int:
    """Queue a delivery report for each of these messages that is final and whose user has a
    delivery report URL. Returns how many were queued."""
    ids = list(message_ids)
    rows: list[tuple] = []
    for start in range(0, len(ids), CHUNK):
        found = session.execute(
            select(M.c.id, M.c.user_id, M.c.status, M.c.campaign, M.c.data_field, U.c.report_url)
            .join(U, U.c.id == M.c.user_id)
            .where(M.c.id.in_(ids[start : start + CHUNK]), U.c.report_url.is_not(None))
        ).all()
        for m in found:
            if m.status not in FINAL:
                continue
            params = {"status": m.status, "messageId": m.id, "campaign": m.campaign, "dataField": m.data_field}
            rows.append(_row(event_id(Kind.REPORT, m.id, m.status), m.user_id, Kind.REPORT, m.id, m.report_url,
                             params, now))
    _insert(session, rows)
    return len(rows)


def reply_event(session: Session, reply: Message, now: dt.datetime, zone: str) -> bool:
    """Queue an inbound message for its user's reply URL, if there is one."""
    url = session.scalar(select(U.c.reply_url).where(U.c.id == reply.user_id))
    if not url:
        return False
    params = {
        "from": reply.from_number,
        "repliedToMessageId": reply.replied_to_id,
        "messageId": reply.id,
        "message": reply.body,
        "date": local_stamp(reply.received_at or now, zone, "%Y%m%d%H%M"),
        "campaign": reply.campaign,
        "dataField": reply.data_field,
    }
    _insert(session, [_row(event_id(Kind.REPLY, reply.id), reply.user_id, Kind.REPLY, reply.id, url, params, now)])
    return True


EVENT_COLUMNS = (
    ("id", "text"), ("user_id", "integer"), ("kind", "text"), ("message_id", "text"), ("url", "text"),
    ("receiver", "text"), ("params", "text"), ("state", "text"), ("attempts", "integer"),
    ("created_at", "timestamp"), ("available_at", "timestamp"),
)


def _row(id_: str, user_id: int, kind: Kind, message_id: str, url: str, params: dict, now: dt.datetime) -> tuple:
    return (id_, user_id, kind.value, message_id, url, receiver(url), orjson.dumps(params).decode(),
            State.PENDING.value, 0, now, now)


def _insert(session: Session, rows: list[tuple]) -> None:
    """Insert events; one already there (the same change, written twice) is left as it is."""
    bulk.insert_new(session, "webhook_events", EVENT_COLUMNS, rows)


# -- the outbox ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Due:
    """An event leased for one attempt."""

    id: str
    kind: str
    url: str
    receiver: str
    params: dict
    secret: str
    attempts: int  # including this one
    created_at: dt.datetime
    lease_until: dt.datetime | None = None  # another process may take it from then on


@dataclass(frozen=True, slots=True)
class Outcome:
    event: Due
    ok: bool
    error: str | None = None
    final: bool = False  # no point trying again (a URL Pigeon refuses to call)


def claim(
    session: Session,
    now: dt.datetime,
    *,
    lanes: dict[str, int],
    others: int,
    limit: int,
    lease: dt.timedelta,
    skip_locked: bool,
) -> list[Due]:
    """Lease up to ``limit`` due events, oldest due first: up to ``lanes[receiver]`` for each
    receiver this process already serves (one with no room is not even looked at, so its
    backlog never stands in front of anyone else's events), and up to ``others`` for each
    receiver it does not."""
    query = (
        select(E.c.id, E.c.kind, E.c.url, E.c.receiver, E.c.params, E.c.attempts, E.c.created_at, U.c.webhook_secret)
        .join(U, U.c.id == E.c.user_id)
        .where(E.c.state == State.PENDING, E.c.available_at <= now)
        .order_by(E.c.available_at)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True, of=E)
    rows = []
    for name, room in lanes.items():
        if room > 0 and len(rows) < limit:
            rows += session.execute(query.where(E.c.receiver == name).limit(min(room, limit - len(rows)))).all()
    if len(rows) < limit and others > 0:
        if lanes:
            query = query.where(E.c.receiver.not_in(list(lanes)))
        per_receiver: dict[str, int] = {}
        for row in session.execute(query.limit(limit - len(rows))):
            per_receiver[row.receiver] = per_receiver.get(row.receiver, 0) + 1
            if per_receiver[row.receiver] <= others:
                rows.append(row)
    taken = [Due(row.id, row.kind, row.url, row.receiver, orjson.loads(row.params), row.webhook_secret or "",
                 row.attempts + 1, row.created_at, now + lease) for row in rows]
    if taken:
        session.execute(
            update(E).where(E.c.id == bindparam("b_id"))
            .values(available_at=now + lease, attempts=bindparam("b_attempts")),
            [{"b_id": due.id, "b_attempts": due.attempts} for due in taken],
        )
    return taken


def retry_delay(attempts: int, *, base: float, most: float) -> float:
    """Seconds before the next attempt: doubling from ``base`` up to ``most``, less up to a
    fifth at random so that a recovered receiver is not met by every event at once."""
    delay = min(most, base * 2 ** min(attempts - 1, 40))
    return delay * (1 - random.random() / 5)


def finish(
    session: Session, now: dt.datetime, outcomes: list[Outcome], *, base: float, most: float, give_up_after: dt.timedelta
) -> None:
    """Write what became of each attempt: delivered, tried again later, or failed for good
    (refused, or still undelivered ``give_up_after`` its creation)."""
    delivered, retry, failed = [], [], []
    for outcome in outcomes:
        due, error = outcome.event, (outcome.error or "")[:255] or None
        if outcome.ok:
            delivered.append({"b_id": due.id})
        elif outcome.final or now - due.created_at >= give_up_after:
            failed.append({"b_id": due.id, "b_error": error})
        else:
            later = now + dt.timedelta(seconds=retry_delay(due.attempts, base=base, most=most))
            retry.append({"b_id": due.id, "b_at": later, "b_error": error})
    pending = E.c.state == State.PENDING
    if delivered:
        session.execute(update(E).where(E.c.id == bindparam("b_id"), pending)
                        .values(state=State.DELIVERED, finished_at=now, last_error=None), delivered)
    if retry:
        session.execute(update(E).where(E.c.id == bindparam("b_id"), pending)
                        .values(available_at=bindparam("b_at"), last_error=bindparam("b_error")), retry)
    if failed:
        session.execute(update(E).where(E.c.id == bindparam("b_id"), pending)
                        .values(state=State.FAILED, finished_at=now, last_error=bindparam("b_error")), failed)


def purge(session: Session, before: dt.datetime) -> int:
    """Forget delivered events finished before ``before``."""
    return session.execute(delete(E).where(E.c.state == State.DELIVERED, E.c.finished_at < before)).rowcount
