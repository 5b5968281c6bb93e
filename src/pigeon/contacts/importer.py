"""Contacts from a CSV file: parse (pure), then write in chunks, with a line-by-line account of
the rows refused.

The header names the columns, in any case: ``contactNumber``/``number``/``mobile``/``phone``,
``firstName``/``first_name``, ``lastName``/``last_name``, ``title``. A row is refused for a
missing or invalid number, a number seen earlier in the file, a number already in the address
book, a field too long, a NUL character in any field (PostgreSQL cannot store one), or a line
the csv module cannot parse (a field over its size limit, say) when the lines after it can
still be read; when they cannot, the whole file is refused (CsvError) before anything is written. Each chunk is one transaction: the contacts inserted in bulk with
ON CONFLICT DO NOTHING on (user, number), so that the unique index says which numbers were
already there (no lookup whose plan degrades as the table grows, no race), then the memberships.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TextIO

from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from pigeon import csvfile
from pigeon.accounts.service import Principal
from pigeon.contacts.models import Contact
from pigeon.contacts.service import NUL, clean_fields
from pigeon.csvfile import CsvError
from pigeon.db import Database, bulk, utcnow
from pigeon.errors import Invalid
from pigeon.ids import new_id
from pigeon.phone import normalise

NUMBER_COLUMNS = ("contactnumber", "number", "mobile", "phone", "mobilenumber", "phonenumber")
FIELD_COLUMNS = {"title": "title", "firstname": "first_name", "lastname": "last_name"}
CHUNK = 2_000
COLUMNS = {"id": "text", "account_id": "integer", "user_id": "integer", "number": "text", "title": "text",
           "first_name": "text", "last_name": "text", "created_at": "timestamp"}


@dataclass(slots=True)
class Row:
    line: int
    number: str
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    problem: str | None = None  # why the row is refused before it is even looked at


@dataclass(slots=True)
class Refused:
    line: int
    number: str
    reason: str


@dataclass(slots=True)
class Summary:
    imported: int = 0
    refused: list[Refused] = field(default_factory=list)


def read_csv(stream: TextIO) -> Iterator[Row]:
    """The rows of a CSV file with a header; CsvError if it has no number column, or if a
    line cannot be parsed and the parser cannot go on after it. Line numbers are the file's,
    the header being line 1."""
    header, keys, records = csvfile.read(stream, "the file is empty: expected a header line naming the columns")
    number_at = next((keys.index(name) for name in NUMBER_COLUMNS if name in keys), None)
    if number_at is None:
        raise CsvError(f"no number column in the header {header!r}: name one contactNumber, number, mobile or phone")
    fields = {attr: keys.index(name) for name, attr in FIELD_COLUMNS.items() if name in keys}
    for record in records:
        number = csvfile.cell(record.cells, number_at)
        if record.problem:
            yield Row(record.line, number.replace(NUL, "\\x00"), problem=record.problem)
            continue
        yield Row(record.line, number, **{attr: record.cells[i] if i < len(record.cells) else None
                                          for attr, i in fields.items()})


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


@dataclass(slots=True)
class _Candidate:
    row: Row
    number: str
    fields: dict[str, str | None]


def _screen(rows: list[Row], region: str, seen: set[str], refused: list[Refused]) -> list[_Candidate]:
    """The rows worth writing; the others go to ``refused`` (pure but for ``seen``)."""
    candidates = []
    for row in rows:
        if row.problem:
            refused.append(Refused(row.line, row.number, row.problem))
            continue
        if not row.number:
            refused.append(Refused(row.line, "", "missing number"))
            continue
        try:
            number = normalise(row.number, region).e164
        except Invalid:
            refused.append(Refused(row.line, row.number, "invalid number"))
            continue
        if number in seen:
            refused.append(Refused(row.line, number, "duplicate in file"))
            continue
        seen.add(number)
        try:
            fields = clean_fields(title=row.title, first_name=row.first_name, last_name=row.last_name)
        except Invalid as exc:
            refused.append(Refused(row.line, number, str(exc)))
            continue
        candidates.append(_Candidate(row, number, fields))
    return candidates


def _insert_new(session: Session, rows: list[dict]) -> list[tuple[str, str]]:
    """INSERT the rows whose number is not yet the user's; (id, number) of those inserted.
    PostgreSQL gets one statement over arrays (unnest), SQLite SQLAlchemy's multi-row VALUES."""
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        columns = ", ".join(COLUMNS)
        arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in COLUMNS.items())
        statement = text(f"INSERT INTO contacts ({columns}) SELECT * FROM unnest({arrays}) "
                         "ON CONFLICT (user_id, number) DO NOTHING RETURNING id, number")
        params = {name: [row[name] for row in rows] for name in COLUMNS}
        return [tuple(row) for row in session.execute(statement, params)]
    statement = sqlite.insert(Contact.__table__).on_conflict_do_nothing(index_elements=["user_id", "number"])
    return [tuple(row) for row in session.execute(statement.returning(Contact.id, Contact.number), rows)]


Written = Callable[[Session, int], None]


def _write(db: Database, principal: Principal, candidates: list[_Candidate], group_id: str | None,
           written: Written | None = None) -> list[Refused]:
    """Insert the candidates not already contacts, in one transaction (``written`` told, in it,
    how many); returns those that were."""
    now = utcnow()
    rows = [{"id": new_id(), "account_id": principal.account_id, "user_id": principal.user_id, "number": c.number,
             "created_at": now, **c.fields} for c in candidates]
    with db.write() as session:
        inserted = _insert_new(session, rows)
        if group_id is not None:
            bulk.insert(session, "group_members", ("group_id", "contact_id", "contact_created_at"),
                        [(group_id, cid, now) for cid, _ in inserted])
        if written is not None:
            written(session, len(inserted))
    new = {number for _, number in inserted}
    return [Refused(c.row.line, c.number, "already in the address book") for c in candidates if c.number not in new]


def import_rows(
    db: Database,
    principal: Principal,
    rows: Iterable[Row],
    *,
    default_region: str,
    group_id: str | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
    written: Written | None = None,
) -> Summary:
    """Write the rows as the user's contacts, ``chunk`` rows a transaction, optionally into a
    group (its id); the summary says how many were imported and why the others were not.
    ``written(session, count)`` runs in each chunk's transaction (an audit entry, say)."""
    summary = Summary()
    seen: set[str] = set()
    for batch in _batches(rows, chunk):
        candidates = _screen(batch, default_region, seen, summary.refused)
        already = _write(db, principal, candidates, group_id, written)
        summary.imported += len(candidates) - len(already)
        summary.refused.extend(already)
        if progress is not None:
            progress(len(batch))
    summary.refused.sort(key=lambda r: r.line)
    return summary
