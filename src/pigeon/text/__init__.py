"""SMS text handling: the GSM 03.38 alphabet, encoding choice and splitting.

Pure functions, standard library only, no I/O.
"""

from .gsm import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    decode_gsm7,
    encode_gsm7,
    gsm7_septets,
    is_gsm7,
    pack_septets,
    unpack_septets,
)
from .segment import (
    BINARY,
    GSM7,
    GSM7_CONCAT_LIMIT,
    GSM7_SINGLE_LIMIT,
    UCS2,
    UCS2_CONCAT_LIMIT,
    UCS2_SINGLE_LIMIT,
    Analysis,
    analyse,
    analyse_as,
    character_analysis,
    split,
)

__all__ = [
    "BINARY",
    "GSM7",
    "GSM7_BASIC",
    "GSM7_CONCAT_LIMIT",
    "GSM7_EXTENDED",
    "GSM7_SINGLE_LIMIT",
    "UCS2",
    "UCS2_CONCAT_LIMIT",
    "UCS2_SINGLE_LIMIT",
    "Analysis",
    "analyse",
    "analyse_as",
    "character_analysis",
    "decode_gsm7",
    "encode_gsm7",
    "gsm7_septets",
    "is_gsm7",
    "pack_septets",
    "split",
    "unpack_septets",
]
