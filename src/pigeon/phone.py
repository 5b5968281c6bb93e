"""Phone numbers to E.164, with the country they belong to (phonenumbers, cached).

Accepted: ``+27821234567``, ``0027821234567``, ``27821234567`` (the country code without
``+``, as some clients strip it), and national ``0821234567`` in the default region.
Spaces, dashes, dots and brackets are ignored.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import phonenumbers

from pigeon.errors import Invalid, Reason


class Phone(NamedTuple):
    e164: str
    region: str | None


def normalise(raw: object, default_region: str) -> Phone:
    """The E.164 form of a phone number; else ``Invalid`` (reason INVALID_NUMBER), whose detail
    reads "Invalid mobile number: ..."."""
    if raw is None:
        raise _invalid("no number given")
    if isinstance(raw, bool) or not isinstance(raw, str | int) or (isinstance(raw, int) and raw < 0):
        raise _invalid(f"{raw!r} is not a phone number")
    phone = _normalise(str(raw).strip(), default_region)
    if phone is None:
        raise _invalid(f"{raw} is not a valid phone number")
    return phone


def _invalid(why: str) -> Invalid:
    shown = why if len(why) <= 80 else why[:60] + "...(" + str(len(why)) + " characters)"
    return Invalid(f"Invalid mobile number: {shown}", Reason.INVALID_NUMBER)


@lru_cache(maxsize=65_536)
def _normalise(raw: str, default_region: str) -> Phone | None:
    if not raw or len(raw) > 32:
        return None
    candidates: list[tuple[str, str | None]]
    if raw.startswith("+"):
        candidates = [(raw, None)]
    elif raw.startswith("00"):
        candidates = [("+" + raw[2:], None)]
    elif raw.startswith("0"):
        candidates = [(raw, default_region)]
    else:
        candidates = [("+" + raw, None), (raw, default_region)]
    for text, region in candidates:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if number.extension:  # an extension reaches a desk phone, not a handset: no SMS goes to it
            return None
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return Phone(e164, phonenumbers.region_code_for_number(number))
    return None


@lru_cache(maxsize=65_536)
def region_of(number: str | None) -> str | None:
    """The region (ISO 3166) of an E.164 number; None for a short code, a sender ID, or none."""
    if not number or not number.startswith("+"):
        return None
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return None


@lru_cache(maxsize=65_536)
def spaced(number: str | None) -> str:
    """An E.164 number with a space after its country code (``+1 4155550100``), as Zoho writes
    numbers; anything else (a short code, a sender ID) as it is."""
    if not number or not number.startswith("+"):
        return number or ""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return f"+{parsed.country_code} {phonenumbers.national_significant_number(parsed)}"
