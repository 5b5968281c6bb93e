"""CSV files as people export them from spreadsheets: a header line naming the columns (in any
case, with or without spaces, dashes or underscores), a comma, semicolon or tab between cells,
and now and then a line the csv module cannot read.

Pure: a stream in, records out. A record carries its line in the file (the header is line 1; a
quoted cell may span lines). A line that cannot be read is a record with its problem when the
lines after it can still be read; when they cannot (a quote left open), the whole file is
refused (``CsvError``) before the caller has written anything.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from pigeon.errors import Invalid

NUL = "\x00"
NUL_PROBLEM = "a field contains a NUL character (\\x00)"


class CsvError(Invalid):
    """The file cannot be read at all."""


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    cells: list[str]
    problem: str | None = None  # why the line cannot be taken (its cells then may be empty)


def key(header: str) -> str:
    """A column's name as it is matched: lower case, no spaces, dashes or underscores."""
    return re.sub(r"[\s_\-]", "", header.strip().lower())


class _Lines:
    """A stream's lines as the csv reader takes them, the last one kept."""

    def __init__(self, stream: TextIO):
        self._lines = iter(stream)
        self.last = ""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        self.last = next(self._lines)
        return self.last


def read(stream: TextIO, empty: str) -> tuple[list[str], list[str], Iterator[Record]]:
    """The header as written, its keys (``key``), and the records after it; blank lines are
    skipped. ``empty`` is the refusal of a file with no header line."""
    first = stream.readline()
    if not first.strip():
        raise CsvError(empty)
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    try:
        header = next(csv.reader([first], delimiter=delimiter))
    except csv.Error as exc:
        raise CsvError(f"line 1: {exc}") from None
    return header, [key(name) for name in header], _records(stream, delimiter)


def _records(stream: TextIO, delimiter: str) -> Iterator[Record]:
    lines = _Lines(stream)
    reader = csv.reader(lines, delimiter=delimiter)
    consumed = 0
    while True:
        line = consumed + 2
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader drops the rest of the line and starts afresh on the next: right only
            # if this record began on this line and no quoted cell runs on past it.
            if reader.line_num - consumed > 1 or lines.last.count('"') % 2:
                raise CsvError(f"line {line}: {exc}") from None
            consumed = reader.line_num
            yield Record(line, [], f"cannot be read: {exc}")
            continue
        consumed = reader.line_num
        if any(cell.strip() for cell in cells):
            yield Record(line, cells, NUL_PROBLEM if any(NUL in cell for cell in cells) else None)


def cell(cells: list[str], at: int | None) -> str:
    """The cell at ``at``, stripped; empty when the row is short or there is no such column."""
    return cells[at].strip() if at is not None and at < len(cells) else ""
