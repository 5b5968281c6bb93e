"""Webhook settings and the outbox, as plain functions over a session.

Events are written by the transaction that causes them: ``report_events`` beside a message's
change to a final status, ``reply_event`` beside an inbound message (both subscribed to
``pigeon.hooks`` by ``pigeon.wiring``: the writers never import webhooks). An event's id is a UUID
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
from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import Session

from pigeon import hooks, metrics
from pigeon.accounts.models import User
from pigeon.db import bulk, on_commit
from pigeon.errors import Invalid
from pigeon.lifecycle import FINAL, OPTED_OUT
from pigeon.media import service as media
from pigeon.messages import entries
from pigeon.messages.models import Message
from pigeon.webhooks.models import Kind, State, WebhookEvent
from pigeon.webhooks.urls import RefusedUrl, check_url, receiver, shown

E = WebhookEvent.__table__
M = Message.__table__
U = User.__table__
NAMESPACE = uuid.UUID("6f1c1c9e-2a57-4c52-9a0e-7069676f6e21")
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


def check_settings(
    reply_url: str | None, report_url: str | None, secret: str | None, *, allow_private: bool
) -> dict[str, str | None]:
    """The user columns a settings request changes (None keeps a value; "" clears a URL),
    checked: ``Invalid`` says why not. It looks names up in DNS, so call it
    before opening a transaction."""
    changes: dict[str, str | None] = {}
    for column, url in (("reply_url", reply_url), ("report_url", report_url)):
        if url is not None:
            try:
                changes[column] = check_url(url, allow_private=allow_private) if url.strip() else None
            except RefusedUrl as exc:
                raise Invalid(f"Invalid developer settings: {exc}") from None
    if secret is not None:
        if not 8 <= len(secret) <= 255 or "\x00" in secret:
            raise Invalid("Invalid developer settings: the shared secret must be 8 to 255 characters")
        changes["webhook_secret"] = secret
    return changes


def update_settings(session: Session, user_id: int, changes: dict[str, str | None]) -> DeveloperSettings:
    """Apply checked changes (from check_settings). A user with a URL and no secret gets one
    made for it, returned once as ``new_secret``."""
    if changes:
        session.execute(update(U).where(U.c.id == user_id).values(**changes))
    current = get_settings(session, user_id)
    if (current.reply_url or current.report_url) and not current.has_secret:
        made = secrets.token_urlsafe(SECRET_BYTES)
        if session.execute(
            update(U).where(U.c.id == user_id, U.c.webhook_secret.is_(None)).values(webhook_secret=made)
        ).rowcount:  # else a concurrent request made one first
            return DeveloperSettings(current.reply_url, current.report_url, True, made)
        return get_settings(session, user_id)
    return current


def describe_change(before: DeveloperSettings, after: DeveloperSettings, secret_given: bool) -> str:
    """What a settings change did, for the audit log: the URLs as a log may show them, and
    never the secret itself."""
    said = []
    for name, old, new in (("reply URL", before.reply_url, after.reply_url),
                           ("delivery report URL", before.report_url, after.report_url)):
        if old != new:
            said.append(f"{name} {'cleared' if new is None else f'set to {shown(new)}'}")
    if secret_given:
        said.append("shared secret replaced")
    elif after.new_secret:
        said.append("shared secret made")
    return "; ".join(said) or "nothing changed"


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


def callback_events(session: Session, message_ids: Iterable[str], now: dt.datetime) -> int:
    """Queue a status callback for each of these messages that has a status callback URL (a
    Zoho Voice send's ``statusCallback``): its log entry (``messages.entries``) as the JSON
    body, to the URL exactly as given. One event per message and Zoho status (SENT and then
    UNKNOWN, both SENT to Zoho, make one). Returns how many were queued."""
    ids = list(message_ids)
    rows: list[tuple] = []
    for start in range(0, len(ids), CHUNK):
        found = session.execute(
            select(M, U.c.first_name, U.c.last_name, U.c.email)
            .join(U, U.c.id == M.c.user_id)
            .where(M.c.id.in_(ids[start : start + CHUNK]), M.c.status_callback.is_not(None))
        ).all()
        files = media.meta_of(session, [m.id for m in found if m.mms]) if found else {}
        for m in found:
            body = entries.entry(m, m, zone="UTC", blocked=m.status == OPTED_OUT,
                                 media=[meta.as_zoho() for meta in files.get(m.id, ())])
            rows.append(_row(event_id(Kind.CALLBACK, m.id, body["status"]), m.user_id, Kind.CALLBACK, m.id,
                             m.status_callback, body, now))
    _insert(session, rows)
    return len(rows)


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
    if rows:
        bulk.insert_new(session, "webhook_events", EVENT_COLUMNS, rows)
        hooks.count_queued(session, len(rows))


def queued(session: Session) -> int:
    """How many events this session has queued (so a writer wakes the dispatcher only when
    there is something to send)."""
    return hooks.queued(session)


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
    current_url = case((E.c.kind == Kind.REPLY.value, U.c.reply_url), (E.c.kind == Kind.REPORT.value, U.c.report_url),
                       else_=E.c.url).label("current_url")  # a status callback's URL is its message's
    query = (
        select(E.c.id, E.c.kind, current_url, E.c.receiver, E.c.params, E.c.attempts, E.c.created_at,
               U.c.webhook_secret)
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
    removed = [(row.id, State.FAILED.value, now, "the user removed this webhook URL") for row in rows
               if not row.current_url]
    bulk.update(session, "webhook_events", "id", (("state", "text"), ("finished_at", "timestamp"),
                                                  ("last_error", "text")), removed)
    taken = [Due(row.id, row.kind, row.current_url, row.receiver, orjson.loads(row.params), row.webhook_secret or "",
                 row.attempts + 1, row.created_at, now + lease) for row in rows if row.current_url]
    bulk.update(session, "webhook_events", "id", (("available_at", "timestamp"), ("attempts", "integer")),
                [(due.id, now + lease, due.attempts) for due in taken])
    return taken


def _printable(text: str) -> str:
    """An error text any database can hold: no NUL, no lone surrogate."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


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
        due, error = outcome.event, _printable(outcome.error or "")[:255] or None
        if outcome.ok:
            delivered.append((due.id, State.DELIVERED.value, now, None))
        elif outcome.final or now - due.created_at >= give_up_after:
            failed.append((due.id, State.FAILED.value, now, error))
        else:
            later = now + dt.timedelta(seconds=retry_delay(due.attempts, base=base, most=most))
            retry.append((due.id, later, error))
    pending = f"webhook_events.state = '{State.PENDING.value}'"
    final = (("state", "text"), ("finished_at", "timestamp"), ("last_error", "text"))
    ended = bulk.update_returning(session, "webhook_events", "id", final, delivered + failed, ("state",),
                                  where=pending)
    retried = bulk.update(session, "webhook_events", "id", (("available_at", "timestamp"), ("last_error", "text")),
                          retry, where=pending)
    counts = {"delivered": sum(1 for (state,) in ended if state == State.DELIVERED.value), "retry": retried}
    counts["failed"] = len(ended) - counts["delivered"]
    on_commit(session, _count, counts)


def _count(outcomes: dict[str, int]) -> None:
    for outcome, count in outcomes.items():
        if count:
            metrics.WEBHOOKS.labels(outcome).inc(count)


def fail_events(session: Session, event_ids: list[str], error: str, now: dt.datetime) -> None:
    """Fail these events for good (still pending ones only)."""
    bulk.update(session, "webhook_events", "id", (("state", "text"), ("finished_at", "timestamp"),
                                                  ("last_error", "text")),
                [(event_id, State.FAILED.value, now, error[:255]) for event_id in event_ids],
                where=f"webhook_events.state = '{State.PENDING.value}'")


def purge(session: Session, delivered_before: dt.datetime, failed_before: dt.datetime) -> int:
    """Forget delivered events finished before ``delivered_before``, failed ones before
    ``failed_before``. (A late repeat of a purged event's change makes the same event id, so
    a receiver still drops it by its nonce.)"""
    return session.execute(delete(E).where(
        ((E.c.state == State.DELIVERED) & (E.c.finished_at < delivered_before))
        | ((E.c.state == State.FAILED) & (E.c.finished_at < failed_before))
    )).rowcount
