"""Encoding choice, length and splitting of a message into SMS parts.

A message is GSM7 if every character is in the GSM 03.38 default alphabet
(basic or extension table), otherwise UCS2. Lengths are in septets (GSM7,
extension characters count 2) or UTF-16 code units (UCS2, characters
outside the BMP count 2). Parts are filled greedily and a 2-unit character
is never cut in half, so a concatenated message can need more parts than
``ceil(length / limit)``; ``analyse`` and ``split`` always agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .gsm import GSM7_BASIC, GSM7_EXTENDED, gsm7_septets, is_gsm7

__all__ = [
    "GSM7",
    "GSM7_CONCAT_LIMIT",
    "GSM7_SINGLE_LIMIT",
    "UCS2",
    "UCS2_CONCAT_LIMIT",
    "UCS2_SINGLE_LIMIT",
    "Analysis",
    "BINARY",
    "BINARY_CONCAT_LIMIT",
    "BINARY_SINGLE_LIMIT",
    "analyse",
    "analyse_as",
    "character_analysis",
    "split",
]

GSM7 = "GSM7"
UCS2 = "UCS2"
BINARY = "BINARY"  # 8-bit data, written as hex in the message's text

#: Septets in a single-part GSM7 message / in each part of a concatenated one.
GSM7_SINGLE_LIMIT = 160
GSM7_CONCAT_LIMIT = 153
#: UTF-16 code units in a single-part UCS2 message / in each concatenated part.
UCS2_SINGLE_LIMIT = 70
UCS2_CONCAT_LIMIT = 67
#: Octets in a single-part 8-bit message / in each concatenated part (6 go to the UDH).
BINARY_SINGLE_LIMIT = 140
BINARY_CONCAT_LIMIT = 134

_LIMITS = {
    GSM7: (GSM7_SINGLE_LIMIT, GSM7_CONCAT_LIMIT),
    UCS2: (UCS2_SINGLE_LIMIT, UCS2_CONCAT_LIMIT),
}


@dataclass(frozen=True, slots=True)
class Analysis:
    """Encoding, length in septets or UTF-16 units, parts, and code points."""

    encoding: str
    length: int
    parts: int
    characters: int


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) >> 1


def _gsm7_char_width(ch: str) -> int:
    return 2 if ch in GSM7_EXTENDED else 1


def _utf16_char_width(ch: str) -> int:
    return 2 if ch > "\uffff" else 1


_WIDTHS = {
    GSM7: (gsm7_septets, _gsm7_char_width),
    UCS2: (_utf16_units, _utf16_char_width),
}


def _measure(text: str) -> tuple[str, int]:
    if is_gsm7(text):
        return GSM7, gsm7_septets(text)
    return UCS2, _utf16_units(text)


def _cuts(text: str, encoding: str) -> list[int]:
    """End indices of greedily filled concatenated parts.

    Every character is 1 or 2 units wide and is never split.
    """
    limit = _LIMITS[encoding][1]
    width, char_width = _WIDTHS[encoding]
    cuts = []
    n = len(text)
    start = 0
    while start < n:
        end = min(n, start + limit)
        used = width(text[start:end])
        if used > limit:  # dropping one character per excess unit always fits
            end -= used - limit
            used = width(text[start:end])
        while end < n:  # take back any that still fit
            extra = char_width(text[end])
            if used + extra > limit:
                break
            used += extra
            end += 1
        cuts.append(end)
        start = end
    return cuts


def _count_parts(text: str, encoding: str, length: int) -> int:
    single, concat = _LIMITS[encoding]
    if length <= single:
        return 1 if text else 0
    if length == len(text):  # no 2-unit characters: plain arithmetic
        return -(-length // concat)
    return len(_cuts(text, encoding))


def analyse(text: str) -> Analysis:
    """Choose the encoding and count length and parts of ``text``."""
    encoding, length = _measure(text)
    return Analysis(encoding, length, _count_parts(text, encoding, length), len(text))


def analyse_as(text: str, encoding: str) -> Analysis:
    """``text`` analysed in an ``encoding`` the sender chose: GSM7 (``ValueError`` if a
    character is not in the GSM 03.38 alphabet), UCS2, or BINARY (``text`` is the data in hex:
    ``ValueError`` unless it is an even number of hex digits; its length is in octets)."""
    if encoding == BINARY:
        try:
            octets = len(bytes.fromhex(text))
        except ValueError:
            raise ValueError("binary data must be written as pairs of hex digits") from None
        if not octets:
            return Analysis(BINARY, 0, 0, 0)
        parts = 1 if octets <= BINARY_SINGLE_LIMIT else -(-octets // BINARY_CONCAT_LIMIT)
        return Analysis(BINARY, octets, parts, len(text))
    if encoding == GSM7:
        if not is_gsm7(text):
            bad = next(ch for ch in text if not is_gsm7(ch))
            raise ValueError(f"{bad!r} is not in the GSM 03.38 alphabet")
        length = gsm7_septets(text)
    elif encoding == UCS2:
        length = _utf16_units(text)
    else:
        raise ValueError(f"unknown encoding {encoding!r}")
    return Analysis(encoding, length, _count_parts(text, encoding, length), len(text))


def split(text: str) -> list[str]:
    """Split ``text`` into the text of each SMS part, in order.

    ``"".join(split(text)) == text`` and ``len(split(text)) ==
    analyse(text).parts``. A GSM7 extension character or a non-BMP
    character is never divided between parts. The empty text gives ``[]``.
    """
    encoding, length = _measure(text)
    single, concat = _LIMITS[encoding]
    if length <= single:
        return [text] if text else []
    if length == len(text):
        return [text[i : i + concat] for i in range(0, length, concat)]
    parts = []
    start = 0
    for end in _cuts(text, encoding):
        parts.append(text[start:end])
        start = end
    return parts


def character_analysis(text: str) -> list[list]:
    """``[character, occurrences, class]`` per distinct character.

    Entries follow the order of first appearance; class is ``"GSM7"``,
    ``"GSM7_EXTENDED"`` or ``"UCS2"`` and depends only on the character.
    """
    return [
        [ch, count, _character_class(ch)] for ch, count in Counter(text).items()
    ]


def _character_class(ch: str) -> str:
    if ch in GSM7_BASIC:
        return "GSM7"
    if ch in GSM7_EXTENDED:
        return "GSM7_EXTENDED"
    return UCS2
