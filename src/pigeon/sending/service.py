"""From a dialect's send request to messages charged, stored and queued, in one transaction.

``Sender.prepare`` is pure: it validates, normalises, analyses and prices one message, or
raises ``pigeon.errors.Invalid``. ``accept`` writes a batch of prepared messages for one user: it takes
the credits (never below zero), inserts the messages and their queue rows, all or nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from types import SimpleNamespace

from sqlalchemy import update
from sqlalchemy.orm import Session

from pigeon import hooks, metrics
from pigeon.accounts.models import User
from pigeon.accounts.service import Principal, from_milli
from pigeon.config import Settings
from pigeon.consent import service as consent
from pigeon.db import bulk, on_commit
from pigeon.errors import Forbidden, InsufficientCredits, Invalid, Reason
from pigeon.ids import new_id
from pigeon.lifecycle import OPTED_OUT
from pigeon.logs import about
from pigeon.messages.models import Direction, Status
from pigeon.numbers import service as numbers
from pigeon.phone import normalise
from pigeon.pricing import PriceTable
from pigeon.text import BINARY, GSM7, UCS2, Analysis, analyse, analyse_as

log = logging.getLogger(__name__)
NUL = "\x00"  # PostgreSQL cannot store it in text: refused on every database alike


@dataclass(slots=True)
class Outgoing:
    """One validated, priced message, with its id, not yet stored."""

    id: str
    to: str
    body: str
    encoding: str
    parts: int
    cost: int  # thousandths of a credit
    campaign: str | None = None
    data_field: str | None = None
    send_at: dt.datetime | None = None  # naive UTC; None means now
    sender: str | None = None
    answers_keyword: bool = False  # the one answer to a STOP, START or HELP: sent whatever the consent
    needs_campaign: bool = False  # its sender must be a number in an active SMS campaign (campaigns.required)
    region: str | None = None  # the recipient's country (ISO 3166), as priced
    options: Options | None = None  # what the send asked beyond the text (Zoho Voice's parameters)


CODINGS = {0: GSM7, 1: BINARY, 2: UCS2}
"""A sender's ``dataCoding``: the encoding it forces."""
MAX_VALIDITY_MINUTES = 14_400


