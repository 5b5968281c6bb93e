"""A race lost to another writer, as the request's refusal rather than a 500.

Two requests can pass the same check at once (a name free, a row still there) and meet at the
database's constraints. ``lost_races`` turns that meeting into the core's kinds of error: a
unique constraint is a ``Conflict``, a foreign key (a row deleted meanwhile) a ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from pigeon.errors import Conflict, NotFound


@contextmanager
def lost_races(conflict: str = "A record with these values already exists") -> Iterator[None]:
    """Around a write transaction (outside it, so that its commit is covered too)."""
    try:
        yield
    except IntegrityError as exc:
        if unique_violation(exc):
            raise Conflict(conflict) from None
        raise NotFound("A record this request refers to no longer exists") from None


def unique_violation(exc: IntegrityError) -> bool:
    """Whether the database refused a duplicate (rather than, say, a dangling foreign key)."""
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    return state in ("23505", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
