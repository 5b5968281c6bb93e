"""SMPP text coding: hand-built UDH/SAR/packed vectors, round trips, decoding, reassembly."""

from __future__ import annotations

import itertools
import random

import pytest

from pigeon.smpp.coding import (
    Alphabet,
    DataCoding,
    Part,
    Reassembler,
    Segment,
    Split,
    decode_message,
    encode_parts,
)
from pigeon.smpp.pdu import Tag
from pigeon.text import GSM7_BASIC, GSM7_EXTENDED, analyse, encode_gsm7, is_gsm7, pack_septets, split, unpack_septets


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def decode(part: Part, packed: bool = False) -> Segment:
    return decode_message(
        part.short_message, data_coding=part.data_coding, esm_class=part.esm_class, tlvs=part.tlvs, packed=packed
    )


MIXED = ("Hello {world}, €5 [ok] ~ café ñ | ^_^ \\o/ " * 10)[:300]
TEXTS = [
    "",
    "Hello, world!",
    "a" * 160,
    "a" * 161,
    "a" * 151 + "€" + "b" * 30,  # € straddles septets 151/152: the UDH16 boundary
    "a" * 152 + "€" + "b" * 30,  # € straddles septets 152/153: the UDH8/SAR boundary
    "a" * 153 + "^" + "b" * 30,  # ^ starts part 2
    "abcdef@",  # 7 septets: 7 spare bits when packed, padded with CR, not read as "@"
    "x" * 152 + "@",  # a full UDH8 part ending in "@"
    "café " * 50,
    "ж" * 66 + "😀" + "ж" * 10,  # the pair straddles units 66/67: the UDH8/SAR boundary
    "ж" * 65 + "😀" + "ж" * 10,  # ... 65/66: the UDH16 boundary
    "😀" * 50,
    MIXED,
    MIXED.replace("ñ", "日"),
]
GSM_TEXTS = [t for t in TEXTS if t and is_gsm7(t)]


# ---------------------------------------------------------------------------------------
# Hand-built vectors


def test_enums():
    assert DataCoding.DEFAULT == 0 and DataCoding.LATIN1 == 3 and DataCoding.UCS2 == 8
    assert Split("udh16") is Split.UDH16 and Alphabet("latin1") is Alphabet.LATIN1


def test_single_part():
    assert encode_parts("Hi @") == [Part(b"Hi\x20\x00", 0, 0, {})]
    assert encode_parts("a" * 160, split=Split.PAYLOAD) == [Part(b"a" * 160, 0, 0, {})]
    assert encode_parts("ж" * 70) == [Part("ж".encode("utf-16-be") * 70, 8, 0, {})]


@pytest.mark.parametrize("alphabet", list(Alphabet))
@pytest.mark.parametrize("packed", [False, True])
def test_empty_text(alphabet, packed):
    dc = 8 if alphabet == Alphabet.UCS2 else 3 if alphabet == Alphabet.LATIN1 else 0
    assert encode_parts("", alphabet=alphabet, packed=packed) == [Part(b"", dc, 0, {})]


def test_udh8_header():
    parts = encode_parts("A" * 161, reference=0x2A)
    assert parts == [
        Part(h("05 00 03 2A 02 01") + b"A" * 153, 0, 0x40, {}),
        Part(h("05 00 03 2A 02 02") + b"A" * 8, 0, 0x40, {}),
    ]
    assert encode_parts("A" * 161, reference=0x1FF)[0].short_message[:6] == h("05 00 03 FF 02 01")


def test_udh16_header():
    parts = encode_parts("A" * 161, split=Split.UDH16, reference=0x1234)
    assert parts == [
        Part(h("06 08 04 12 34 02 01") + b"A" * 152, 0, 0x40, {}),
        Part(h("06 08 04 12 34 02 02") + b"A" * 9, 0, 0x40, {}),
    ]


