"""Idempotent sends: a request retried with the same ``Idempotency-Key`` gets the first answer.

A client that lost its connection after sending cannot know whether its send was accepted;
sending again would send twice. With an ``Idempotency-Key`` header (a Pigeon extension, as
in the IETF draft and Stripe), the first answer is stored with the messages it accepted, in
the same transaction, so the key and the send are durable together. A retry with the same key
and the same request gets that answer back and sends nothing; the same key with another
request is refused. Keys are per user and kept for ``KEEP`` (then forgotten).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import orjson
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from pigeon.errors import Conflict, Invalid, Reason
from pigeon.sending.models import IdempotencyKey

K = IdempotencyKey.__table__


class KeyTaken(Conflict):
    """Another request with the same key was accepted first (look its answer up)."""

    def __init__(self, key: str):
        super().__init__(f"A request with Idempotency-Key {key!r} was accepted meanwhile; send it again")

KEEP = dt.timedelta(hours=24)
MAX_KEY = 255


@dataclass(frozen=True, slots=True)
class Remembered:
    """An answer to keep under a key (and what it answered)."""

    key: str
    request_hash: str
    status: int
    data: object


def check_key(key: str) -> None:
    """``Invalid`` unless ``key`` can be one: 1 to MAX_KEY printable characters."""
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise Invalid(f"Idempotency-Key must be 1 to {MAX_KEY} printable characters")


def same_request(found: Remembered, digest: str) -> Remembered:
    """``found``, if it answered the request whose hash is ``digest``; else ``Conflict``."""
    if found.request_hash != digest:
        raise Conflict("This Idempotency-Key was used for a different request", Reason.KEY_REUSED)
    return found


def request_hash(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def lookup(session: Session, user_id: int, key: str, now: dt.datetime) -> Remembered | None:
    row = session.execute(
        select(K.c.request_hash, K.c.status_code, K.c.response, K.c.created_at)
        .where(K.c.user_id == user_id, K.c.key == key)
    ).first()
    if row is None or now - row.created_at > KEEP:
        return None
    return Remembered(key, row.request_hash, row.status_code, orjson.loads(row.response))


def remember(session: Session, user_id: int, items: list[Remembered], now: dt.datetime) -> None:
    """Keep answers, in the caller's transaction (an IntegrityError: the key was taken meanwhile)."""
    if items:
        session.execute(delete(K).where(K.c.user_id == user_id, K.c.key.in_([r.key for r in items]),
                                        K.c.created_at < now - KEEP))
        session.execute(insert(K), [
            {"user_id": user_id, "key": r.key, "request_hash": r.request_hash, "status_code": r.status,
             "response": orjson.dumps(r.data).decode(), "created_at": now} for r in items])


def purge(session: Session, now: dt.datetime) -> int:
    return session.execute(delete(K).where(K.c.created_at < now - KEEP)).rowcount
