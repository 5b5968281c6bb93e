"""Numbers from a CSV file with a header: ``number`` (required), ``kind``, ``source``,
``carrier``, ``account``, ``capabilities`` (``sms``, ``mms``, ``voice``, joined by ``+`` or
spaces). Each row is checked and written on its own (a savepoint), so one bad row is refused
with its reason while the others go in; rows are written in chunks of ``CHUNK`` per
transaction."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy.exc import IntegrityError

from pigeon.db import Database
from pigeon.errors import Invalid, PigeonError
from pigeon.numbers import service
from pigeon.numbers.models import Kind, Source

CHUNK = 500


@dataclass(slots=True)
class Summary:
    added: int = 0
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (line, number, reason)


TOO_MANY = "\x00too many"  # the key a row's surplus fields are kept under


def read(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of each data row, keys lower-cased, separated by commas, semicolons or tabs
    (whichever the header uses); ``Invalid`` without a number column."""
    header = stream.readline()
    delimiter = next((d for d in (",", ";", "\t") if d in header), ",")
    names = [name.strip().lower() for name in next(csv.reader([header], delimiter=delimiter), [])]
    if "number" not in names:
        raise Invalid("the file needs a header line with a 'number' column")
    reader = csv.DictReader(stream, fieldnames=names, delimiter=delimiter, restkey=TOO_MANY)
    for row in reader:
        yield reader.line_num + 1, {key: (value.strip() if isinstance(value, str) else ",".join(value or ""))
                                    for key, value in row.items() if key is not None}


def spec_of(row: dict[str, str]) -> tuple[service.Spec, int | None]:
    """The number a row describes, and the account it goes to; ``Invalid`` saying why not."""
    if row.get(TOO_MANY):
        raise Invalid(f"too many fields: {row[TOO_MANY]!r} beyond the header's (quote a value holding a comma)")
    kind_text, source_text = (row.get("kind") or "local").lower(), (row.get("source") or "purchased").lower()
    if kind_text not in Kind.__members__.values():
        raise Invalid(f"unknown kind {kind_text!r}: one of {', '.join(Kind)}")
    if source_text not in Source.__members__.values():
        raise Invalid(f"unknown source {source_text!r}: one of {', '.join(Source)}")
    kind, source = Kind(kind_text), Source(source_text)
    words = set((row.get("capabilities") or "sms").replace("+", " ").replace(",", " ").lower().split())
    if words - {"sms", "mms", "voice"}:
        raise Invalid(f"unknown capabilities {sorted(words - {'sms', 'mms', 'voice'})}")
    account = row.get("account") or None
    if account is not None and not (account.isascii() and account.isdigit()):
        raise Invalid(f"account {account!r} is not an account id")
    spec = service.Spec(row.get("number", ""), kind, source, "sms" in words, "mms" in words, "voice" in words,
                        row.get("carrier") or None)
    return spec, int(account) if account else None


def import_rows(db: Database, rows: Iterable[tuple[int, dict[str, str]]], default_region: str, *,
                known_carriers: Iterable[str] | None = None, progress: Callable[[int], None] | None = None) -> Summary:
    summary, carriers = Summary(), None if known_carriers is None else set(known_carriers)
    batch = list(rows)
    for start in range(0, len(batch), CHUNK):
        with db.write() as session:
            for line, row in batch[start:start + CHUNK]:
                try:
                    spec, account = spec_of(row)
                    with session.begin_nested():
                        service.add(session, spec, default_region, account_id=account, known_carriers=carriers)
                    summary.added += 1
                except PigeonError as exc:
                    summary.refused.append((line, row.get("number", ""), exc.detail))
                except IntegrityError:  # added meanwhile by another writer: its savepoint undid it
                    summary.refused.append((line, row.get("number", ""), "Pigeon has the number already"))
        if progress is not None:
            progress(len(batch[start:start + CHUNK]))
    return summary
