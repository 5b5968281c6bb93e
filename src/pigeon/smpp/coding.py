"""The text side of SMPP: data_coding, long-message splitting and concatenation, decoding.

Pure functions, standard library only, no I/O. ``encode_parts`` turns a text into the
``short_message`` / ``data_coding`` / ``esm_class`` / TLVs of each submit_sm;
``decode_message`` does the reverse for one received PDU, and ``Reassembler`` joins the
segments of a concatenated message.

Packed GSM 7-bit has no septet count in SMPP, so it is implied by the octets. Following
3GPP TS 23.038 §6.1.2.3.1, seven spare bits at the end are filled with a CR (not read
back as a trailing "@"), and one trailing CR is dropped on decode when the septets end
exactly on an octet boundary. A text that itself ends with CR on an octet boundary gets
a second CR when the part has room (the spec's rule; the reader sees CR CR), else that
CR is lost to the ambiguity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType

from ..text.gsm import ESC, GSM7_BASIC, GSM7_EXTENDED, decode_gsm7, encode_gsm7, is_gsm7
from ..text.segment import BINARY, GSM7, UCS2
from .pdu import Tag

__all__ = [
    "Alphabet",
    "DataCoding",
    "Part",
    "Reassembler",
    "Segment",
    "Split",
    "decode_message",
    "encode_parts",
]


class DataCoding(IntEnum):
    """SMPP 3.4 data_coding values Pigeon names."""

    DEFAULT = 0x00  # SMSC default alphabet: GSM 03.38 here
    IA5 = 0x01
    OCTET_2 = 0x02
    LATIN1 = 0x03
    OCTET = 0x04
    JIS = 0x05
    CYRILLIC = 0x06
    HEBREW = 0x07
    UCS2 = 0x08


class Split(StrEnum):
    """How a message longer than one part is carried."""

    UDH8 = "udh8"  # UDH IE 0x00, 8-bit reference (6-octet UDH)
    UDH16 = "udh16"  # UDH IE 0x08, 16-bit reference (7-octet UDH)
    SAR = "sar"  # sar_* TLVs, no UDH
    PAYLOAD = "payload"  # the whole message in one submit_sm's message_payload TLV


class Alphabet(StrEnum):
    """What a carrier is told to use for text that fits GSM 03.38."""

    GSM7 = "gsm7"  # data_coding 0, GSM 03.38 septets
    LATIN1 = "latin1"  # data_coding 3 when the text is Latin-1 encodable, else UCS-2
    UCS2 = "ucs2"  # always data_coding 8


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm's worth: the fields that differ between parts."""

    short_message: bytes
    data_coding: int
    esm_class: int  # 0x40 (UDHI) when short_message starts with a UDH, else 0
    tlvs: Mapping[int, bytes]  # SAR or message_payload TLVs, else empty


@dataclass(frozen=True, slots=True)
class Segment:
    """One received part, decoded."""

    text: str
    reference: int | None  # concatenation reference, None when not concatenated
    total: int  # 1 when not concatenated
    seq: int  # 1-based


_UDHI = 0x40
_CR = 0x0D
_EMPTY: Mapping[int, bytes] = MappingProxyType({})
_OCTET = tuple(bytes((i,)) for i in range(256))
_SAR_MSG_REF_NUM = int(Tag.SAR_MSG_REF_NUM)
_SAR_TOTAL_SEGMENTS = int(Tag.SAR_TOTAL_SEGMENTS)
_SAR_SEGMENT_SEQNUM = int(Tag.SAR_SEGMENT_SEQNUM)
_MESSAGE_PAYLOAD = int(Tag.MESSAGE_PAYLOAD)
_MAX_PARTS = 255

_ALPHABETS = frozenset(Alphabet)
_SPLITS = frozenset(Split)

# Octets of unpacked encoded text: (single part, per part for UDH8/SAR/PAYLOAD, for UDH16).
# GSM counts septets (one per octet), UCS-2 two octets per UTF-16 unit.
_GSM, _UCS2, _LATIN1 = 0, 1, 2
_LIMITS = {_GSM: (160, 153, 152), _UCS2: (140, 134, 132), _LATIN1: (140, 134, 133)}
# Octets a packed GSM part may use (140 less the UDH), for the doubled-CR rule.
_ROOM = {Split.UDH8: 134, Split.UDH16: 133, Split.SAR: 140, Split.PAYLOAD: 0xFFFF}


