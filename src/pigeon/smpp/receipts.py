"""Delivery receipts: parsing the de-facto receipt text, comparing message ids."""

from __future__ import annotations

import re
from dataclasses import dataclass

RECEIPT_STATS = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE"})


@dataclass(frozen=True, slots=True)
class ReceiptFields:
    """A delivery receipt's fields, as text written by the SMSC (None when absent).

    ``stat`` is upper-cased; it is usually one of RECEIPT_STATS but is not checked.
    Dates stay text (YYMMDDhhmm, sometimes with seconds) in the SMSC's unstated time zone.
    """

    message_id: str
    stat: str | None
    err: str | None
    submit_date: str | None
    done_date: str | None
    text: str | None


_RECEIPT_KEY = re.compile(
    r"(?:^|(?<=\s))(id|sub|dlvrd|submit\s*date|done\s*date|stat|err|text)\s*:\s*",
    re.IGNORECASE,
)


# The layout nearly every SMSC writes; matched first because it is several times cheaper.
_CANONICAL_RECEIPT = re.compile(
    r"id:(\S+) sub:\S* dlvrd:\S* submit date:(\S*) done date:(\S*) stat:(\S+) err:(\S*)(?: text:(.*))?\Z",
    re.DOTALL,
)


def parse_receipt(text: bytes | str) -> ReceiptFields | None:
    """Parse the de-facto receipt text ("id:... stat:DELIVRD err:000 ..."); None if no id.

    Keys are matched case-insensitively with any spacing; absent fields become None. Each
    value runs to the next key, so "text:" takes the rest of the receipt.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("latin-1")
    canonical = _CANONICAL_RECEIPT.match(text)
    if canonical is not None:
        message_id, submit_date, done_date, stat, err, rest = canonical.groups()
        return ReceiptFields(message_id, stat.upper(), err or None, submit_date or None, done_date or None,
                       rest.strip() if rest is not None else None)
    values: dict[str, str] = {}
    matches = list(_RECEIPT_KEY.finditer(text))
    for i, match in enumerate(matches):
        key = "".join(match.group(1).lower().split())
        if key == "text":
            values.setdefault(key, text[match.end() :].strip())
            break
        stop = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        values.setdefault(key, text[match.end() : stop].strip())
    message_id = values.get("id")
    if not message_id:
        return None
    stat = values.get("stat")
    return ReceiptFields(
        message_id=message_id,
        stat=stat.upper() if stat else None,
        err=values.get("err") or None,
        submit_date=values.get("submitdate") or None,
        done_date=values.get("donedate") or None,
        text=values.get("text"),
    )


def normalise_message_id(text: str) -> str:
    """Canonical form for comparing message ids: trimmed, lower-case, no leading zeros.

    "000A1b" and "a1b" compare equal. Decimal and hex are not interconverted: an SMSC that
    answers submit_sm with "12" and reports "c" in its receipt needs its own mapping.
    """
    text = text.strip().lower()
    stripped = text.lstrip("0")
    return stripped if stripped or not text else "0"
