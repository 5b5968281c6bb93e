"""A message's statuses and the changes between them, as data (h11's ``_state.py`` is the
model): every allowed change is a row of ``TRANSITIONS``; a status with no way out is final.

Pure: no I/O, no database. ``pigeon.delivery.statuses`` is the only writer of a message's
status and performs only these changes; carriers name a receipt's status from ``Status``.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """The Zoom Connect statuses, which every dialect maps from."""

    SCHEDULED = "SCHEDULED"  # accepted, waiting in the outbound queue
    SENT = "SENT"  # the carrier took it; no receipt yet
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    FAILED_REFUNDED = "FAILED_REFUNDED"  # failed, and its credits went back
    FAILED_OPTOUT = "FAILED_OPTOUT"
    UNKNOWN = "UNKNOWN"  # the carrier could not tell


class Change(StrEnum):
    """What happens to a message, each the cause of one transition."""

    SEND = "send"  # the carrier took it
    REFUSE = "refuse"  # refused, out of attempts, or cancelled before it went: failed, credits returned
    LOSE = "lose"  # in doubt, or set aside after the carrier may have taken it: unknown, still charged
    DELIVER = "deliver"  # a receipt (or all of its parts' receipts) said delivered, or could not tell
    FAIL = "fail"  # a receipt (or one part's) said undelivered: failed, credits returned
    OPT_OUT = "opt_out"  # its recipient opted out while it waited: never sent, credits returned


S = Status
TRANSITIONS: dict[Status, dict[Change, frozenset[Status]]] = {
    S.SCHEDULED: {
        Change.SEND: frozenset({S.SENT}),
        Change.REFUSE: frozenset({S.FAILED_REFUNDED}),
        Change.LOSE: frozenset({S.UNKNOWN}),
        Change.OPT_OUT: frozenset({S.FAILED_OPTOUT}),
    },
    S.SENT: {
        Change.DELIVER: frozenset({S.DELIVERED, S.UNKNOWN}),
        Change.FAIL: frozenset({S.FAILED_REFUNDED}),
    },
    S.DELIVERED: {},
    S.FAILED: {},
    S.FAILED_REFUNDED: {},
    S.FAILED_OPTOUT: {},
    S.UNKNOWN: {},
}
"""From each status, the changes it allows and the statuses each may lead to."""

FINAL = frozenset(status for status, changes in TRANSITIONS.items() if not changes)
"""Statuses nothing changes any more: a delivery report is due when a message reaches one."""
INITIAL = S.SCHEDULED  # an outbound message as it is accepted; an inbound one is stored DELIVERED
OPTED_OUT = S.FAILED_OPTOUT  # to a phone that opted out: final from the start (never queued), or on its claim


class IllegalChange(ValueError):
    pass


def source(change: Change, to: Status) -> Status:
    """The one status ``change`` may turn into ``to``: the from-status its SQL is conditional
    on. IllegalChange if the table has no such transition."""
    found = [frm for frm, changes in TRANSITIONS.items() if to in changes.get(change, ())]
    if len(found) != 1:
        raise IllegalChange(f"{change} to {to}: {'no' if not found else 'more than one'} transition")
    return found[0]


def allowed(frm: Status, change: Change, to: Status) -> bool:
    return to in TRANSITIONS[frm].get(change, ())
