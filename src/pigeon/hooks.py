"""Who hears of what a lower layer did: a registry of subscribers, filled by the runtime.

The writer of a message's status (``pigeon.delivery.statuses``) and of an inbound message
(``pigeon.inbound``) call ``finished`` and ``received`` inside their transaction; the
subscribers (webhooks today) write their reactions in that same transaction. The lower layer
never imports its subscribers: ``pigeon.wiring.install`` registers them, and every process
that writes (``pigeon.runtime``, ``pigeon.cli``, the tests' conftest) installs it. A change
made with nobody installed raises, rather than losing its reactions in silence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

Finished = Callable[[Any, Sequence[str], dt.datetime], object]
"""(session, ids of messages that became final, now)"""
Received = Callable[[Any, Any, dt.datetime, str], object]
"""(session, the inbound message stored, now, the time zone its reactions are written in)"""
Sent = Callable[[Any, Sequence[str], dt.datetime], object]
"""(session, ids of messages a carrier took, now)"""

_finished: list[Finished] = []
_sent: list[Sent] = []
_received: list[Received] = []
_installed: list[str] = []  # who installed subscribers (empty: nobody, an error to write)
QUEUED = "pigeon.webhook_events"  # the session.info key counting the reactions it queued


class NotInstalled(RuntimeError):
    pass


def install(by: str, *, finished: Sequence[Finished] = (), received: Sequence[Received] = (),
            sent: Sequence[Sent] = ()) -> None:
    """Register subscribers, once per installer (a second call by the same one does nothing)."""
    if by in _installed:
        return
    _finished.extend(finished)
    _sent.extend(sent)
    _received.extend(received)
    _installed.append(by)


def _check() -> None:
    if not _installed:
        raise NotInstalled("a message changed with no subscribers installed: call pigeon.wiring.install() "
                           "(pigeon.runtime and pigeon.cli do)")


def finished(session: Any, message_ids: Sequence[str], now: dt.datetime) -> None:
    """Messages became final (in ``session``'s transaction)."""
    _check()
    for subscriber in _finished:
        subscriber(session, message_ids, now)


def sent(session: Any, message_ids: Sequence[str], now: dt.datetime) -> None:
    """A carrier took these messages (SCHEDULED -> SENT, in ``session``'s transaction)."""
    _check()
    for subscriber in _sent:
        subscriber(session, message_ids, now)


def received(session: Any, message: Any, now: dt.datetime, zone: str) -> None:
    """An inbound message was stored (in ``session``'s transaction)."""
    _check()
    for subscriber in _received:
        subscriber(session, message, now, zone)


def count_queued(session: Any, count: int) -> None:
    """A subscriber queued ``count`` reactions for someone to send (a webhook dispatcher)."""
    session.info[QUEUED] = session.info.get(QUEUED, 0) + count


def queued(session: Any) -> int:
    """How many reactions this session's subscribers queued (so a writer wakes whoever sends
    them only when there is something to send)."""
    return session.info.get(QUEUED, 0)
