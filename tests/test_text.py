"""Vector tests for pigeon.text (GSM 03.38 codec and SMS segmentation)."""

import dataclasses
import random

import pytest

from pigeon.text import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENDED,
    UCS2,
    Analysis,
    analyse,
    character_analysis,
    decode_gsm7,
    encode_gsm7,
    gsm7_septets,
    is_gsm7,
    pack_septets,
    split,
    unpack_septets,
)

# 3GPP TS 23.038 §6.2.1 basic table as Unicode code points, written out
# independently of the implementation (None marks ESC at 0x1B).
SPEC_BASIC = {
    0x00: 0x0040, 0x01: 0x00A3, 0x02: 0x0024, 0x03: 0x00A5,
    0x04: 0x00E8, 0x05: 0x00E9, 0x06: 0x00F9, 0x07: 0x00EC,
    0x08: 0x00F2, 0x09: 0x00C7, 0x0A: 0x000A, 0x0B: 0x00D8,
    0x0C: 0x00F8, 0x0D: 0x000D, 0x0E: 0x00C5, 0x0F: 0x00E5,
    0x10: 0x0394, 0x11: 0x005F, 0x12: 0x03A6, 0x13: 0x0393,
    0x14: 0x039B, 0x15: 0x03A9, 0x16: 0x03A0, 0x17: 0x03A8,
    0x18: 0x03A3, 0x19: 0x0398, 0x1A: 0x039E, 0x1B: None,
    0x1C: 0x00C6, 0x1D: 0x00E6, 0x1E: 0x00DF, 0x1F: 0x00C9,
    0x24: 0x00A4, 0x40: 0x00A1,
    0x5B: 0x00C4, 0x5C: 0x00D6, 0x5D: 0x00D1, 0x5E: 0x00DC, 0x5F: 0x00A7,
    0x60: 0x00BF,
    0x7B: 0x00E4, 0x7C: 0x00F6, 0x7D: 0x00F1, 0x7E: 0x00FC, 0x7F: 0x00E0,
}
for _code in range(0x20, 0x80):  # everything else in 0x20-0x7F is ASCII
    SPEC_BASIC.setdefault(_code, _code)

SPEC_EXTENSION = {
    0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
    0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
}

BASIC_CHARS = {code: chr(cp) for code, cp in SPEC_BASIC.items() if cp is not None}


# --- alphabet -------------------------------------------------------------


def test_tables_match_spec():
    assert len(SPEC_BASIC) == 128
    assert GSM7_BASIC == frozenset(BASIC_CHARS.values())
    assert len(GSM7_BASIC) == 127
    assert GSM7_EXTENDED == frozenset(SPEC_EXTENSION.values())
    assert not GSM7_BASIC & GSM7_EXTENDED
    assert "\x1b" not in GSM7_BASIC and "\x1b" not in GSM7_EXTENDED


@pytest.mark.parametrize("code, char", sorted(BASIC_CHARS.items()))
def test_encode_basic_positions(code, char):
    assert encode_gsm7(char) == bytes([code])
    assert decode_gsm7(bytes([code])) == char
    assert gsm7_septets(char) == 1


@pytest.mark.parametrize("code, char", sorted(SPEC_EXTENSION.items()))
def test_encode_extension_positions(code, char):
    assert encode_gsm7(char) == bytes([0x1B, code])
    assert decode_gsm7(bytes([0x1B, code])) == char
    assert gsm7_septets(char) == 2


def test_named_positions():
    assert encode_gsm7("@£$Ç\n\rÄ¤§¿à") == bytes(
        [0x00, 0x01, 0x02, 0x09, 0x0A, 0x0D, 0x5B, 0x24, 0x5F, 0x60, 0x7F]
    )


def test_round_trip_whole_tables():
    text = "".join(BASIC_CHARS[c] for c in sorted(BASIC_CHARS))
    text += "".join(SPEC_EXTENSION[c] for c in sorted(SPEC_EXTENSION))
    encoded = encode_gsm7(text)
    assert len(encoded) == gsm7_septets(text) == 127 + 2 * 10
    assert decode_gsm7(encoded) == text
    assert is_gsm7(text)


def test_at_sign_is_zero_and_round_trips():
    assert encode_gsm7("@@") == b"\x00\x00"
    assert decode_gsm7(b"\x00") == "@"
    assert decode_gsm7(pack_septets(encode_gsm7("@"))) == "@"


def test_crlf():
    assert encode_gsm7("a\r\nb") == b"\x61\x0d\x0a\x62"
    assert decode_gsm7(b"\x61\x0d\x0a\x62") == "a\r\nb"


