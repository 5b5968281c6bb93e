"""From a dialect's send request to messages charged, stored and queued, in one transaction.

``Sender.prepare`` is pure: it validates, normalises, analyses and prices one message, or
raises ``SendError``. ``accept`` writes a batch of prepared messages for one user: it takes
the credits (never below zero), inserts the messages and their queue rows, all or nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from pigeon.accounts.models import User
from pigeon.accounts.service import Principal, from_milli
from pigeon.config import Settings
from pigeon.delivery.models import QueueEntry
from pigeon.ids import new_id
from pigeon.messages.models import Direction, Message, Status
from pigeon.phone import InvalidNumber, normalise
from pigeon.pricing import PriceTable
from pigeon.text import analyse


class Problem(StrEnum):
    INVALID_NUMBER = "invalid_number"
    EMPTY_MESSAGE = "empty_message"
    TOO_LONG = "too_long"
    INVALID_DATE = "invalid_date"
    INSUFFICIENT_CREDITS = "insufficient_credits"


class SendError(Exception):
    """A send refused, with the problem and a sentence a person can act on."""

    def __init__(self, problem: Problem, detail: str):
        super().__init__(detail)
        self.problem = problem
        self.detail = detail


@dataclass(slots=True)
class Outgoing:
    """One validated, priced message, with its id, not yet stored."""

    id: str
    to: str
    region: str | None
    body: str
    encoding: str
    parts: int
    cost: int  # thousandths of a credit
    campaign: str | None = None
    data_field: str | None = None
    send_at: dt.datetime | None = None  # naive UTC; None means now
    sender: str | None = None


class Sender:
    """Turns raw requests into Outgoing messages under the platform's rules."""

    def __init__(self, settings: Settings):
        self.prices = PriceTable(settings.prices)
        self.default_region = settings.default_region
        self.max_parts = settings.max_parts

    def prepare(
        self,
        to: object,
        body: object,
        *,
        campaign: str | None = None,
        data_field: str | None = None,
        send_at: dt.datetime | None = None,
        sender: str | None = None,
    ) -> Outgoing:
        try:
            phone = normalise(to, self.default_region)
        except InvalidNumber as exc:
            raise SendError(Problem.INVALID_NUMBER, f"Invalid mobile number: {exc}") from None
        if not isinstance(body, str) or not body.strip():
            raise SendError(Problem.EMPTY_MESSAGE, "Message cannot be empty")
        analysis = analyse(body)
        if analysis.parts > self.max_parts:
            raise SendError(
                Problem.TOO_LONG,
                f"Message too long: {analysis.length} {analysis.encoding} units make "
                f"{analysis.parts} parts; at most {self.max_parts} parts are allowed",
            )
        return Outgoing(
            id=new_id(),
            to=phone.e164,
            region=phone.region,
            body=body,
            encoding=analysis.encoding,
            parts=analysis.parts,
            cost=self.prices.cost(analysis.parts, phone.region),
            campaign=campaign,
            data_field=data_field,
            send_at=send_at,
            sender=sender,
        )


def accept(session: Session, principal: Principal, batch: list[Outgoing], now: dt.datetime) -> None:
    """Charge, store and queue every message of the batch, or raise SendError and store none."""
    total = sum(message.cost for message in batch)
    if total:
        charged = session.execute(
            update(User)
            .where(User.id == principal.user_id, User.credit_balance >= total)
            .values(credit_balance=User.credit_balance - total)
        ).rowcount
        if not charged:
            raise SendError(
                Problem.INSUFFICIENT_CREDITS,
                f"Insufficient credits: this send costs {from_milli(total):g} credits",
            )
    session.execute(
        insert(Message.__table__),
        [
            {
                "id": m.id,
                "account_id": principal.account_id,
                "user_id": principal.user_id,
                "direction": Direction.OUTBOUND,
                "status": Status.SCHEDULED,
                "from_number": m.sender,
                "to_number": m.to,
                "body": m.body,
                "encoding": m.encoding,
                "parts": m.parts,
                "credit_cost": m.cost,
                "campaign": m.campaign,
                "data_field": m.data_field,
                "created_at": now,
                "scheduled_for": m.send_at,
                "read": False,
                "deleted": False,
            }
            for m in batch
        ],
    )
    session.execute(
        insert(QueueEntry.__table__),
        [
            {"message_id": m.id, "available_at": max(m.send_at or now, now), "attempts": 0}
            for m in batch
        ],
    )