@dataclass(frozen=True, slots=True)
class Options:
    """A send's options beyond the text: forced data coding, flash (message class 0), the
    validity period (after it, a message still queued is not sent), a status callback URL,
    the zone a scheduled time was given in, and whether it carries media (MMS)."""

    data_coding: int | None = None
    flash: bool = False
    validity_minutes: int | None = None
    status_callback: str | None = None
    time_zone: str | None = None
    mms: bool = False

    def expires_at(self, send_at: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        """When its validity period ends, counted from when it is to go (0 or none: no end)."""
        if not self.validity_minutes:
            return None
        return max(send_at or now, now) + dt.timedelta(minutes=self.validity_minutes)


class Sender:
    """Turns raw requests into Outgoing messages under the platform's rules."""

    def __init__(self, settings: Settings):
        self.prices = PriceTable(settings.prices)
        self.default_region = settings.default_region
        self.max_parts = settings.max_parts
        self.needs_campaign = settings.campaigns.required  # every message it prepares carries the rule to accept

    def prepare(
        self,
        to: object,
        body: object,
        *,
        campaign: str | None = None,
        data_field: str | None = None,
        send_at: dt.datetime | None = None,
        sender: str | None = None,
        options: Options | None = None,
    ) -> Outgoing:
        phone = normalise(to, self.default_region)
        if not isinstance(body, str) or not body.strip():
            raise Invalid("Message cannot be empty", Reason.EMPTY_MESSAGE)
        for label, text in (("message", body), ("campaign", campaign), ("dataField", data_field), ("sender", sender)):
            if text and NUL in text:
                raise Invalid(f"{label} cannot contain a NUL character (\\x00)")
        analysis = analyse(body) if options is None or options.data_coding is None else _forced(body, options)
        if analysis.parts > self.max_parts:
            raise Invalid(
                f"Message too long: {analysis.length} {analysis.encoding} units make "
                f"{analysis.parts} parts; at most {self.max_parts} parts are allowed",
                Reason.TOO_LONG,
            )
        if sender is not None:
            sender = sender.strip()
            try:
                sender = normalise(sender, self.default_region).e164 if sender else None
            except Invalid:
                pass  # a short code or a sender ID, stored as given
        return Outgoing(
            id=new_id(),
            to=phone.e164,
            body=body,
            encoding=analysis.encoding,
            parts=analysis.parts,
            cost=self.prices.cost(analysis.parts, phone.region),
            campaign=campaign,
            data_field=data_field,
            send_at=send_at,
            sender=sender,
            needs_campaign=self.needs_campaign,
            region=phone.region,
            options=options,
        )


def _forced(body: str, options: Options) -> Analysis:
    """The body analysed in the coding its sender forced (``Invalid`` when it cannot be had so)."""
    if options.data_coding not in CODINGS:
        raise Invalid(f"dataCoding must be 0 (GSM), 1 (binary) or 2 (UCS-2), not {options.data_coding!r}",
                      subject="dataCoding")
    encoding = CODINGS[options.data_coding]
    try:
        return analyse_as(body.strip() if encoding == BINARY else body, encoding)
    except ValueError as exc:
        raise Invalid(f"The message cannot be sent with dataCoding {options.data_coding} ({encoding}): {exc}",
                      subject="dataCoding") from None


def _with_disclaimers(batch: list[Outgoing], scopes: dict[str, str],
                      texts: dict[tuple[str, str], str]) -> list[Outgoing]:
    """The batch with each first message to a phone in a policy's scope carrying its
    disclaimer: the text grows, and its parts and cost with it (the price of a part is kept)."""
    if not texts:
        return batch
    out, done = [], set()
    for m in batch:
        key = (scopes[m.id], m.to)
        if key in texts and key not in done:
            done.add(key)
            body = f"{m.body}\n{texts[key]}"
            analysis = analyse(body)
            if m.encoding == BINARY:
                continue  # data, not text: nothing can be added to it
            m = replace(m, body=body, encoding=analysis.encoding, parts=analysis.parts,
                        cost=m.cost // max(1, m.parts) * analysis.parts)
        out.append(m)
    return out


MESSAGE_COLUMNS = (
    "id", "account_id", "user_id", "direction", "status", "from_number", "to_number", "body",
    "encoding", "parts", "credit_cost", "campaign", "data_field", "created_at", "scheduled_for",
    "read", "deleted", "region",
)
OPTION_COLUMNS = ("expires_at", "flash", "data_coding", "status_callback", "time_zone", "mms")


@dataclass(frozen=True, slots=True)
class Accepted:
    """The ``messages`` rows ``accept`` wrote: values in ``columns`` order (read them by name
    with ``rows_by_id``), so that an answer needs no read back."""

    columns: tuple[str, ...]
    rows: list[tuple]

    def rows_by_id(self) -> dict[str, SimpleNamespace]:
        names = self.columns + tuple(c for c in (*OPTION_COLUMNS, *NOT_WRITTEN) if c not in self.columns)
        return {row[0]: SimpleNamespace(**dict(zip(names, row + (None,) * (len(names) - len(row)), strict=True)))
                for row in self.rows}


NOT_WRITTEN = ("sent_at", "received_at", "error_code", "error_detail", "carrier", "carrier_ref")
"""Columns of a message just accepted that are empty until it goes (a row of ``Accepted`` has them as None)."""
USERS = User.__table__


def _option_values(m: Outgoing, now: dt.datetime) -> tuple:
    o = m.options
    if o is None:
        return (None, None, None, None, None, None)
    return (o.expires_at(m.send_at, now), o.flash or None, o.data_coding, o.status_callback, o.time_zone,
            o.mms or None)


def accept(session: Session, principal: Principal, batch: list[Outgoing], now: dt.datetime, *,
           refuse_opted_out: bool = False, origin: str = "api") -> Accepted:
    """Charge, store and queue every message of the batch, each from the sender it names (one
    of the account's numbers) or the account's default number (else none: the carrier's own);
    or raise (``Forbidden`` for a sender not the account's, ``InsufficientCredits``) and store none.
    A message that ``needs_campaign`` (``campaigns.required``, set by ``Sender``) goes only from a
    number in an active SMS campaign: named or the default, else ``Forbidden`` (never from none).

    A message to a phone that opted out of its sender's scope (``pigeon.consent``) is stored
    FAILED_OPTOUT, uncharged and never queued, and its report is due at once (``hooks.finished``);
    with ``refuse_opted_out`` (a dialect that refuses such a send, as Zoho's), the batch is refused
    instead (``Forbidden``, reason OPTED_OUT, naming them) and nothing is stored. ``origin`` names
    the door it came through, for ``pigeon_messages_accepted`` (counted once it commits)."""
    account, user = principal.account_id, principal.user_id
    requested = {m.sender for m in batch if m.sender}
    required = any(m.needs_campaign for m in batch)
    found = numbers.senders(session, account, requested, campaigns_required=required)
    if requested - found.usable:
        refused = sorted(requested - found.usable)
        if outside := [number for number in refused if number in found.unregistered]:
            raise Forbidden(f"{', '.join(outside)} is in no active SMS campaign: only a number in one may send "
                            "(campaigns are required)")
        raise Forbidden(f"{', '.join(refused)} is not one of your numbers that can send SMS", Reason.UNKNOWN_SENDER)
    default = found.default
    if required and default is None and any(not m.sender for m in batch):
        why = (f"the account's default number {found.unregistered_default} is in no active SMS campaign"
               if found.unregistered_default else "the account has no default number that can send SMS")
        raise Forbidden(f"No sender named, and {why}: campaigns are required, so nothing goes out from no number")
    no_mms = sorted({m.sender or default or "no number" for m in batch
                     if m.options is not None and m.options.mms and (m.sender or default) not in found.mms})
    if no_mms:
        raise Forbidden(f"{', '.join(no_mms)} cannot send MMS: send from a number of yours with the MMS capability",
                        Reason.UNKNOWN_SENDER)
    every = {m.id: consent.scopes_of(account, m.sender or default, found.policies.get(m.sender or default or ""))
             for m in batch}
    scopes = {message_id: found_scopes[0] for message_id, found_scopes in every.items()}
    out = consent.opted_out(session, [(s, m.to) for m in batch if not m.answers_keyword for s in every[m.id]])
    blocked = {m.id for m in batch if not m.answers_keyword and any((s, m.to) in out for s in every[m.id])}
    if blocked and refuse_opted_out:
        phones = sorted({m.to for m in batch if m.id in blocked})
        raise Forbidden(f"{', '.join(phones)} opted out of messages from this sender (they texted STOP); "
                        "nothing was sent", Reason.OPTED_OUT)
    first = consent.disclaimers(session, [(scopes[m.id], m.to) for m in batch
                                          if m.id not in blocked and not m.answers_keyword])
    batch = _with_disclaimers(batch, scopes, first)
    total = sum(message.cost for message in batch if message.id not in blocked)
    if total:
        charged = session.execute(
            update(USERS)
            .where(USERS.c.id == principal.user_id, USERS.c.credit_balance >= total)
            .values(credit_balance=USERS.c.credit_balance - total)
        ).rowcount
        if not charged:
            raise InsufficientCredits(f"Insufficient credits: this send costs {from_milli(total):g} credits")
    outbound, scheduled, opted_out = Direction.OUTBOUND.value, Status.SCHEDULED.value, OPTED_OUT.value
    rows = [
        (m.id, account, user, outbound, opted_out if m.id in blocked else scheduled, m.sender or default, m.to,
         m.body, m.encoding, m.parts, 0 if m.id in blocked else m.cost, m.campaign, m.data_field, now, m.send_at,
         False, False, m.region)
        for m in batch
    ]
    columns = MESSAGE_COLUMNS
    if any(m.options is not None for m in batch):  # the rare send with options writes their columns too
        rows = [row + _option_values(m, now) for row, m in zip(rows, batch, strict=True)]
        columns = MESSAGE_COLUMNS + OPTION_COLUMNS
    bulk.insert(session, "messages", columns, rows)
    bulk.insert(session, "outbound_queue", ("message_id", "available_at", "attempts", "urgent"), [
        (m.id, max(m.send_at or now, now), 0, m.answers_keyword) for m in batch if m.id not in blocked
    ])
    if first:
        consent.contacted(session, first, now)  # after the charge: a refused batch contacted nobody
    if blocked:
        hooks.finished(session, sorted(blocked), now)
    on_commit(session, _count, origin, account, [m.id for m in batch], len(blocked))
    return Accepted(columns, rows)


def _count(origin: str, account: int, accepted: list[str], opted_out: int) -> None:
    metrics.ACCEPTED.labels(origin).inc(len(accepted))
    if log.isEnabledFor(logging.DEBUG):
        for message_id in accepted:
            log.debug("message %s accepted through %s", message_id, origin,
                      extra=about(message_id=message_id, account_id=account))
    if opted_out:
        metrics.FINISHED.labels("none", OPTED_OUT.value).inc(opted_out)