def test_is_gsm7():
    assert is_gsm7("")
    assert is_gsm7("Hello {world} €5 [ok] ~|^\\")
    assert not is_gsm7("ç")  # only capital Ç is at 0x09
    assert not is_gsm7("`")
    assert not is_gsm7("\x1b")  # ESC is a code, not a character
    assert not is_gsm7("\t")
    assert not is_gsm7("ж")


def test_encode_rejects_with_character_and_index():
    with pytest.raises(ValueError, match=r"'ж'.*index 3"):
        encode_gsm7("abcжd`")
    with pytest.raises(ValueError, match=r"'`'.*index 0"):
        encode_gsm7("`")
    with pytest.raises(ValueError, match="index 1"):
        encode_gsm7("a\x1b")


def test_decode_escape_fallbacks():
    # ESC + code without an extension character: basic-table character.
    assert decode_gsm7(b"\x1b\x41") == "A"
    assert decode_gsm7(b"\x1b\x00") == "@"
    assert decode_gsm7(b"\x1b\x0d") == "\r"  # CR2 falls back to CR
    # ESC ESC (reserved for another extension table): one space.
    assert decode_gsm7(b"\x1b\x1b\x41") == " A"
    # Trailing lone ESC: a space.
    assert decode_gsm7(b"\x1b") == " "
    assert decode_gsm7(b"ab\x1b") == "ab "
    assert decode_gsm7(b"") == ""


def test_decode_rejects_non_septets():
    with pytest.raises(ValueError, match="index 1"):
        decode_gsm7(b"\x41\x80")


# --- packing --------------------------------------------------------------


