"""Answering a keyword: an inbound STOP, START or HELP acts on the sender's consent
(``pigeon.consent``) and is answered once, from the number it came to, uncharged.

Subscribed to inbound messages by ``pigeon.wiring``, so it runs in the transaction that stores
the message, whichever carrier or command brought it. The answer is queued like any message
(``sending.accept``), marked as a keyword's answer so that a STOP's confirmation goes out
although the phone has just opted out. A number that cannot send SMS answers nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from pigeon.accounts.service import Principal
from pigeon.consent import service as consent
from pigeon.errors import PigeonError
from pigeon.ids import new_id
from pigeon.messages.models import Message
from pigeon.numbers import service as numbers
from pigeon.sending.service import Outgoing, accept
from pigeon.text import analyse

log = logging.getLogger(__name__)


def on_received(session: Session, message: Message, now: dt.datetime, zone: str) -> None:
    """Act on ``message`` if it is a keyword, and queue its answer."""
    row = numbers.find(session, message.to_number) if message.to_number else None
    mine = row is not None and row.account_id == message.account_id
    number, policy = (row.number, row.consent_policy_id) if mine else (None, None)
    acted = consent.act(session, message.account_id, number, message.from_number, message.body, now, message.id,
                        policy)
    if acted is None:
        return
    analysis = analyse(acted.answer)
    answer = Outgoing(id=new_id(), to=message.from_number, body=acted.answer, encoding=analysis.encoding,
                      parts=analysis.parts, cost=0, sender=number, answers_keyword=True)
    try:
        with session.begin_nested():
            accept(session, Principal(message.user_id, message.account_id, "", False), [answer], now, origin="keyword")
    except PigeonError as exc:
        log.warning("%s from %s acted on, but not answered: %s", acted.keyword, message.from_number, exc.detail)
