"""Old messages purged, or archived then purged, in batches that never hold up a send.

A message goes once it is final and older than ``[retention] days``, with what hangs on it: its
parts and queue row (foreign keys, ON DELETE CASCADE), its media links and the media no other
message carries, and its finished webhook deliveries. A message with a webhook delivery still
pending stays until that delivery ends; a message not final (scheduled, or sent and waiting for
its receipt) stays however old it is.

Which messages are old is read from their ids, not from an index of dates: an id starts with its
creation second (``pigeon.ids``), so ``id < cutoff`` walks the primary key from its oldest end.
Each batch is its own short transaction; between two batches sends go on (on SQLite, the one
writer is free again). Several processes may purge at once on PostgreSQL: each batch locks its
rows and skips those another has locked.

With ``archive``, each batch's messages (every column, and their parts) are first appended to
``messages-YYYY-MM-DD.jsonl.gz`` in that directory and flushed to disk before the batch is
deleted: a batch whose delete then fails is archived again with the next try (at least once).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import os
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from pigeon.db import Database, utcnow
from pigeon.delivery.models import MessagePart
from pigeon.lifecycle import FINAL
from pigeon.media.models import Media, MessageMedia
from pigeon.messages.models import Message
from pigeon.webhooks.models import State, WebhookEvent

M = Message.__table__
P = MessagePart.__table__
MM = MessageMedia.__table__
MD = Media.__table__
E = WebhookEvent.__table__
FINAL_VALUES = sorted(status.value for status in FINAL)


@dataclass
class Purged:
    messages: int = 0
    media: int = 0
    webhook_events: int = 0
    archived_to: Path | None = None

    def add(self, other: Purged) -> None:
        self.messages += other.messages
        self.media += other.media
        self.webhook_events += other.webhook_events
        self.archived_to = other.archived_to or self.archived_to


def cutoff_id(before: dt.datetime) -> str:
    """The smallest id made at ``before`` (naive UTC): every older message's id is below it."""
    return int(before.replace(tzinfo=dt.UTC).timestamp()).to_bytes(4, "big").hex() + "0" * 16


def purge_batch(session: Session, before: dt.datetime, size: int, *, archive: Path | None = None) -> Purged:
    """Purge (archiving first, with ``archive``) up to ``size`` final messages created before
    ``before``, oldest first, in the session's transaction."""
    pending = exists().where(E.c.message_id == M.c.id, E.c.state == State.PENDING.value)
    query = (select(M.c.id).where(M.c.id < cutoff_id(before), M.c.status.in_(FINAL_VALUES), ~pending)
             .order_by(M.c.id).limit(size))
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(of=M, skip_locked=True)
    ids = session.scalars(query).all()
    if not ids:
        return Purged()
    done = Purged(messages=len(ids))
    if archive is not None:
        done.archived_to = _archive(session, ids, archive)
    media = session.scalars(select(MM.c.media_id).where(MM.c.message_id.in_(ids)).distinct()).all()
    done.webhook_events = session.execute(delete(E).where(E.c.message_id.in_(ids))).rowcount
    session.execute(delete(M).where(M.c.id.in_(ids)))  # parts, queue rows and media links go with them
    if media:
        done.media = session.execute(delete(MD).where(
            MD.c.id.in_(media), ~exists().where(MM.c.media_id == MD.c.id))).rowcount
    return done


def _archive(session: Session, ids: list[str], directory: Path) -> Path:
    rows = [dict(row._mapping) for row in session.execute(select(M).where(M.c.id.in_(ids)).order_by(M.c.id))]
    parts: dict[str, list[dict]] = {}
    for part in session.execute(select(P).where(P.c.message_id.in_(ids)).order_by(P.c.message_id, P.c.seq)):
        parts.setdefault(part.message_id, []).append(
            {key: value for key, value in part._mapping.items() if key != "message_id"})
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"messages-{utcnow():%Y-%m-%d}.jsonl.gz"
    with open(path, "ab") as raw:
        with gzip.GzipFile(fileobj=raw, mode="ab") as out:
            for row in rows:
                row["parts"] = parts.get(row["id"], [])
                out.write(orjson.dumps(row, option=orjson.OPT_NAIVE_UTC) + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    return path


def purge(db: Database, before: dt.datetime, *, size: int = 1000, pause: float = 0.0,
          archive: Path | None = None) -> Purged:
    """Every batch until none is left (the command line's ``pigeon purge``)."""
    total = Purged()
    while True:
        with db.write() as session:
            done = purge_batch(session, before, size, archive=archive)
        total.add(done)
        if done.messages < size:
            return total
        time.sleep(pause)


async def purge_in_turns(db: Database, executor: Executor, before: dt.datetime, *, size: int, pause: float,
                         archive: Path | None = None) -> Purged:
    """``purge`` on the runtime's database threads, one batch at a time, yielding between them."""
    loop = asyncio.get_running_loop()
    total = Purged()

    def one() -> Purged:
        with db.write() as session:
            return purge_batch(session, before, size, archive=archive)

    while True:
        done = await loop.run_in_executor(executor, one)
        total.add(done)
        if done.messages < size:
            return total
        await asyncio.sleep(pause)
