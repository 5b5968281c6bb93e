"""Sending one message, personalised, to every contact of a group: ``pigeon send-group`` and
``POST /sms/send-group`` alike.

The edge finds the group and the text (a message, or a template's) by its own names: the API
by id, the command line by id or name. ``prepare`` then checks the text, loads the members
(at most ``contacts.MAX_GROUP_SEND``) and prepares each one's message; the edge accepts the
prepared messages, all in one transaction (the API through its batcher, the command line
directly).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from pigeon.contacts import service as contacts
from pigeon.contacts.models import Contact, Group
from pigeon.errors import Invalid
from pigeon.sending.service import Outgoing, Sender
from pigeon.templates import service as templates


@dataclass(slots=True)
class GroupSend:
    """A group send prepared: for each member, in order, its message or why it was refused."""

    group: Group
    results: list[tuple[Contact, Outgoing | Invalid]]

    @property
    def outgoing(self) -> list[Outgoing]:
        """The messages that can be sent, in the members' order."""
        return [result for _, result in self.results if isinstance(result, Outgoing)]

    @property
    def refused(self) -> list[tuple[Contact, Invalid]]:
        """The members whose message could not be prepared, and why."""
        return [(contact, result) for contact, result in self.results if isinstance(result, Invalid)]


def prepare(
    session: Session,
    sender: Sender,
    group: Group,
    text: str | None,
    *,
    campaign: str | None = None,
    data_field: str | None = None,
    send_at: dt.datetime | None = None,
) -> GroupSend:
    """``text`` (placeholders filled per contact) prepared for every member of ``group``.

    Raises ``Invalid`` when the text is empty or has an unknown placeholder, or when the group
    is empty or has more than ``contacts.MAX_GROUP_SEND`` members."""
    text = templates.check_body(text, "Message")
    members = contacts.members_to_send(session, group)
    if not members:
        raise Invalid(f"Group {group.name!r} has no contacts to send to")
    results: list[tuple[Contact, Outgoing | Invalid]] = []
    for contact in members:
        try:
            results.append((contact, sender.prepare(contact.number, templates.render(text, contact), campaign=campaign,
                                                    data_field=data_field, send_at=send_at)))
        except Invalid as exc:
            results.append((contact, exc))
    return GroupSend(group, results)
