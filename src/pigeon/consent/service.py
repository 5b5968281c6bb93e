"""Plain functions over a session: acting on a keyword, and the opt-outs a send must obey.

A scope is where an opt-out holds: ``number:+E164`` for a number of Pigeon's (the one texted,
the one a message goes out from), ``account:ID`` for an account's messages that go out from no
number of its own (a STOP to a number Pigeon does not own reaches the account by the fallback
route). Consent policies, covering several numbers, come next as ``policy:ID``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pigeon.consent import keywords
from pigeon.consent.keywords import Action
from pigeon.consent.models import KeywordEvent, OptOut
from pigeon.db import bulk


def scope(account_id: int, number: str | None) -> str:
    """The scope of a message from (or to) ``number`` of the account, or from none of its own."""
    return f"number:{number}" if number else f"account:{account_id}"


@dataclass(frozen=True, slots=True)
class Acted:
    """A keyword acted on: what it did, and the text that answers it."""

    keyword: str
    action: Action
    answer: str


def act(session: Session, account_id: int, number: str | None, phone: str, text: str, now: dt.datetime,
        message_id: str | None = None) -> Acted | None:
    """If ``text`` from ``phone`` to ``number`` (the account's, or None) is a keyword, act on it
    and keep the event; None when it is not one."""
    word = keywords.keyword(text)
    if word is None:
        return None
    action, where = keywords.action(word), scope(account_id, number)
    if action == Action.OPT_OUT:
        if session.get(OptOut, (where, phone)) is None:
            session.add(OptOut(scope=where, phone=phone, keyword=word, at=now))
    elif action == Action.OPT_IN:
        session.execute(delete(OptOut).where(OptOut.scope == where, OptOut.phone == phone))
    session.add(KeywordEvent(account_id=account_id, scope=where, phone=phone, number=number, keyword=word,
                             action=action.value, message_id=message_id, at=now))
    session.flush()
    return Acted(word, action, keywords.TEXTS[action])


def opted_out(session: Session, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (scope, phone) pairs have opted out: one read through the driver (the hot path)."""
    wanted = sorted(set(pairs))
    if not wanted:
        return set()
    scopes, phones = sorted({s for s, _ in wanted}), sorted({p for _, p in wanted})
    rows = bulk.fetch(session, f"SELECT scope, phone FROM opt_outs WHERE scope IN ({', '.join('?' * len(scopes))}) "
                               f"AND phone IN ({', '.join('?' * len(phones))})", [*scopes, *phones])
    return {(s, p) for s, p in rows} & set(wanted)


def events(session: Session, account_id: int, limit: int = 100) -> list[KeywordEvent]:
    """The account's keyword events, newest first."""
    return list(session.scalars(select(KeywordEvent).where(KeywordEvent.account_id == account_id)
                                .order_by(KeywordEvent.at.desc(), KeywordEvent.id.desc()).limit(limit)))