def test_sar_tlvs():
    parts = encode_parts("A" * 161, split=Split.SAR, reference=0x1234)
    assert [p.short_message for p in parts] == [b"A" * 153, b"A" * 8]
    assert all(p.esm_class == 0 and p.data_coding == 0 for p in parts)
    assert parts[1].tlvs == {0x020C: h("12 34"), 0x020E: h("02"), 0x020F: h("02")}
    assert parts[0].tlvs == {Tag.SAR_MSG_REF_NUM: h("12 34"), Tag.SAR_TOTAL_SEGMENTS: b"\x02",
                             Tag.SAR_SEGMENT_SEQNUM: b"\x01"}  # fmt: skip


def test_message_payload():
    assert encode_parts("A" * 161, split=Split.PAYLOAD) == [Part(b"", 0, 0, {0x0424: b"A" * 161})]
    (part,) = encode_parts("A" * 161, split=Split.PAYLOAD, packed=True)
    assert part.short_message == b"" and part.tlvs == {0x0424: pack_septets(b"A" * 161)}
    (part,) = encode_parts("ж" * 71, split=Split.PAYLOAD)
    assert part.data_coding == 8 and part.tlvs[Tag.MESSAGE_PAYLOAD] == "ж".encode("utf-16-be") * 71


def test_packed_vectors():
    assert encode_parts("hellohello", packed=True)[0].short_message == h("e8 32 9b fd 46 97 d9 ec 37")
    # "Hello" after a 6-octet UDH: 1 fill bit, i.e. c8 32 9b fd 06 shifted left by one bit.
    part = encode_parts("x" * 306 + "Hello", packed=True, reference=7)[2]
    assert part.short_message == h("05 00 03 07 03 03  90 65 36 fb 0d")
    assert unpack_septets(part.short_message[6:], 5, 1) == encode_gsm7("Hello")
    # After a 7-octet UDH the text is already on a septet boundary: no fill.
    part = encode_parts("x" * 304 + "Hello", packed=True, split=Split.UDH16, reference=7)[2]
    assert part.short_message == h("06 08 04 00 07 03 03  c8 32 9b fd 06")


@pytest.mark.parametrize("n", [1, 6, 7, 8, 15, 153, 159, 160])
def test_packed_matches_pack_septets(n):
    text = ("The quick brown fox jumps over the lazy dog " * 4)[:n]
    septets = encode_gsm7(text)
    if n % 8 == 7:
        septets += b"\r"  # TS 23.038 §6.1.2.3.1: 7 spare bits are a CR
    assert encode_parts(text, packed=True)[0].short_message == pack_septets(septets)


def test_packed_cr_padding():
    (part,) = encode_parts("abcdefg", packed=True)
    assert len(part.short_message) == 7 and part.short_message[-1] >> 1 == 0x0D
    assert decode(part, packed=True).text == "abcdefg"
    (part,) = encode_parts("abcdef\r", packed=True)  # a wanted CR survives the padding one
    assert decode(part, packed=True).text == "abcdef\r"
    # A wanted CR ending on an octet boundary is doubled when there is room (the reader
    # sees CR CR); a full part has no room, so that CR is lost to the ambiguity.
    (part,) = encode_parts("abcdefg\r", packed=True)
    assert part.short_message == pack_septets(b"abcdefg\r\r")
    assert decode(part, packed=True).text == "abcdefg\r\r"
    (part,) = encode_parts("a" * 159 + "\r", packed=True)
    assert len(part.short_message) == 140 and decode(part, packed=True).text == "a" * 159


def test_extension_character_is_not_cut():
    parts = encode_parts("a" * 152 + "€" + "b" * 10)
    assert parts[0].short_message[6:] == b"a" * 152
    assert parts[1].short_message[6:] == h("1b 65") + b"b" * 10
    parts = encode_parts("a" * 151 + "€" + "b" * 10, split=Split.UDH16)
    assert parts[0].short_message[7:] == b"a" * 151


