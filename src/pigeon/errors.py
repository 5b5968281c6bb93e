"""The kinds of error the core raises. Each dialect answers them in its own format, from one
table (``pigeon.api.<dialect>.errors``); no domain knows any dialect's codes.

An error carries a sentence a person can act on (``detail``) and, where a dialect tells such
failures apart, a finer ``reason``: an invalid number, an empty or too long message, a bad date.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Kind(StrEnum):
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    UNAVAILABLE = "unavailable"
    TOO_MANY = "too_many"


class Reason(StrEnum):
    """What, more precisely, was wrong; a dialect without a code for it answers the kind's."""

    INVALID_NUMBER = "invalid_number"
    EMPTY_MESSAGE = "empty_message"
    TOO_LONG = "too_long"
    INVALID_DATE = "invalid_date"
    KEY_REUSED = "key_reused"  # an idempotency key sent again with another request
    PAGE_TOKEN = "page_token"  # a next-page token forged, or older than it may be
    UNKNOWN_ITEM = "unknown_item"  # an item of a list the request names does not exist
    CAPACITY = "capacity"  # a campaign (or another container) holds no more
    TOO_MANY_ITEMS = "too_many_items"  # a request names more items than one request may
    ITEMS_FAILED = "items_failed"  # some of a list's items were refused (each one's reason is in the detail)
    NO_CARRIER = "no_carrier"  # the request is a peering provider's, and it speaks for no known carrier
    NO_ITEMS = "no_items"  # a request that must name items names none
    UNKNOWN_SENDER = "unknown_sender"  # the sender named is not one of the account's numbers that can send
    OPTED_OUT = "opted_out"  # the recipient opted out of messages from this sender
    MEDIA = "media"  # a media file refused: its type, its size, or how many there are
    NO_MMS_CARRIER = "no_mms_carrier"  # MMS asked for, and no carrier Pigeon has can carry it
    BAD_SCHEDULE = "bad_schedule"  # a scheduled time or time zone that cannot be read


class PigeonError(Exception):
    """A request the core refuses, of one ``kind``."""

    kind: ClassVar[Kind]

    def __init__(self, detail: str, reason: Reason | None = None, subject: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.reason = reason
        self.subject = subject  # what the error is about ("consent policy"), where a dialect's codes differ by it

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r}, reason={self.reason})"


class Invalid(PigeonError):
    """The request's values break a rule; sending it again unchanged fails again."""

    kind = Kind.INVALID


class NotFound(PigeonError):
    """What the request names does not exist for the caller (another tenant's records included)."""

    kind = Kind.NOT_FOUND


class Conflict(PigeonError):
    """The request clashes with what exists: a name taken, a key used for something else."""

    kind = Kind.CONFLICT


class Forbidden(PigeonError):
    """The caller exists and may see the thing, but may not do this to it."""

    kind = Kind.FORBIDDEN


class InsufficientCredits(PigeonError):
    """The balance does not cover the request; nothing was charged."""

    kind = Kind.INSUFFICIENT_CREDITS


class Unavailable(PigeonError):
    """A part Pigeon needs is down; the same request may succeed later."""

    kind = Kind.UNAVAILABLE


class TooMany(PigeonError):
    """Too many requests; ``retry_after`` seconds until the next may pass."""

    kind = Kind.TOO_MANY

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after
