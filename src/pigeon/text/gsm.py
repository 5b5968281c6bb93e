"""GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1) and 7-bit packing.

Septets are handled *unpacked* (one per byte) by ``encode_gsm7`` and
``decode_gsm7``; ``pack_septets`` / ``unpack_septets`` convert to and from
the packed form carried in TP-User-Data.
"""

from __future__ import annotations

__all__ = [
    "ESC",
    "GSM7_BASIC",
    "GSM7_EXTENDED",
    "decode_gsm7",
    "encode_gsm7",
    "gsm7_septets",
    "is_gsm7",
    "pack_septets",
    "unpack_septets",
]

#: Escape to the extension table. A code, not a character.
ESC = 0x1B

# Basic table, indexed by code. Position 0x1B (ESC) holds a placeholder that
# is removed from the character set below.
_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10
    " !\"#¤%&'()*+,-./"  # 0x20
    "0123456789:;<=>?"  # 0x30
    "¡ABCDEFGHIJKLMNO"  # 0x40
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50
    "¿abcdefghijklmno"  # 0x60
    "pqrstuvwxyzäöñüà"  # 0x70
)
assert len(_BASIC_TABLE) == 128

# Default extension table (reached through ESC). Codes not listed here fall
# back to the basic table on decode (TS 23.038 §6.2.1.1).
_EXTENSION_TABLE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_BASIC_CODE = {ch: code for code, ch in enumerate(_BASIC_TABLE) if code != ESC}
_EXTENDED_CODE = {ch: code for code, ch in _EXTENSION_TABLE.items()}

GSM7_BASIC: frozenset[str] = frozenset(_BASIC_CODE)
GSM7_EXTENDED: frozenset[str] = frozenset(_EXTENDED_CODE)
_GSM7_ALL = GSM7_BASIC | GSM7_EXTENDED

# str.translate tables: character -> latin-1 septet string, and back.
_ENCODE_MAP = {ord(ch): chr(code) for ch, code in _BASIC_CODE.items()}
_ENCODE_MAP.update(
    {ord(ch): chr(ESC) + chr(code) for ch, code in _EXTENDED_CODE.items()}
)
_DECODE_MAP = {code: ch for code, ch in enumerate(_BASIC_TABLE) if code != ESC}


def is_gsm7(text: str) -> bool:
    """True if every character is in the basic or extension table."""
    return _GSM7_ALL.issuperset(text)


def _count_extended(text: str) -> int:
    if GSM7_EXTENDED.isdisjoint(text):
        return 0
    return sum(map(text.count, GSM7_EXTENDED))


def gsm7_septets(text: str) -> int:
    """Septet count of ``text`` (extension characters count 2).

    Assumes ``is_gsm7(text)``; characters outside the alphabet count 1.
    """
    return len(text) + _count_extended(text)


def _first_invalid(text: str) -> tuple[int, str]:
    for index, ch in enumerate(text):
        if ch not in _GSM7_ALL:
            return index, ch
    raise AssertionError("unreachable")  # pragma: no cover


def encode_gsm7(text: str) -> bytes:
    """Encode to unpacked septets, one per byte; extension chars as ESC+code.

    Raises ``ValueError`` naming the first character (and its index) that
    is not in the GSM 7-bit default alphabet.
    """
    if not _GSM7_ALL.issuperset(text):
        index, ch = _first_invalid(text)
        raise ValueError(
            f"character {ch!r} (U+{ord(ch):04X}) at index {index} "
            "is not in the GSM 7-bit default alphabet"
        )
    return text.translate(_ENCODE_MAP).encode("latin-1")


def decode_gsm7(data: bytes) -> str:
    """Decode unpacked septets (one per byte) to text.

    Escape handling, per TS 23.038 §6.2.1.1:

    * ESC + a code with no extension character decodes as the basic-table
      character of that code (the spec's mandated fallback).
    * ESC + ESC (reserved for a further extension table) decodes as a single
      space, "until another extension table is defined"; the next septet is
      decoded normally.
    * A trailing lone ESC decodes as a space (a receiver that does not
      understand the escape "shall display it as a space").

    Raises ``ValueError`` on a byte above 0x7F.
    """
    raw = bytes(data)
    if raw and max(raw) > 0x7F:
        index = next(i for i, b in enumerate(raw) if b > 0x7F)
        raise ValueError(f"byte 0x{raw[index]:02X} at index {index} is not a septet")
    if ESC not in raw:
        return raw.decode("latin-1").translate(_DECODE_MAP)
    out: list[str] = []
    append = out.append
    i = 0
    n = len(raw)
    while i < n:
        code = raw[i]
        i += 1
        if code != ESC:
            append(_BASIC_TABLE[code])
        elif i == n:
            append(" ")
        else:
            code = raw[i]
            i += 1
            if code == ESC:
                append(" ")
            else:
                append(_EXTENSION_TABLE.get(code) or _BASIC_TABLE[code])
    return "".join(out)


def _check_fill(fill_bits: int) -> None:
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be between 0 and 6, got {fill_bits}")


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets LSB-first into octets, as in SMS TP-User-Data.

    ``fill_bits`` zero bits precede the first septet (the padding after a
    UDH that puts the text on a septet boundary). Unused high bits of the
    last octet are zero.
    """
    _check_fill(fill_bits)
    raw = bytes(septets)
    if raw and max(raw) > 0x7F:
        raise ValueError("septet values must be below 0x80")
    out = bytearray()
    acc = 0
    nbits = fill_bits
    for septet in raw:
        acc |= septet << nbits
        nbits += 7
        if nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """Inverse of ``pack_septets``: read ``count`` septets after ``fill_bits``.

    Raises ``ValueError`` if ``data`` holds fewer than
    ``fill_bits + 7 * count`` bits.
    """
    _check_fill(fill_bits)
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    if fill_bits + 7 * count > 8 * len(data):
        raise ValueError(
            f"{len(data)} octets cannot hold {count} septets after {fill_bits} fill bits"
        )
    raw = bytes(data) + b"\x00"
    out = bytearray(count)
    bit = fill_bits
    for i in range(count):
        j = bit >> 3
        out[i] = ((raw[j] | raw[j + 1] << 8) >> (bit & 7)) & 0x7F
        bit += 7
    return bytes(out)