def test_surrogate_pair_is_not_cut():
    parts = encode_parts("ж" * 66 + "😀" + "ж" * 10, split=Split.SAR)
    assert len(parts[0].short_message) == 132
    assert parts[1].short_message[:4] == "😀".encode("utf-16-be") == h("d8 3d de 00")


@pytest.mark.parametrize(
    ("alphabet", "text", "data_coding"),
    [
        (Alphabet.LATIN1, "café", 3),
        (Alphabet.LATIN1, "Δ", 8),  # GSM but not Latin-1
        (Alphabet.LATIN1, "€", 8),
        (Alphabet.LATIN1, "ÿ", 8),  # Latin-1 but not GSM
        (Alphabet.GSM7, "日本", 8),
        (Alphabet.UCS2, "abc", 8),
        (Alphabet.GSM7, "abc", 0),
    ],
)
def test_coding_choice(alphabet, text, data_coding):
    (part,) = encode_parts(text, alphabet=alphabet)
    assert part.data_coding == data_coding
    assert decode(part).text == text


def test_every_gsm_character():
    for ch in GSM7_BASIC | GSM7_EXTENDED:
        assert encode_parts(ch) == [Part(encode_gsm7(ch), 0, 0, {})]
    for ch in "`\x00\t\x7fÿ\x80日":  # ASCII and Latin-1 outside GSM 03.38 too
        assert encode_parts("abc" + ch)[0].data_coding == 8


def test_too_many_parts():
    assert len(encode_parts("a" * (153 * 255))) == 255
    assert len(encode_parts("a" * (152 * 255), split=Split.UDH16)) == 255
    for split_ in Split:
        with pytest.raises(ValueError, match="255"):
            encode_parts("a" * (153 * 255 + 1), split=split_)
    with pytest.raises(ValueError, match="255"):
        encode_parts("ж" * (67 * 255 + 1))


def test_bad_arguments():
    with pytest.raises(ValueError):
        encode_parts("a", alphabet="ascii")
    with pytest.raises(ValueError):
        encode_parts("a", split="udh32")
    assert encode_parts("a" * 200, split="sar", alphabet="latin1")[0].data_coding == 3


# ---------------------------------------------------------------------------------------
# Round trips


def expected_coding(text: str, alphabet: Alphabet) -> int:
    if alphabet == Alphabet.UCS2 or not is_gsm7(text):
        return 8
    if alphabet == Alphabet.GSM7:
        return 0
    return 3 if all(ord(c) < 256 for c in text) else 8


@pytest.mark.parametrize(("alphabet", "split_", "packed"), list(itertools.product(Alphabet, Split, [False, True])))
@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_round_trip(text, alphabet, split_, packed):
    parts = encode_parts(text, alphabet=alphabet, split=split_, packed=packed, reference=0x1234)
    dc = expected_coding(text, alphabet)
    assert {p.data_coding for p in parts} == {dc}
    for part in parts:
        limit = 160 if dc == 0 and not packed else 140
        assert part.short_message == b"" or len(part.short_message) <= limit
        assert part.esm_class == (0x40 if len(parts) > 1 and split_ in (Split.UDH8, Split.UDH16) else 0)
    reassembler = Reassembler()
    results = [reassembler.add(("src", "dst"), decode(p, packed), 0.0) for p in reversed(parts)]
    assert results == [None] * (len(parts) - 1) + [text]
    assert len(reassembler) == 0


@pytest.mark.parametrize("split_", [Split.UDH8, Split.SAR])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("text", GSM_TEXTS, ids=range(len(GSM_TEXTS)))
def test_gsm_parts_are_the_charged_parts(text, split_, packed):
    parts = encode_parts(text, split=split_, packed=packed)
    assert [decode(p, packed).text for p in parts] == split(text)


