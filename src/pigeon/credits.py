"""How credits are counted, and amounts of them as requests give them."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from pigeon.errors import Invalid

MILLI = 1000
"""Credits are stored as integer thousandths: exact sums, atomic updates, no float drift."""

MAX_CREDITS = 2**31 - 1
"""The most credits one request moves: the swagger's int32; also keeps balances far from BIGINT's limits."""


def amount(value: object, name: str, *, whole: bool, allow_zero: bool = False) -> int:
    """Credits given as a number (or its text, as XML gives it) in thousandths; ``Invalid``
    unless finite, positive (or zero if allowed), at most MAX_CREDITS, and whole (or, when
    not ``whole``, with at most 3 decimals: credits are kept in thousandths)."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        given = Decimal(value.strip() if isinstance(value, str) else repr(value))
    except (InvalidOperation, ValueError):
        raise Invalid(f"{name} must be a number, not {_shown(value)}") from None
    step = Decimal(1) if whole else Decimal("0.001")
    if (
        not given.is_finite()
        or given < 0
        or (given == 0 and not allow_zero)
        or given > MAX_CREDITS
        or given != given.quantize(step)
    ):
        kind = "a whole number" if whole else "a number with at most 3 decimals"
        least = "0 or more" if allow_zero else "above 0"
        raise Invalid(f"{name} must be {kind}, {least} and up to {MAX_CREDITS}, not {_shown(value)}")
    return int(given * MILLI)


def _shown(value: object) -> str:
    """A value as the request wrote it: JSON's spelling (true, null, "ten"), else Python's."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
