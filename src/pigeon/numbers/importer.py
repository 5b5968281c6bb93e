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


def read(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of each data row, keys lower-cased; ``Invalid`` without a number column."""
    reader = csv.DictReader(stream)
    if reader.fieldnames is None or "number" not in [name.strip().lower() for name in reader.fieldnames]:
        raise Invalid("the file needs a header line with a 'number' column")
    for row in reader:
        yield reader.line_num, {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()}


def spec_of(row: dict[str, str]) -> tuple[service.Spec, int | None]:
    """The number a row describes, and the account it goes to; ``Invalid`` saying why not."""
    try:
        kind = Kind(row.get("kind") or Kind.LOCAL.value)
        source = Source(row.get("source") or Source.PURCHASED.value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    words = set((row.get("capabilities") or "sms").replace("+", " ").replace(",", " ").lower().split())
    if words - {"sms", "mms", "voice"}:
        raise Invalid(f"unknown capabilities {sorted(words - {'sms', 'mms', 'voice'})}")
    account = row.get("account") or None
    if account is not None and not account.isdigit():
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
