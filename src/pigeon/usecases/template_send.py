"""Sending a template to one recipient, filled from their contact: ``POST /sms/send-template``.

The edge finds the template, and the contact when one is named; given a number instead, the
user's contact with that number (if any) fills the placeholders.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from pigeon.contacts import service as contacts
from pigeon.contacts.models import Contact
from pigeon.sending.service import Outgoing, Sender
from pigeon.templates import service as templates
from pigeon.templates.models import Template


def prepare(
    session: Session,
    sender: Sender,
    template: Template,
    *,
    contact: Contact | None = None,
    number: str | None = None,
    campaign: str | None = None,
    data_field: str | None = None,
    send_at: dt.datetime | None = None,
) -> Outgoing:
    """``template`` filled for ``contact``, or for the number ``number`` (E.164) and whichever of
    the template owner's contacts has it, prepared; ``Invalid`` if the message cannot be."""
    if contact is not None:
        number = contact.number
    elif number is not None:
        contact = contacts.contact_by_number(session, template.user_id, number)
    else:
        raise ValueError("give a contact or a number")
    return sender.prepare(number, templates.render(template.body, contact), campaign=campaign, data_field=data_field,
                          send_at=send_at)
