"""An inbound SMS becomes an INBOUND message of the user who last texted that number."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from pigeon import hooks
from pigeon.carriers.base import InboundSms
from pigeon.errors import Invalid
from pigeon.ids import new_id
from pigeon.messages.models import Direction, Message, Status
from pigeon.messages.service import last_sent_to
from pigeon.phone import normalise
from pigeon.text import analyse

log = logging.getLogger(__name__)


def receive(
    session: Session, sms: InboundSms, now: dt.datetime, default_region: str, timezone: str = "UTC"
) -> Message | None:
    """Store an inbound message for its user, and tell ``pigeon.hooks.received`` in the same
    transaction (webhooks queue it for the user's reply URL); None (and a log line) when nobody owns it. ``timezone`` is the one the
    webhook's ``date`` is written in."""
    try:
        sender = normalise(sms.sender, default_region).e164
    except Invalid:
        sender = sms.sender
    answered = last_sent_to(session, sender)
    if answered is None:
        log.warning("inbound message from %s to %s matches no user; dropped", sender, sms.to)
        return None
    analysis = analyse(sms.body)
    message = Message(
        id=new_id(),
        account_id=answered.account_id,
        user_id=answered.user_id,
        direction=Direction.INBOUND,
        status=Status.DELIVERED,
        from_number=sender,
        to_number=sms.to or answered.from_number or "",
        body=sms.body,
        encoding=analysis.encoding,
        parts=max(1, analysis.parts),
        credit_cost=0,
        campaign=answered.campaign,
        data_field=answered.data_field,
        created_at=now,
        received_at=sms.at or now,
        read=False,
        deleted=False,
        replied_to_id=answered.id,
        carrier=sms.carrier,
    )
    session.add(message)
    session.flush()
    hooks.received(session, message, now, timezone)
    return message
