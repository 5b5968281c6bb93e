"""Writing and reading incidents, as plain functions over a session."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from pigeon.incidents.models import Incident, Kind

T = Incident.__table__


def record(
    session: Session,
    kind: Kind,
    stage: str,
    items: Iterable[tuple[str | None, str, object]],
    now: dt.datetime,
) -> int:
    """Write one incident per (subject, reason, payload); the payload is kept as JSON."""
    rows = [
        {"kind": kind.value, "stage": stage, "subject": (subject or None) and _clean(subject)[:128],
         "reason": _clean(reason)[:2000], "payload": _json(payload), "created_at": now}
        for subject, reason, payload in items
    ]
    if rows:
        session.execute(insert(T), rows)
    return len(rows)


def recent(session: Session, *, kind: Kind | None = None, limit: int = 100) -> list[Incident]:
    query = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(Incident.kind == kind.value)
    return list(session.scalars(query))


def counts(session: Session) -> dict[tuple[str, str], int]:
    """How many incidents of each (kind, stage)."""
    rows = session.execute(select(T.c.kind, T.c.stage, func.count()).group_by(T.c.kind, T.c.stage))
    return {(kind, stage): n for kind, stage, n in rows}


def _json(payload: object) -> str | None:
    if payload is None:
        return None
    return json.dumps(payload, default=repr, ensure_ascii=True)  # ASCII: even a lone surrogate survives


def _clean(text: str) -> str:
    """Text a database can hold whatever it came from: no NUL, no lone surrogate."""
    return text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")
