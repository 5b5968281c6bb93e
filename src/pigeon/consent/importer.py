"""Opt-outs from a CSV file, as ``pigeon consent import`` takes them: a ``phone`` column (or
``number``, ``mobile``), and an optional ``scope`` column as ``pigeon consent export`` writes it
(``policy:ID``, ``number:+E164``, ``account:ID``), else the scope the import was given.

Parsing is pure; the rows are written in chunks, each chunk one transaction
(``db.isolate``: a chunk that fails is retried in halves, so a row that cannot be stored fails
alone). A row is refused, with its line and reason, for a missing or invalid phone, a scope
that is not the account's, or a line the csv module cannot read when the lines after it still
can; when they cannot, the whole file is refused (``CsvError``) before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TextIO

from sqlalchemy.orm import Session

from pigeon import csvfile
from pigeon.consent import service
from pigeon.csvfile import NUL, CsvError
from pigeon.db import Database, utcnow
from pigeon.db.isolate import write_isolated
from pigeon.errors import Invalid, NotFound
from pigeon.phone import normalise

PHONE_COLUMNS = ("phone", "number", "mobile", "phonenumber", "mobilenumber", "contactnumber")
CHUNK = 1_000
__all__ = ["CsvError", "Row", "Refused", "Summary", "import_rows", "read_csv"]


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    phone: str
    scope: str = ""
    problem: str | None = None  # why the row is refused before it is even looked at


@dataclass(frozen=True, slots=True)
class Refused:
    line: int
    phone: str
    reason: str


@dataclass(slots=True)
class Summary:
    added: int = 0  # opted out now
    already: int = 0  # opted out before (or twice in the file)
    refused: list[Refused] = field(default_factory=list)


Then = Callable[[Session, int], object]
"""Called in each chunk's transaction with how many phones it opted out (its audit entry)."""


def read_csv(stream: TextIO) -> Iterator[Row]:
    """The rows of a CSV file with a header; line numbers are the file's, the header line 1."""
    _, keys, records = csvfile.read(stream, "The file is empty: expected a header line with a 'phone' column")
    phone_at = next((keys.index(name) for name in PHONE_COLUMNS if name in keys), None)
    if phone_at is None:
        raise CsvError("The header line has no 'phone' column (or 'number', 'mobile')")
    scope_at = keys.index("scope") if "scope" in keys else None
    for record in records:
        phone = csvfile.cell(record.cells, phone_at)
        yield Row(record.line, phone.replace(NUL, "\\x00"), csvfile.cell(record.cells, scope_at), record.problem)


def _screen(rows: list[Row], region: str, refused: list[Refused]) -> list[Row]:
    """The rows worth writing, their phones in E.164; the others go to ``refused``."""
    good = []
    for row in rows:
        if row.problem:
            refused.append(Refused(row.line, row.phone, row.problem))
        elif not row.phone:
            refused.append(Refused(row.line, "", "no phone"))
        else:
            try:
                good.append(Row(row.line, normalise(row.phone, region).e164, row.scope))
            except Invalid as exc:
                refused.append(Refused(row.line, row.phone, exc.detail))
    return good


def import_rows(db: Database, account_id: int, rows: Iterable[Row], *, default_scope: str, region: str,
                how: str = "IMPORT", then: Then | None = None) -> Summary:
    """Opt out the phones of ``rows``, each in its row's scope (checked to be the account's)
    or ``default_scope`` (checked by the caller)."""
    summary = Summary()

    def write(session: Session, chunk: list[Row]) -> Summary:
        done, scopes = Summary(), {}
        now = utcnow()
        for row in chunk:
            try:
                if row.scope not in scopes:
                    scopes[row.scope] = service.check_scope(session, account_id, row.scope) if row.scope \
                        else default_scope
                where = scopes[row.scope]
            except (Invalid, NotFound) as exc:
                scopes.pop(row.scope, None)
                done.refused.append(Refused(row.line, row.phone, exc.detail))
                continue
            if service.set_consent(session, account_id, where, row.phone, out=True, how=how, now=now):
                done.added += 1
            else:
                done.already += 1
        if then is not None and done.added:
            then(session, done.added)
        return done

    it = iter(rows)
    while batch := list(islice(it, CHUNK)):
        written = write_isolated(db, _screen(batch, region, summary.refused), write)
        for done in written.results:
            summary.added += done.added
            summary.already += done.already
            summary.refused.extend(done.refused)
        summary.refused.extend(Refused(row.line, row.phone, f"could not be stored: {type(exc).__name__}")
                               for row, exc in written.failed)
        if written.error is not None:
            rest = written.unwritten + [row for more in iter(lambda: list(islice(it, CHUNK)), []) for row in more]
            summary.refused.extend(Refused(row.line, row.phone, "not stored: the database was unavailable; "
                                                                "import this row again") for row in rest)
            break
    summary.refused.sort(key=lambda r: r.line)
    return summary
