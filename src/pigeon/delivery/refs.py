"""Carrier references as stored: whatever a carrier sends, in a column of bounded size.

SMPP message ids are at most 64 characters, but a carrier may send more. A longer reference
is kept as its first characters and a digest of the whole, so that it still fits, still
matches its receipt (the same function is applied to both), and two long references that
share their first characters stay apart.
"""

from __future__ import annotations

import hashlib

SIZE = 64  # messages.carrier_ref and message_parts.carrier_ref
_HEAD = SIZE - 17


def stored_ref(ref: str) -> str:
    if "\x00" in ref:  # no database text holds a NUL
        ref = ref.replace("\x00", "")
    if len(ref) <= SIZE:
        return ref
    return ref[:_HEAD] + "~" + hashlib.sha256(ref.encode("utf-8", "surrogatepass")).hexdigest()[:16]