def reference_pack(septets, fill_bits=0):
    value = sum(s << (fill_bits + 7 * i) for i, s in enumerate(septets))
    return value.to_bytes((fill_bits + 7 * len(septets) + 7) // 8, "little")


def test_pack_classic_vector():
    septets = encode_gsm7("hellohello")
    packed = pack_septets(septets)
    assert packed == bytes.fromhex("E8329BFD4697D9EC37")
    assert unpack_septets(packed, 10) == septets
    assert decode_gsm7(unpack_septets(packed, 10)) == "hellohello"


def test_pack_known_short_vectors():
    assert pack_septets(b"") == b""
    assert pack_septets(encode_gsm7("A")) == b"\x41"
    assert pack_septets(encode_gsm7("AB")) == b"\x41\x21"
    assert pack_septets(encode_gsm7("@"), fill_bits=1) == b"\x00"
    assert pack_septets(b"\x7f", fill_bits=1) == b"\xfe"
    assert pack_septets(b"\x7f", fill_bits=2) == b"\xfc\x01"


@pytest.mark.parametrize("fill_bits", range(7))
@pytest.mark.parametrize("length", range(1, 21))
def test_pack_round_trip(length, fill_bits):
    rng = random.Random(length * 7 + fill_bits)
    septets = bytes(rng.randrange(128) for _ in range(length))
    packed = pack_septets(septets, fill_bits)
    assert packed == reference_pack(septets, fill_bits)
    assert len(packed) == (fill_bits + 7 * length + 7) // 8
    assert packed[0] & ((1 << fill_bits) - 1) == 0  # fill bits are zero
    assert unpack_septets(packed, length, fill_bits) == septets


def test_pack_all_ones_and_all_septet_values():
    septets = bytes(range(128))
    for fill_bits in range(7):
        packed = pack_septets(septets, fill_bits)
        assert unpack_septets(packed, 128, fill_bits) == septets


def test_pack_and_unpack_reject_bad_input():
    with pytest.raises(ValueError):
        pack_septets(b"\x80")
    with pytest.raises(ValueError):
        pack_septets(b"a", fill_bits=7)
    with pytest.raises(ValueError):
        unpack_septets(b"\x00", 1, fill_bits=-1)
    with pytest.raises(ValueError):
        unpack_septets(bytes.fromhex("E8329BFD4697D9EC37"), 11)
    with pytest.raises(ValueError):
        unpack_septets(b"\x00", 1, fill_bits=2)  # 9 bits needed, 8 given
    assert unpack_septets(b"\x00", 1, fill_bits=1) == b"\x00"


# --- analysis and splitting -----------------------------------------------


def check(text, encoding, length, part_sizes):
    """Check analyse and split; part_sizes are code-point counts per part."""
    result = analyse(text)
    assert result == Analysis(encoding, length, len(part_sizes), len(text))
    parts = split(text)
    assert [len(p) for p in parts] == part_sizes
    assert "".join(parts) == text
    return parts


def test_empty():
    check("", GSM7, 0, [])


def test_gsm7_single_and_concatenated():
    check("a" * 160, GSM7, 160, [160])
    check("a" * 161, GSM7, 161, [153, 8])
    check("a" * 306, GSM7, 306, [153, 153])
    check("a" * 307, GSM7, 307, [153, 153, 1])


def test_gsm7_extension_counts_two():
    assert analyse("€") == Analysis(GSM7, 2, 1, 1)
    check("a" * 158 + "€", GSM7, 160, [159])
    check("a" * 159 + "€", GSM7, 161, [153, 7])


def test_escape_pair_never_straddles_boundary():
    parts = check("a" * 152 + "€" + "b" * 10, GSM7, 164, [152, 11])
    assert parts[0] == "a" * 152
    assert parts[1].startswith("€")

    # 153 septets then an escape pair: the pair opens part 2. (153 x 'a' +
    # '€' alone is 155 septets and fits in one 160-septet message.)
    check("a" * 153 + "€", GSM7, 155, [154])
    parts = check("a" * 153 + "€" + "b" * 6, GSM7, 161, [153, 7])
    assert parts[1] == "€" + "b" * 6

    # An escape pair that fits exactly is kept in the first part.
    parts = check("a" * 151 + "€" + "b" * 10, GSM7, 163, [152, 10])
    assert parts[0].endswith("€")


def test_escape_pairs_can_add_a_part():
    # 153 x '€' = 306 septets, but only 76 fit per 153-septet part.
    check("€" * 153, GSM7, 306, [76, 76, 1])


def test_single_characters():
    assert analyse("Ç") == Analysis(GSM7, 1, 1, 1)
    assert analyse("é") == Analysis(GSM7, 1, 1, 1)  # basic table 0x05
    assert analyse("ç").encoding == UCS2
    assert analyse("`") == Analysis(UCS2, 1, 1, 1)
    assert analyse("\r\n") == Analysis(GSM7, 2, 1, 2)


def test_ucs2_single_and_concatenated():
    check("ж" * 70, UCS2, 70, [70])
    check("ж" * 71, UCS2, 71, [67, 4])
    check("ś" * 134, UCS2, 134, [67, 67])


def test_one_non_gsm_character_switches_everything_to_ucs2():
    check("a" * 100 + "ж", UCS2, 101, [67, 34])
    check("€" * 10 + "ж", UCS2, 11, [11])  # '€' is one UTF-16 unit


def test_surrogate_pair_never_split():
    # 66 x 'ж' + '😀' alone is 68 units: one 70-unit message.
    check("ж" * 66 + "😀", UCS2, 68, [67])
    # Multi-part: 1 unit is left in part 1 of 67, so the emoji goes to part 2.
    parts = check("ж" * 66 + "😀" + "ж" * 3, UCS2, 71, [66, 4])
    assert parts[1] == "😀жжж"
    check("😀" * 35, UCS2, 70, [35])
    parts = check("😀" * 36, UCS2, 72, [33, 3])
    assert parts == ["😀" * 33, "😀" * 3]
    check("😀" * 67, UCS2, 134, [33, 33, 1])


def test_lone_surrogate_counts_one_unit():
    assert analyse("\ud83d") == Analysis(UCS2, 1, 1, 1)


def mixed_texts():
    rng = random.Random(23038)
    pools = [
        "ab €{}",
        "abc€",
        "€",
        "a€",
        "abж😀",
        "😀ж",
        "😀",
        "ж€a{",
    ]
    for pool in pools:
        for length in (0, 1, 66, 67, 68, 69, 70, 71, 76, 77, 152, 153, 154, 160, 161, 400):
            yield "".join(rng.choice(pool) for _ in range(length))


@pytest.mark.parametrize("text", list(mixed_texts()))
def test_split_properties(text):
    result = analyse(text)
    parts = split(text)
    assert "".join(parts) == text
    assert len(parts) == result.parts
    assert result.characters == len(text)
    units = gsm7_septets if result.encoding == GSM7 else (
        lambda s: len(s.encode("utf-16-le")) // 2
    )
    assert result.length == units(text)
    limit = {GSM7: (160, 153), UCS2: (70, 67)}[result.encoding]
    if len(parts) <= 1:
        assert result.length <= limit[0]
    else:
        assert result.length > limit[0]
        for i, part in enumerate(parts):
            assert 0 < units(part) <= limit[1]
            if i + 1 < len(parts):  # greedy: the next character did not fit
                assert units(part + parts[i + 1][0]) > limit[1]


def test_analysis_is_frozen_and_slotted():
    result = analyse("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.parts = 2
    assert not hasattr(result, "__dict__")


def test_character_analysis():
    assert character_analysis("aa€ж😀a\n`") == [
        ["a", 3, "GSM7"],
        ["€", 1, "GSM7_EXTENDED"],
        ["ж", 1, "UCS2"],
        ["😀", 1, "UCS2"],
        ["\n", 1, "GSM7"],
        ["`", 1, "UCS2"],
    ]
    assert character_analysis("") == []