@pytest.mark.parametrize("text", TEXTS[1:], ids=range(len(TEXTS) - 1))
def test_part_count_matches_analyse(text):
    assert len(encode_parts(text)) == analyse(text).parts


# ---------------------------------------------------------------------------------------
# Decoding


def test_decode_sar():
    tlvs = {Tag.SAR_MSG_REF_NUM: h("01 02"), Tag.SAR_TOTAL_SEGMENTS: h("03"), Tag.SAR_SEGMENT_SEQNUM: h("02")}
    assert decode_message(b"hello", data_coding=0, tlvs=tlvs) == Segment("hello", 0x0102, 3, 2)
    tlvs[Tag.SAR_SEGMENT_SEQNUM] = h("04")  # seq beyond total: not concatenated
    assert decode_message(b"hello", data_coding=0, tlvs=tlvs) == Segment("hello", None, 1, 1)


def test_decode_message_payload():
    tlvs = {Tag.MESSAGE_PAYLOAD: "ж".encode("utf-16-be") * 100}
    assert decode_message(b"", data_coding=8, tlvs=tlvs) == Segment("ж" * 100, None, 1, 1)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (h("0b 05 04 0b 84 23 f0 00 03 7f 02 01") + b"hi", Segment("hi", 0x7F, 2, 1)),  # port IE first
        (h("06 08 04 ab cd 03 03") + b"hi", Segment("hi", 0xABCD, 3, 3)),
        (h("05 00 03 01 02 00") + b"hi", Segment("hi", None, 1, 1)),  # seq 0: IE ignored
        (h("05 00 03 01 00 00") + b"hi", Segment("hi", None, 1, 1)),  # total 0: IE ignored
        (h("05 00 07 01 02 01") + b"hi", Segment("hi", None, 1, 1)),  # IE overruns the UDH
        (h("00") + b"hi", Segment("hi", None, 1, 1)),
        (h("20") + b"hi", Segment(" hi", None, 1, 1)),  # UDH longer than the data: all text
        (b"", Segment("", None, 1, 1)),
    ],
)
def test_decode_udh(data, expected):
    assert decode_message(data, data_coding=0, esm_class=0x40) == expected


def test_decode_packed_udh16():
    data = h("06 08 04 00 07 02 02  c8 32 9b fd 06")
    assert decode_message(data, data_coding=0, esm_class=0x43, packed=True) == Segment("Hello", 7, 2, 2)


@pytest.mark.parametrize(
    ("data_coding", "data", "text"),
    [
        (0x00, h("00 11 1b 65 1b"), "@_€ "),
        (0x00, b"caf\xe9", "café"),  # Latin-1 sent under data_coding 0
        (0x01, b"abc\xff", "abc\ufffd"),
        (0x02, b"\x00\xff", "\x00ÿ"),
        (0x03, b"\xe9", "é"),
        (0x04, b"\xff", "ÿ"),
        (0x05, "日本".encode("iso2022_jp"), "日本"),
        (0x06, h("b0"), "А"),
        (0x07, h("e0"), "א"),
        (0x08, h("00 41 d8 3d de 00 00"), "A😀"),  # odd trailing octet dropped
        (0x08, h("d8 3d 00 41"), "\ufffdA"),  # lone surrogate
        (0x0E, "한".encode("euc_kr"), "한"),
        (0x09, b"\xe9", "é"),
        (0x11, h("00"), "@"),
        (0x14, b"\xe9", "é"),
        (0x18, h("00 41"), "A"),
        (0x99, b"\xe9", "é"),
        (0xC0, h("00"), "@"),
        (0xD8, h("00"), "@"),
        (0xE0, h("00 41"), "A"),
        (0xF0, h("00"), "@"),
        (0xF4, b"\xe9", "é"),
        (0xF6, b"\xe9", "é"),
        (0xF1, h("00"), "@"),
        (256, b"\xe9", "é"),
        (-1, b"\xe9", "é"),
    ],
)
def test_decode_data_coding(data_coding, data, text):
    assert decode_message(data, data_coding=data_coding).text == text


