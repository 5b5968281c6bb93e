"""A message as a log entry: the JSON object Zoho Voice's logs list, and the body its status
callbacks POST. Pure: the caller reads the rows.

Pigeon's statuses map to Zoho's: SCHEDULED is IN_QUEUE; SENT, and UNKNOWN (sent, the carrier
could not tell), SENT; DELIVERED; a failure after the carrier took it UNDELIVERED, before it
FAILED, and one whose validity period ran out (error code EXPIRED) EXPIRED; FAILED_OPTOUT BLOCKED.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from pigeon.lifecycle import Status
from pigeon.phone import region_of, spaced

EXPIRED = "EXPIRED"  # the error code of a message whose validity period ran out (receipts use it too)
SCHEDULE = "%Y-%m-%d %H:%M:%S"
SENT_TIME = "%Y-%m-%d %H:%M"

DESCRIPTIONS = {
    "IN_QUEUE": "Message is queued and will be sent",
    "SENT": "Message was sent to the carrier",
    "DELIVERED": "Message was delivered to the handset",
    "RECEIVED": "Message was received from the customer",
    "UNDELIVERED": "Message was not delivered due to one of the possible errors reported by SMSC",
    "EXPIRED": "Message was not delivered due to expiration of timer or validity period",
    "FAILED": "Message could not be sent",
    "BLOCKED": "Message was blocked: the customer opted out of messages from this number",
}
"""Each of Zoho's statuses, as its ``statusDescription`` says it."""



def zoho_status(status: str, error_code: str | None, sent_at: dt.datetime | None) -> str:
    """Zoho's name for a message's status."""
    if status == Status.SCHEDULED:
        return "IN_QUEUE"
    if status in (Status.SENT, Status.UNKNOWN):
        return "SENT"
    if status == Status.DELIVERED:
        return "DELIVERED"
    if status == Status.FAILED_OPTOUT:
        return "BLOCKED"
    if error_code and error_code.partition(":")[0] == EXPIRED:  # a receipt's is EXPIRED:<err>
        return "EXPIRED"
    return "UNDELIVERED" if sent_at is not None else "FAILED"


def millis(value: dt.datetime | None) -> int | None:
    """A naive UTC time as milliseconds since the epoch."""
    return None if value is None else int(value.replace(tzinfo=dt.UTC).timestamp() * 1000)


def local(value: dt.datetime | None, zone: str, fmt: str) -> str | None:
    """A naive UTC time written in ``zone``."""
    return None if value is None else value.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).strftime(fmt)


def entry(message: Any, user: Any, *, zone: str, media: Sequence[Mapping] = (), blocked: bool = False,
          customer_name: str | None = None) -> dict:
    """The log entry of ``message`` (a row with the ``messages`` columns) of ``user`` (a row
    with ``first_name``, ``last_name``, ``email``): ``sentTime`` written in ``zone``, a scheduled
    send's ``scheduledTime`` in the time zone it was given in; ``media``: its files' ``mmsMeta`` objects;
    ``blocked``: its customer opted out of its account number."""
    incoming = message.direction == "INBOUND"
    customer, ours = (message.from_number, message.to_number) if incoming else (message.to_number, message.from_number)
    status = "DELIVERED" if incoming else zoho_status(message.status, message.error_code, message.sent_at)
    country = (message.region or region_of(customer) or "").lower()
    own_zone = message.time_zone or zone
    name = " ".join(part for part in (user.first_name, user.last_name) if part) or user.email
    found = {
        "logid": message.id,
        "messageId": message.id,
        "country": country,
        "multipartCount": message.parts,
        "submittedTime": millis(message.created_at),
        "sentTime": local(message.sent_at or message.received_at or message.created_at, zone, SENT_TIME),
        "isBlocked": blocked,
        "email": user.email,
        "emailId": user.email,
        "customerNumber": spaced(customer),
        "customerName": customer_name or spaced(customer),
        "message": message.body,
        "userName": name,
        "zuid": message.user_id,
        "zsoid": str(message.account_id),
        "senderId": spaced(ours) if ours else "",
        "senderIdName": spaced(ours) if ours else "",
        "senderIdCountry": (region_of(ours) or "").lower(),
        "isLongCode": bool(ours and ours.startswith("+")),
        "messageType": "INCOMING" if incoming else "OUTGOING",
        "isMMS": bool(message.mms),
        "status": status,
        "statusDescription": DESCRIPTIONS["RECEIVED" if incoming else status],
    }
    if media:
        found["mmsMeta"] = list(media)
    if message.error_code and not incoming and status not in ("IN_QUEUE", "SENT", "DELIVERED"):
        found["errorCode"] = message.error_code
    if message.scheduled_for is not None and not incoming:
        found["scheduledTime"] = local(message.scheduled_for, own_zone, SCHEDULE)
        found["timeZone"] = own_zone
        found["jobId"] = message.id
    return found
