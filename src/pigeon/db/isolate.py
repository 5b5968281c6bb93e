"""Batched writes that one bad item cannot poison.

Hot paths write many items in one transaction (accepting sends, recording what carriers said,
applying receipts, webhook outcomes). If that transaction fails because of one item, retrying
the same batch fails the same way, forever, and takes every good item down with it. So a
failing batch is retried in halves, each in its own transaction, down to single items: the
good items are written, and an item that fails on its own is handed back with its error, for
the caller to set aside.

A transient error (the database is unreachable, locked, a deadlock or serialization failure:
``OperationalError``) says nothing about the items; halving would not help, so it stops the
work and the unwritten items are handed back for the caller to retry as they are.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import psycopg
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from pigeon.db.engine import Database

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """An error of the database's, not of the items being written: SQLAlchemy's, or the
    driver's own from the raw cursors of ``db.bulk`` (a deadlock, a cancelled statement, a
    lost connection, a locked SQLite file)."""
    return isinstance(exc, (OperationalError, sqlite3.OperationalError, psycopg.OperationalError))


@dataclass(slots=True)
class Written(Generic[T, R]):
    """What became of a batch: what each committed write returned, the items that failed on
    their own, and (after a transient error) the items not written at all."""

    results: list[R] = field(default_factory=list)
    failed: list[tuple[T, BaseException]] = field(default_factory=list)
    unwritten: list[T] = field(default_factory=list)
    error: BaseException | None = None  # the transient error that stopped the work


def write_isolated(
    db: Database,
    items: Sequence[T],
    write: Callable[[Session, list[T]], R],
    *,
    first: Callable[[Session, list[T]], R] | None = None,
) -> Written[T, R]:
    """``write(session, chunk)`` in one transaction for all ``items``; on failure, for each
    half in its own transaction, and so on down to single items.

    ``first``, if given, is used instead of ``write`` for the whole batch only (a fast path
    that does more in the same transaction, such as claiming the next work).
    """
    out: Written[T, R] = Written()
    stack: list[list[T]] = [list(items)]
    use = first or write
    while stack:
        chunk = stack.pop()
        if not chunk:
            continue
        try:
            with db.write() as session:
                out.results.append(use(session, chunk))
        except Exception as exc:
            if is_transient(exc):
                out.error = exc
                out.unwritten = chunk + [item for rest in reversed(stack) for item in rest]
                return out
            if len(chunk) == 1:
                log.debug("an item failed on its own: %s", _first_line(exc))  # the caller says what it does
                out.failed.append((chunk[0], exc))
            else:
                middle = len(chunk) // 2
                stack.append(chunk[middle:])
                stack.append(chunk[:middle])  # the first half first: order kept
        finally:
            use = write
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def describe(exc: BaseException) -> str:
    """An error as one line an operator can read."""
    return _first_line(exc)[:2000]
