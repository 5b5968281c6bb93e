"""The Zoom Connect webhook checksum, as ../shared/spec/README.md settles it.

Every parameter sent except ``checksum``, nulls left out, each written ``key=value`` with the
value unencoded, sorted by key, joined with ``&``; the checksum is the HMAC-SHA1 hex digest of
that string keyed with the user's shared secret. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

CHECKSUM = "checksum"


def canonical(params: Mapping[str, str | None]) -> str:
    """The string that is signed: ``k1=v1&k2=v2`` over the non-null parameters, by key."""
    items = sorted((k, v) for k, v in params.items() if k != CHECKSUM and v is not None)
    return "&".join(f"{key}={value}" for key, value in items)


def checksum(params: Mapping[str, str | None], secret: str) -> str:
    return hmac.new(secret.encode(), canonical(params).encode(), hashlib.sha1).hexdigest()


def sign(params: Mapping[str, str | None], secret: str) -> dict[str, str]:
    """The parameters to send: the non-null ones, and their checksum."""
    sent = {k: v for k, v in params.items() if v is not None and k != CHECKSUM}
    sent[CHECKSUM] = checksum(sent, secret)
    return sent


def verify(params: Mapping[str, str | None], secret: str) -> bool:
    """Whether ``params`` (as received, decoded) carry the checksum ``secret`` gives them."""
    received = params.get(CHECKSUM)
    if not received:
        return False
    return hmac.compare_digest(checksum(params, secret).encode(), received.lower().encode())
