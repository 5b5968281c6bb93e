"""A send's recipients as people give them: typed (one a line, or separated by commas or
semicolons), or a CSV file with a header row naming a number column (``number``,
``recipientNumber``, ``mobile``, ``phone`` or ``contactNumber``, in any case) and optionally a
``message`` column, its cells separated by commas, semicolons or tabs. Pure: no I/O."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from pigeon.errors import Invalid

SEPARATORS = re.compile(r"[\r\n,;]+")
NUMBER_COLUMNS = ("number", "recipientnumber", "mobile", "phone", "contactnumber")
MESSAGE_COLUMNS = ("message",)
DELIMITERS = (",", ";", "\t")


def typed(text: str) -> list[str]:
    """The recipients written in a text box, in order, blanks left out."""
    return [entry.strip() for entry in SEPARATORS.split(text) if entry.strip()]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a sheet: the line it starts on (the header is line 1), its number, and its
    own message (None: the column is missing or the cell empty)."""

    line: int
    number: str
    message: str | None


class SheetError(Invalid):
    """The file cannot be read as a list of recipients at all."""


def _key(header: str) -> str:
    return re.sub(r"[\s_\-]", "", header.strip().lower())


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without a byte order mark); ``SheetError`` otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SheetError(f"The file is not UTF-8 text (line {line}): save it as CSV UTF-8 and try again") from None


def read_sheet(text: str, *, max_rows: int) -> list[Row]:
    """The rows of a CSV sheet, blank ones left out; ``SheetError`` when it has no header, no
    number column, more than ``max_rows`` rows, or a line the csv module cannot read."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        raise SheetError("The file is empty: it needs a header row and a row for each recipient")
    reader = csv.reader(lines[start:], delimiter=_delimiter(lines[start]))
    try:
        header = [_key(name) for name in next(reader)]
        number_at = next((header.index(name) for name in NUMBER_COLUMNS if name in header), None)
        if number_at is None:
            raise SheetError("The header row names no number column: call it number, recipientNumber, mobile, "
                             "phone or contactNumber")
        message_at = next((header.index(name) for name in MESSAGE_COLUMNS if name in header), None)
        rows, ended = [], start + reader.line_num
        for cells in reader:
            line, ended = ended + 1, start + reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) == max_rows:
                raise SheetError(f"The file has more than {max_rows:,} recipients: split it into smaller files")
            number = cells[number_at].strip() if number_at < len(cells) else ""
            message = cells[message_at] if message_at is not None and message_at < len(cells) else ""
            rows.append(Row(line, number, message if message.strip() else None))
    except csv.Error as exc:
        raise SheetError(f"Line {start + reader.line_num}: the file cannot be read as CSV ({exc})") from None
    return rows
