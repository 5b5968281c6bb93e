"""Bulk writes through the driver's own fast paths: COPY and set-based UPDATE on PostgreSQL,
executemany of plain tuples on SQLite.

At thousands of rows a second SQLAlchemy's per-row parameter processing costs more than the
write itself, and psycopg's executemany sends one statement per row (bench/ measured both).
The hot paths, accepting messages and recording what carriers said, write through here, in
the caller's transaction; everything else stays on SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime in SQLite


def _cursor(session: Session) -> tuple[Any, bool]:
    connection = session.connection()
    return connection.connection.driver_connection.cursor(), connection.dialect.name == "sqlite"


def _sqlite_datetime(value: dt.datetime) -> str:
    return value.strftime(SQLITE_DATETIME)


# The driver converts datetimes itself, in C, as SQLAlchemy writes them (always with
# microseconds); bools are ints to sqlite3 already. SQLAlchemy hands the driver strings, so
# this only concerns the raw cursors below.
sqlite3.register_adapter(dt.datetime, _sqlite_datetime)


def insert(session: Session, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
    """INSERT every row (values in ``columns`` order)."""
    if not rows:
        return
    cursor, sqlite = _cursor(session)
    names = ", ".join(columns)
    try:
        if sqlite:
            marks = ", ".join("?" * len(columns))
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",
                rows,
            )
        else:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    finally:
        cursor.close()


def insert_new(session: Session, table: str, columns: Sequence[tuple[str, str]], rows: list[tuple]) -> None:
    """INSERT every row whose primary key is not there yet; the others are left as they are.
    ``columns`` are (name, PostgreSQL type) pairs. One statement on PostgreSQL."""
    if not rows:
        return
    cursor, sqlite = _cursor(session)
    names = ", ".join(name for name, _ in columns)
    try:
        if sqlite:
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({marks})", rows)
        else:
            arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING",
                [list(column) for column in zip(*rows, strict=True)],
            )
    finally:
        cursor.close()


def update(
    session: Session,
    table: str,
    key: str,
    columns: Sequence[tuple[str, str]],
    rows: list[tuple],
    *,
    where: str = "",
) -> int:
    """``UPDATE table SET column = value ... WHERE key = row[0]`` for every row
    ``(key, value, ...)``; ``columns`` are (name, PostgreSQL type) pairs and ``where`` a fixed
    extra condition. One statement on PostgreSQL. Returns the rows updated."""
    if not rows:
        return 0
    cursor, sqlite = _cursor(session)
    extra = f" AND {where}" if where else ""
    try:
        if sqlite:
            sets = ", ".join(f"{name} = ?" for name, _ in columns)
            cursor.executemany(
                f"UPDATE {table} SET {sets} WHERE {key} = ?{extra}",
                [(*row[1:], row[0]) for row in rows],
            )
        else:
            sets = ", ".join(f"{name} = v.{name}" for name, _ in columns)
            arrays = ", ".join(f"%s::{kind}[]" for kind in ("text", *(kind for _, kind in columns)))
            names = ", ".join((key, *(name for name, _ in columns)))
            cursor.execute(
                f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({names}) "
                f"WHERE {table}.{key} = v.{key}{extra}",
                [list(column) for column in zip(*rows, strict=True)],
            )
        return cursor.rowcount
    finally:
        cursor.close()