def test_decode_never_raises():
    rng = random.Random(3438)
    tags = [0x020C, 0x020E, 0x020F, 0x0424, 0x1234]
    for data_coding in range(256):
        for _ in range(40):
            data = rng.randbytes(rng.choice([0, 1, 2, 7, 8, 60, 140, 254]))
            tlvs = {t: rng.randbytes(rng.randrange(4)) for t in tags if rng.random() < 0.3}
            if rng.random() < 0.5:
                data = bytes([rng.randrange(12)]) + data
            segment = decode_message(
                data, data_coding=data_coding, esm_class=rng.choice([0, 0x40, 0xFF]), tlvs=tlvs,
                packed=rng.random() < 0.5,
            )  # fmt: skip
            assert isinstance(segment.text, str) and 1 <= segment.seq <= segment.total
            if segment.total == 1:
                segment.text.encode("utf-8")  # no lone surrogates


# ---------------------------------------------------------------------------------------
# Reassembly

KEY = ("+15550001", "+15550002")


def test_reassembler_not_concatenated():
    reassembler = Reassembler()
    assert reassembler.add(KEY, Segment("hi", None, 1, 1), 0.0) == "hi"
    assert reassembler.add(KEY, Segment("hi", 5, 1, 1), 0.0) == "hi"
    assert len(reassembler) == 0


def test_reassembler_out_of_order_and_duplicates():
    reassembler = Reassembler()
    assert reassembler.add(KEY, Segment("c", 9, 3, 3), 0.0) is None
    assert reassembler.add(KEY, Segment("x", 9, 3, 1), 1.0) is None
    assert reassembler.add(KEY, Segment("a", 9, 3, 1), 2.0) is None  # replaces "x"
    assert len(reassembler) == 1
    assert reassembler.add(KEY, Segment("b", 9, 3, 2), 3.0) == "abc"
    assert len(reassembler) == 0


def test_reassembler_same_reference_different_keys():
    reassembler = Reassembler()
    other = ("+15550003", "+15550002")
    assert reassembler.add(KEY, Segment("one-", 1, 2, 1), 0.0) is None
    assert reassembler.add(other, Segment("two-", 1, 2, 1), 0.0) is None
    assert reassembler.add(KEY, Segment("a", 1, 3, 1), 0.0) is None  # same reference, other total
    assert len(reassembler) == 3
    assert reassembler.add(other, Segment("B", 1, 2, 2), 0.0) == "two-B"
    assert reassembler.add(KEY, Segment("A", 1, 2, 2), 0.0) == "one-A"
    assert len(reassembler) == 1


def test_reassembler_expiry():
    reassembler = Reassembler(timeout=300.0)
    reassembler.add(KEY, Segment("c", 4, 3, 3), 0.0)
    reassembler.add(KEY, Segment("a", 4, 3, 1), 100.0)
    reassembler.add(("k",), Segment("z", 4, 2, 1), 200.0)
    assert reassembler.expire(299.0) == []
    assert reassembler.expire(301.0) == [(KEY, "ac")]
    assert len(reassembler) == 1
    assert reassembler.expire(1000.0) == [(("k",), "z")]
    assert len(reassembler) == 0


def test_reassembler_joins_a_surrogate_pair_split_by_the_sender():
    first = decode_message(h("05 00 03 01 02 01 00 41 d8 3d"), data_coding=8, esm_class=0x40)
    second = decode_message(h("05 00 03 01 02 02 de 00 00 42"), data_coding=8, esm_class=0x40)
    reassembler = Reassembler()
    assert reassembler.add(KEY, second, 0.0) is None
    assert reassembler.add(KEY, first, 0.0) == "A😀B"
    reassembler.add(KEY, first, 0.0)
    assert reassembler.expire(1e9) == [(KEY, "A\ufffd")]
