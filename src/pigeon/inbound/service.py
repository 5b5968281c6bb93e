"""An inbound SMS becomes an INBOUND message of the account that owns the number it came to (of
the number's user, else the account's administrator), linked to the account's last message to
the sender. For a number Pigeon does not own, of the user who last texted the sender. An MMS's
files are stored as that account's media and attached to it."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from pigeon import hooks
from pigeon.accounts import service as accounts
from pigeon.carriers.base import InboundSms
from pigeon.errors import Invalid
from pigeon.ids import new_id
from pigeon.media import service as media
from pigeon.messages.models import Direction, Message, Status
from pigeon.messages.service import last_sent_to
from pigeon.numbers import service as numbers
from pigeon.phone import normalise, region_of
from pigeon.text import analyse

log = logging.getLogger(__name__)


def _stored(number: str | None, region: str) -> str | None:
    """A number as messages keep it: E.164 when it is a phone number, else as given."""
    if not number:
        return None
    try:
        return normalise(number, region).e164
    except Invalid:
        return number.strip()


def receive(
    session: Session, sms: InboundSms, now: dt.datetime, default_region: str, timezone: str = "UTC"
) -> Message | None:
    """Store an inbound message for its user, and tell ``pigeon.hooks.received`` in the same
    transaction (webhooks queue it for the user's reply URL); None (and a log line) when nobody owns it. ``timezone`` is the one the
    webhook's ``date`` is written in. Its media (an MMS's) are kept in the same transaction,
    unchecked: the phone network carried them."""
    try:
        sender = normalise(sms.sender, default_region).e164
    except Invalid:
        sender = sms.sender
    owner = numbers.owner_of(session, sms.to, default_region) if sms.to else None
    to = owner.number if owner is not None else _stored(sms.to, default_region)
    if owner is not None:
        answered = last_sent_to(session, sender, owner.account_id)
        account_id, user_id = owner.account_id, owner.user_id or accounts.administrator(session, owner.account_id)
    else:
        answered = last_sent_to(session, sender)
        account_id, user_id = (answered.account_id, answered.user_id) if answered is not None else (None, None)
    if account_id is None or user_id is None:
        log.warning("inbound message from %s to %s matches no user; dropped", sender, sms.to)
        return None
    analysis = analyse(sms.body)
    message = Message(
        id=new_id(),
        account_id=account_id,
        user_id=user_id,
        direction=Direction.INBOUND,
        status=Status.DELIVERED,
        from_number=sender,
        to_number=to or (answered.from_number if answered is not None else None) or "",
        body=sms.body,
        encoding=analysis.encoding,
        parts=max(1, analysis.parts),
        credit_cost=0,
        campaign=answered.campaign if answered is not None else None,
        data_field=answered.data_field if answered is not None else None,
        created_at=now,
        received_at=sms.at or now,
        read=False,
        deleted=False,
        replied_to_id=answered.id if answered is not None else None,
        carrier=sms.carrier,
        mms=True if sms.media else None,
        region=region_of(sender),
    )
    session.add(message)
    session.flush()
    if sms.media:
        stored = media.store(session, account_id, [media.Upload(m.file_name, m.content_type, m.data)
                                                   for m in sms.media], now)
        media.attach(session, [message.id], [m.id for m in stored])
    hooks.received(session, message, now, timezone)
    return message
