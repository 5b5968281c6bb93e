"""Pigeon's records as Zoom Connect's WebService* objects."""

from __future__ import annotations

import datetime as dt

from pigeon.accounts.service import from_milli
from pigeon.messages.models import Message


def timestamp(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def message(m: Message, contact_id: str | None = None) -> dict:
    """WebServiceMessage; ``contact_id`` is the user's contact the message went to or came from."""
    return {
        "messageId": m.id,
        "messageType": m.direction,
        "messageStatus": m.status,
        "fromNumber": m.from_number,
        "toNumber": m.to_number,
        "message": m.body,
        "campaign": m.campaign,
        "userDataField": m.data_field,
        "creditCost": from_milli(m.credit_cost),
        "numberOfMessages": m.parts,
        "dateTimeScheduled": timestamp(m.scheduled_for),
        "dateTimeSent": timestamp(m.sent_at),
        "dateTimeReceived": timestamp(m.received_at),
        "read": m.read,
        "deleted": m.deleted,
        "contact": {"contactId": contact_id, "links": []} if contact_id else None,
        "repliedToMessage": {"messageId": m.replied_to_id, "links": []} if m.replied_to_id else None,
        "links": [],
    }
