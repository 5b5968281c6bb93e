"""Bulk writes through the driver's own fast paths: COPY and set-based UPDATE on PostgreSQL,
executemany of plain tuples on SQLite.

At thousands of rows a second SQLAlchemy's per-row parameter processing costs more than the
write itself, and psycopg's executemany sends one statement per row (bench/ measured both).
The hot paths, accepting messages and recording what carriers said, write through here, in
the caller's transaction; everything else stays on SQLAlchemy. ``fetch`` is the same for a
small read on a hot path (the senders of each accepted batch): a statement through
SQLAlchemy costs some 150 us, through the driver a tenth of that (bench/micro.py).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session


def _cursor(session: Session) -> tuple[Any, bool]:
    connection = session.connection()
    return connection.connection.driver_connection.cursor(), connection.dialect.name == "sqlite"


def _sqlite_datetime(value: dt.datetime) -> str:
    """As SQLAlchemy writes it, the year in four digits (``strftime``'s ``%Y`` writes year 1 as
    ``1``, which nothing reads back)."""
    return value.isoformat(" ", timespec="microseconds")


# The driver converts datetimes itself, in C, as SQLAlchemy writes them (always with
# microseconds); bools are ints to sqlite3 already. SQLAlchemy hands the driver strings, so
# this only concerns the raw cursors below.
sqlite3.register_adapter(dt.datetime, _sqlite_datetime)


def fetch(session: Session, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """The rows of a read written with ``?`` placeholders, through the driver."""
    cursor, sqlite = _cursor(session)
    try:
        cursor.execute(sql if sqlite else sql.replace("?", "%s"), params)
        return cursor.fetchall()
    finally:
        cursor.close()


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
    match: Sequence[tuple[str, str]] = (),
) -> int:
    """``UPDATE table SET column = value ... WHERE key = row[0]`` for every row
    ``(key, matched..., value, ...)``; ``columns`` and ``match`` are (name, PostgreSQL type)
    pairs: ``match`` columns must hold the row's values for it to change (a fence), and
    ``where`` is a fixed extra condition. One statement on PostgreSQL. Returns the rows updated."""
    if not rows:
        return 0
    cursor, sqlite = _cursor(session)
    extra = f" AND {where}" if where else ""
    fixed = 1 + len(match)
    try:
        if sqlite:
            sets = ", ".join(f"{name} = ?" for name, _ in columns)
            keys = " AND ".join(f"{name} = ?" for name in (key, *(name for name, _ in match)))
            cursor.executemany(
                f"UPDATE {table} SET {sets} WHERE {keys}{extra}",
                [(*row[fixed:], *row[:fixed]) for row in rows],
            )
        else:
            sets = ", ".join(f"{name} = v.{name}" for name, _ in columns)
            kinds = ("text", *(kind for _, kind in match), *(kind for _, kind in columns))
            arrays = ", ".join(f"%s::{kind}[]" for kind in kinds)
            names = ", ".join((key, *(f"m_{name}" for name, _ in match), *(name for name, _ in columns)))
            keys = " AND ".join((f"{table}.{key} = v.{key}", *(f"{table}.{name} = v.m_{name}" for name, _ in match)))
            cursor.execute(
                f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({names}) WHERE {keys}{extra}",
                [list(column) for column in zip(*rows, strict=True)],
            )
        return cursor.rowcount
    finally:
        cursor.close()


def update_returning(
    session: Session,
    table: str,
    key: str,
    columns: Sequence[tuple[str, str]],
    rows: list[tuple],
    returning: Sequence[str],
    *,
    where: str = "",
) -> list[tuple]:
    """``update`` (without ``match``) that answers the ``returning`` columns of each row it
    changed: exactly those, whatever a concurrent writer did. One statement on PostgreSQL; on
    SQLite (one writer at a time) one statement a row."""
    if not rows:
        return []
    cursor, sqlite = _cursor(session)
    extra = f" AND {where}" if where else ""
    back = ", ".join(f"{table}.{name}" for name in returning)
    try:
        if sqlite:
            sets = ", ".join(f"{name} = ?" for name, _ in columns)
            sql = f"UPDATE {table} SET {sets} WHERE {key} = ?{extra} RETURNING {back}"
            found = []
            for row in rows:
                cursor.execute(sql, (*row[1:], row[0]))
                found += cursor.fetchall()
            return found
        sets = ", ".join(f"{name} = v.{name}" for name, _ in columns)
        kinds = ("text", *(kind for _, kind in columns))
        arrays = ", ".join(f"%s::{kind}[]" for kind in kinds)
        names = ", ".join((key, *(name for name, _ in columns)))
        cursor.execute(
            f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({names}) WHERE {table}.{key} = v.{key}{extra} "
            f"RETURNING {back}",
            [list(column) for column in zip(*rows, strict=True)],
        )
        return cursor.fetchall()
    finally:
        cursor.close()


def delete(session: Session, table: str, columns: Sequence[tuple[str, str]], rows: list[tuple]) -> int:
    """``DELETE FROM table WHERE`` every column equals the row's value, for every row; one
    statement on PostgreSQL. Returns the rows deleted."""
    if not rows:
        return 0
    cursor, sqlite = _cursor(session)
    try:
        if sqlite:
            keys = " AND ".join(f"{name} = ?" for name, _ in columns)
            cursor.executemany(f"DELETE FROM {table} WHERE {keys}", rows)
        else:
            arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
            names = ", ".join(name for name, _ in columns)
            keys = " AND ".join(f"{table}.{name} = v.{name}" for name, _ in columns)
            cursor.execute(f"DELETE FROM {table} USING unnest({arrays}) AS v({names}) WHERE {keys}",
                           [list(column) for column in zip(*rows, strict=True)])
        return cursor.rowcount
    finally:
        cursor.close()