# ---------------------------------------------------------------------------------------
# 7-bit packing without a per-septet loop: within each 8-septet block septet i moves by i
# bits, done as three mask-and-shift steps (by 1, 2, 4) on one big integer; the spare top
# octet of each 64-bit block is then deleted with an extended-slice ``del``.

_BLOCK = 1024  # septets per big-integer pass; a multiple of 8, so passes join on octets


def _block_mask(k: int, before: int) -> int:
    mask = 0
    for i in range(8):
        if i >> k & 1:
            mask |= 0x7F << (8 * i - i % before)
    return int.from_bytes(mask.to_bytes(8, "little") * (_BLOCK // 8), "little")


_PACK_STEPS = tuple((1 << k, _block_mask(k, 1 << k)) for k in range(3))
_UNPACK_STEPS = tuple((1 << k, _block_mask(k, 2 << k)) for k in (2, 1, 0))


def _pack(septets: bytes, fill: int = 0) -> bytes:
    """``pack_septets`` for septets below 0x80; the empty input packs to b""."""
    n = len(septets)
    if n > _BLOCK:
        buf = bytearray(b"".join(_pack(septets[i : i + _BLOCK]) for i in range(0, n, _BLOCK)))
    else:
        x = int.from_bytes(septets, "little")
        for shift, mask in _PACK_STEPS:
            high = x & mask
            x = (x ^ high) | (high >> shift)
        buf = bytearray(x.to_bytes((n + 7) & ~7, "little"))
        del buf[7::8]
    size = (fill + 7 * n + 7) >> 3
    if fill:
        return (int.from_bytes(buf, "little") << fill).to_bytes(size, "little")
    del buf[size:]
    return bytes(buf)


def _unpack(data: bytes, count: int, fill: int = 0) -> bytes:
    """``unpack_septets`` for ``count`` septets that ``data`` is known to hold."""
    if fill:
        data = (int.from_bytes(data, "little") >> fill).to_bytes(len(data), "little")
    if count > _BLOCK:
        step = _BLOCK * 7 // 8
        return b"".join(
            _unpack(data[j : j + step], min(_BLOCK, count - i))
            for i, j in zip(range(0, count, _BLOCK), range(0, len(data), step))
        )
    blocks = (count + 7) >> 3
    src = data[: 7 * blocks].ljust(7 * blocks, b"\0")
    buf = bytearray(8 * blocks)
    for j in range(7):
        buf[j::8] = src[j::7]
    x = int.from_bytes(buf, "little")
    for shift, mask in _UNPACK_STEPS:
        high = x & mask
        x = (x ^ high) | (high << shift)
    return x.to_bytes(8 * blocks, "little")[:count]


def _pack_gsm(septets: bytes, fill: int, room: int) -> bytes:
    """Pack with the CR rules of TS 23.038 §6.1.2.3.1 (see the module docstring)."""
    spare = -(fill + 7 * len(septets)) % 8
    if spare == 7 or (spare == 0 and septets[-1:] == b"\r" and (fill + 7 * len(septets) + 14) >> 3 <= room):
        septets += b"\r"
    return _pack(septets, fill)


# ---------------------------------------------------------------------------------------
# Encoding

# Character -> unpacked septets; other Latin-1 characters -> U+FFFF, so that for ASCII
# text a failing latin-1 encode is the whole GSM 03.38 check (str.translate's fast path).
_TO_SEPTETS = {ord(ch): encode_gsm7(ch).decode("latin-1") for ch in GSM7_BASIC | GSM7_EXTENDED}
_TO_SEPTETS.update({c: "\uffff" for c in range(256) if c not in _TO_SEPTETS})


def _septets(text: str) -> bytes | None:
    """``encode_gsm7(text)``, or None when ``text`` is not GSM 03.38."""
    if not (text.isascii() or is_gsm7(text)):
        return None
    try:
        return text.translate(_TO_SEPTETS).encode("latin-1")
    except UnicodeEncodeError:
        return None


def _cuts(data: bytes, size: int, kind: int) -> list[int]:
    """End offsets of greedily filled parts of at most ``size`` octets.

    Never ends a part on an ESC (GSM) or a high surrogate (UCS-2), so an extension
    character or a surrogate pair stays whole: the same parts as ``pigeon.text.split``.
    """
    n = len(data)
    ends: list[int] = []
    end = 0
    while end < n:
        end += size
        if end >= n:
            end = n
        elif kind == _GSM:
            if data[end - 1] == ESC:
                end -= 1
        elif kind == _UCS2 and 0xD8 <= data[end - 2] <= 0xDB:
            end -= 2
        ends.append(end)
        if len(ends) > _MAX_PARTS:
            raise ValueError(f"message needs more than {_MAX_PARTS} parts")
    return ends


_FLASH = {_GSM: 0x10, _LATIN1: 0x14, _UCS2: 0x18}  # general data coding, message class 0, by alphabet


def _chosen(text: str, alphabet: Alphabet, forced: str | None, flash: bool) -> tuple[int, int, bytes]:
    """(kind, data_coding, octets) of a message whose sender forced its encoding, or that is
    flash (see ``encode_parts``)."""
    if forced == BINARY:
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise ValueError("binary data must be written as pairs of hex digits") from None
        return _LATIN1, 0x14 if flash else 0x04, data  # 8-bit data: no alphabet, cut anywhere
    if forced is None:  # flash alone: the carrier's choice, but GSM rather than Latin-1
        septets = None if alphabet == Alphabet.UCS2 else _septets(text)
    elif forced == GSM7:
        septets = _septets(text)
        if septets is None:
            bad = next(ch for ch in text if not is_gsm7(ch))
            raise ValueError(f"{bad!r} is not in the GSM 03.38 alphabet, and GSM was forced")
        if alphabet == Alphabet.LATIN1 and not flash:
            try:
                return _LATIN1, 0x03, text.encode("latin-1")
            except UnicodeEncodeError:
                pass
    elif forced == UCS2:
        septets = None
    else:
        raise ValueError(f"unknown encoding: {forced!r}")
    if septets is not None:
        return _GSM, _FLASH[_GSM] if flash else 0x00, septets
    return _UCS2, _FLASH[_UCS2] if flash else 0x08, text.encode("utf-16-be", "surrogatepass")


def encode_parts(
    text: str,
    *,
    alphabet: Alphabet = Alphabet.GSM7,
    packed: bool = False,
    split: Split = Split.UDH8,
    reference: int = 0,
    forced: str | None = None,
    flash: bool = False,
) -> list[Part]:
    """Encode ``text`` into the parts of one message.

    GSM 03.38 text goes as ``alphabet`` says (data_coding 0 or 3); anything else, or
    ``Alphabet.UCS2``, as UTF-16-BE (data_coding 8). ``packed`` packs GSM septets.
    ``reference`` is taken modulo 2**8 (UDH8) or 2**16. Raises ValueError for more than
    255 parts, a message_payload over 65535 octets, or an unknown ``alphabet``/``split``.

    ``forced`` is the encoding the sender chose (``pigeon.text``'s GSM7, UCS2 or BINARY):
    BINARY ``text`` is the data in hex, sent as 8-bit data (data_coding 4: 140 octets, or 134
    a part after an 8-bit reference UDH); UCS2 is UTF-16-BE even for GSM 03.38 text; GSM7
    is GSM 03.38 (ValueError for any other character) as the carrier's ``alphabet`` spells
    it, data_coding 0 when that is UCS-2 or the text is not Latin-1. ``flash`` makes it
    message class 0: data_coding 0x10 (GSM), 0x14 (8-bit) or 0x18 (UCS-2); text the
    carrier would send as Latin-1 goes as GSM then (data_coding 3 has no message class).
    """
    if alphabet not in _ALPHABETS:
        raise ValueError(f"unknown alphabet: {alphabet!r}")
    if split not in _SPLITS:
        raise ValueError(f"unknown split: {split!r}")
    if forced is not None or flash:
        kind, data_coding, data = _chosen(text, alphabet, forced, flash)
    else:
        kind = _UCS2
        if alphabet == Alphabet.GSM7:
            data = _septets(text)
            if data is not None:
                kind, data_coding = _GSM, 0
        elif alphabet == Alphabet.LATIN1 and is_gsm7(text):
            try:
                kind, data_coding, data = _LATIN1, 3, text.encode("latin-1")
            except UnicodeEncodeError:
                pass
        if kind == _UCS2:
            data_coding, data = 8, text.encode("utf-16-be", "surrogatepass")
    pack = packed and kind == _GSM
    single, per_part, per_part16 = _LIMITS[kind]

    if len(data) <= single:
        if pack and data:
            data = _pack_gsm(data, 0, 140)
        return [Part(data, data_coding, 0, _EMPTY)]

    ends = _cuts(data, per_part16 if split == Split.UDH16 else per_part, kind)
    total = len(ends)
    room = _ROOM[split]
    if split == Split.PAYLOAD:
        if pack:
            data = _pack_gsm(data, 0, room)
        if len(data) > 0xFFFF:
            raise ValueError(f"message_payload of {len(data)} octets, at most 65535 allowed")
        return [Part(b"", data_coding, 0, {_MESSAGE_PAYLOAD: data})]

    parts: list[Part] = []
    append = parts.append
    start = 0
    if split == Split.SAR:
        ref = (reference & 0xFFFF).to_bytes(2, "big")
        count = _OCTET[total]
        for seq, end in enumerate(ends, 1):
            chunk = data[start:end]
            if pack:
                chunk = _pack_gsm(chunk, 0, room)
            tlvs = {_SAR_MSG_REF_NUM: ref, _SAR_TOTAL_SEGMENTS: count, _SAR_SEGMENT_SEQNUM: _OCTET[seq]}
            append(Part(chunk, data_coding, 0, tlvs))
            start = end
        return parts

    if split == Split.UDH8:
        header, fill = bytes((5, 0x00, 3, reference & 0xFF, total)), 1
    else:
        header, fill = bytes((6, 0x08, 4, reference >> 8 & 0xFF, reference & 0xFF, total)), 0
    for seq, end in enumerate(ends, 1):
        chunk = data[start:end]
        if pack:
            chunk = _pack_gsm(chunk, fill, room)
        append(Part(header + _OCTET[seq] + chunk, data_coding, _UDHI, _EMPTY))
        start = end
    return parts


# ---------------------------------------------------------------------------------------
# Decoding


def _kind(data_coding: int) -> int | str:
    """_GSM, _UCS2, _LATIN1 or a codec name for one data_coding value."""
    if data_coding <= 0x0F:  # SMPP's own values
        return {
            0x00: _GSM,
            0x01: "ascii",
            0x05: "iso2022_jp",
            0x06: "iso8859_5",
            0x07: "iso8859_8",
            0x08: _UCS2,
            0x0E: "euc_kr",
        }.get(data_coding, _LATIN1)
    if data_coding <= 0x7F:  # general data coding and automatic deletion groups: bits 3-2
        return (_GSM, _LATIN1, _UCS2, _LATIN1)[data_coding >> 2 & 3]
    if data_coding <= 0xBF:  # reserved
        return _LATIN1
    if data_coding <= 0xDF:  # message waiting indication, GSM 7-bit
        return _GSM
    if data_coding <= 0xEF:  # message waiting indication, UCS-2
        return _UCS2
    return _LATIN1 if data_coding & 0x04 else _GSM  # data coding / message class


_KINDS = tuple(_kind(dc) for dc in range(256))


def _clean(text: str) -> str:
    """Join surrogate pairs split across segments; lone surrogates become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-16-be")
    except UnicodeEncodeError:
        return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    return text


def _parse_udh(data: bytes, end: int) -> tuple[int, int, int] | None:
    """(reference, total, seq) from the first valid concatenation IE in ``data[1:end]``."""
    i = 1
    while i + 2 <= end:
        iei, length = data[i], data[i + 1]
        i += 2
        if i + length > end:
            return None
        if iei == 0x00 and length == 3:
            reference, total, seq = data[i], data[i + 1], data[i + 2]
        elif iei == 0x08 and length == 4:
            reference, total, seq = data[i] << 8 | data[i + 1], data[i + 2], data[i + 3]
        else:
            i += length
            continue
        if 1 <= seq <= total:  # TS 23.040: otherwise the IE is ignored
            return reference, total, seq
        i += length
    return None


def _parse_sar(tlvs: Mapping[int, bytes]) -> tuple[int, int, int] | None:
    reference = tlvs.get(_SAR_MSG_REF_NUM)
    total = tlvs.get(_SAR_TOTAL_SEGMENTS)
    seq = tlvs.get(_SAR_SEGMENT_SEQNUM)
    if not (reference and total and seq):
        return None
    total_n, seq_n = int.from_bytes(total, "big"), int.from_bytes(seq, "big")
    if not 1 <= seq_n <= total_n:
        return None
    return int.from_bytes(reference, "big"), total_n, seq_n


def _decode_gsm(data: bytes, udh: int, packed: bool) -> str:
    payload = data[udh:]
    if packed:
        fill = (7 - udh * 8 % 7) % 7
        bits = len(payload) * 8 - fill
        if bits < 7:
            return ""
        count = bits // 7
        septets = _unpack(payload, count, fill)
        if bits % 7 == 0 and septets[-1] == _CR:
            septets = septets[:-1]
        return decode_gsm7(septets)
    if payload.isascii():
        return decode_gsm7(payload)
    return payload.decode("latin-1")  # some SMSCs send Latin-1 under data_coding 0


def decode_message(
    short_message: bytes,
    *,
    data_coding: int,
    esm_class: int = 0,
    tlvs: Mapping[int, bytes] | None = None,
    packed: bool = False,
) -> Segment:
    """Decode a deliver_sm's (or submit_sm's) text and its concatenation info.

    The text is ``short_message``, or the message_payload TLV when short_message is
    empty. Concatenation comes from a UDH (esm_class UDHI, IE 0x00 or 0x08) or the SAR
    TLVs. Never raises on any octets: undecodable ones become U+FFFD, a malformed UDH
    is read as text, an unknown data_coding as Latin-1.
    """
    data = bytes(short_message)
    if not data and tlvs:
        data = bytes(tlvs.get(_MESSAGE_PAYLOAD) or b"")
    udh = 0
    concat = None
    if esm_class & _UDHI and data and data[0] < len(data):
        udh = data[0] + 1
        concat = _parse_udh(data, udh)
    if concat is None and tlvs:
        concat = _parse_sar(tlvs)

    kind = _KINDS[data_coding] if 0 <= data_coding <= 0xFF else _LATIN1
    if kind == _GSM:
        text = _decode_gsm(data, udh, packed)
    elif kind == _UCS2:
        payload = data[udh:]
        text = payload[: len(payload) & ~1].decode("utf-16-be", "surrogatepass")
        if concat is None or concat[1] == 1:  # keep a split pair's halves for Reassembler
            text = _clean(text)
    elif kind == _LATIN1:
        text = data[udh:].decode("latin-1")
    else:
        text = data[udh:].decode(kind, "replace")

    if concat is None:
        return Segment(text, None, 1, 1)
    return Segment(text, *concat)


# ---------------------------------------------------------------------------------------
# Reassembly


class Reassembler:
    """Joins the segments of concatenated inbound messages; pure, time passed in.

    Groups are keyed by (key, reference, total), so two messages that reuse a reference
    with different totals do not mix.
    """

    __slots__ = ("timeout", "_groups")

    def __init__(self, timeout: float = 300.0) -> None:
        self.timeout = timeout
        self._groups: dict[tuple, tuple[float, dict[int, str]]] = {}

    def add(self, key: tuple, segment: Segment, now: float) -> str | None:
        """The whole text once every segment of (key, segment.reference) is in, else None.

        A segment that is not concatenated (or whose seq is outside 1..total) returns its
        text at once. A repeated seq replaces the earlier one.
        """
        reference, total, seq = segment.reference, segment.total, segment.seq
        if reference is None or total <= 1 or not 1 <= seq <= total:
            return segment.text
        group_id = (key, reference, total)
        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = (now, {})
        texts = group[1]
        texts[seq] = segment.text
        if len(texts) < total:
            return None
        del self._groups[group_id]
        return _clean("".join([texts[i] for i in range(1, total + 1)]))

    def expire(self, now: float) -> list[tuple[tuple, str]]:
        """Groups older than ``timeout`` since their first segment, removed.

        Each as (key, what arrived, joined in seq order).
        """
        timeout = self.timeout
        old = [gid for gid, (first, _) in self._groups.items() if now - first > timeout]
        out = []
        for gid in old:
            texts = self._groups.pop(gid)[1]
            out.append((gid[0], _clean("".join([texts[i] for i in sorted(texts)]))))
        return out

    def __len__(self) -> int:
        return len(self._groups)
