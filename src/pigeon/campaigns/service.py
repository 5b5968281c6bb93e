"""Plain functions over a session: an account's SMS campaigns, and the numbers they hold.

Campaigns are registered with the carriers' registry outside Pigeon; the operator records them
(``pigeon campaigns``) and the API lists them and puts the account's numbers in them. A number
is in one campaign at most: assigning one that another campaign holds is refused (unassign it
there first), so a number never changes campaign, throughput or registration by surprise.
A campaign never holds more numbers than its capacity: an assignment locks the campaign's row
(PostgreSQL; SQLite has one writer), so two racing assignments are counted one after the other.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pigeon.accounts.models import Account
from pigeon.campaigns.models import CampaignAuthorisation, SmsCampaign, Status
from pigeon.db import utcnow
from pigeon.errors import Conflict, Invalid, NotFound, Reason
from pigeon.numbers.models import PhoneNumber

SUBJECT = "SMS campaign"
INVALID_ID = "Invalid campaign ID."
MAX_ASSIGN = 200
SERVICE_TYPES = ("zoomPhone", "contactCenter")
STATUSES = tuple(s.value for s in Status)
MAX_CAPACITY = 1_000_000
MIN_THROUGHPUT, MAX_THROUGHPUT = 0.01, 10_000.0  # message parts per second


class _Keep(Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
"""On update: leave the value as it is (None is a value: no limit)."""


@dataclass(frozen=True, slots=True)
class Texts:
    """The campaign's automatic answers; None keeps a value on update."""

    opt_in: str | None = None
    opt_out: str | None = None
    help: str | None = None


@dataclass(frozen=True, slots=True)
class Authorisation:
    """Who authorised putting numbers in a campaign (the letter of authorisation)."""

    person: str
    contact_number: str
    title: str
    contact_emails: str | None = None


def _text(value: str | None, what: str, longest: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise Invalid(f"{what} is required")
        return None
    if not isinstance(value, str) or "\x00" in value or len(value) > longest or (required and not value.strip()):
        raise Invalid(f"{what} is {'1' if required else '0'} to {longest} characters, without NUL")
    return value.strip() if required else value


def _capacity(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CAPACITY):
        raise Invalid(f"capacity is a whole number of numbers from 0 to {MAX_CAPACITY}, or none (no limit)")
    return value


def _throughput(value: float | None) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                              or not MIN_THROUGHPUT <= value <= MAX_THROUGHPUT):
        raise Invalid(f"throughput is message parts per second, from {MIN_THROUGHPUT:g} to {MAX_THROUGHPUT:g}, or none")
    return None if value is None else float(value)


def _status(value: str) -> str:
    if value not in STATUSES:
        raise Invalid(f"status is one of {', '.join(STATUSES)}")
    return value


def _apply_texts(campaign: SmsCampaign, texts: Texts) -> None:
    for column, value, what in (("response_to_opt_in", texts.opt_in, "response_to_opt_in"),
                                ("response_to_opt_out", texts.opt_out, "response_to_opt_out"),
                                ("response_to_help", texts.help, "response_to_help")):
        if (checked := _text(value, what, 500)) is not None:
            setattr(campaign, column, checked)


def create(session: Session, account_id: int, display_name: str, *, status: str = Status.PENDING.value,
           service_type: str = "zoomPhone", brand_id: str | None = None, brand_name: str | None = None,
           capacity: int | None = None, throughput: float | None = None, texts: Texts = Texts()) -> SmsCampaign:
    """A new campaign of the account (as the registry approved it, or pending)."""
    if session.get(Account, account_id) is None:
        raise NotFound(f"No account {account_id}")
    if service_type not in SERVICE_TYPES:
        raise Invalid(f"service_type is one of {', '.join(SERVICE_TYPES)}")
    now = utcnow()
    campaign = SmsCampaign(id="C-" + secrets.token_urlsafe(16), account_id=account_id,
                           display_name=_text(display_name, "display_name", 128, required=True),
                           status=_status(status), service_type=service_type,
                           brand_id=_text(brand_id, "brand_id", 64), brand_name=_text(brand_name, "brand name", 128),
                           capacity=_capacity(capacity), throughput=_throughput(throughput),
                           created_at=now, updated_at=now)
    _apply_texts(campaign, texts)
    session.add(campaign)
    session.flush()
    return campaign


def get(session: Session, account_id: int | None, campaign_id: str) -> SmsCampaign | None:
    """A campaign of the account (any account's with None); another account's does not exist for it."""
    if not isinstance(campaign_id, str) or "\x00" in campaign_id or len(campaign_id) > 32:
        return None
    found = session.get(SmsCampaign, campaign_id)
    return found if found is not None and (account_id is None or found.account_id == account_id) else None


def must_exist(campaign: SmsCampaign | None) -> SmsCampaign:
    if campaign is None:
        raise NotFound(INVALID_ID, subject=SUBJECT)
    return campaign


def page(session: Session, account_id: int | None, *, after: str | None, size: int) -> list[SmsCampaign]:
    """Up to ``size`` of the account's campaigns (every account's with None) by id, from the one after ``after``."""
    query = select(SmsCampaign)
    if account_id is not None:
        query = query.where(SmsCampaign.account_id == account_id)
    if after is not None:
        query = query.where(SmsCampaign.id > after)
    return list(session.scalars(query.order_by(SmsCampaign.id).limit(size)))


def count(session: Session, account_id: int) -> int:
    return session.scalar(select(func.count()).where(SmsCampaign.account_id == account_id)) or 0


def update_campaign(session: Session, campaign: SmsCampaign, *, status: str | None = None,
                    capacity: int | None | _Keep = KEEP, throughput: float | None | _Keep = KEEP,
                    display_name: str | None = None, brand_id: str | None = None, brand_name: str | None = None,
                    texts: Texts = Texts()) -> SmsCampaign:
    """Change what the registry changed (None or KEEP: as it is). A capacity below the numbers
    the campaign holds is refused (unassign some first)."""
    _lock(session, campaign.id)
    if status is not None:
        campaign.status = _status(status)
    if not isinstance(capacity, _Keep):
        held = count_numbers(session, campaign)
        if capacity is not None and _capacity(capacity) is not None and capacity < held:
            raise Invalid(f"The campaign holds {held} numbers: its capacity cannot be {capacity}", Reason.CAPACITY)
        campaign.capacity = _capacity(capacity)
    if not isinstance(throughput, _Keep):
        campaign.throughput = _throughput(throughput)
    if display_name is not None:
        campaign.display_name = _text(display_name, "display_name", 128, required=True) or campaign.display_name
    if brand_id is not None:
        campaign.brand_id = _text(brand_id, "brand_id", 64) or None
    if brand_name is not None:
        campaign.brand_name = _text(brand_name, "brand name", 128) or None
    _apply_texts(campaign, texts)
    campaign.updated_at = utcnow()
    session.flush()
    return campaign


def _lock(session: Session, campaign_id: str) -> None:
    """Hold the campaign's row until the transaction ends (PostgreSQL; SQLite's writer is alone)."""
    session.execute(select(SmsCampaign.id).where(SmsCampaign.id == campaign_id).with_for_update())


def _wanted(number_ids: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(number_ids))
    if not wanted:
        raise Invalid("phone_number_ids is required")
    if len(wanted) > MAX_ASSIGN:
        raise Invalid(f"Too many numbers, should less than {MAX_ASSIGN}", Reason.TOO_MANY_ITEMS)
    return wanted


def _held(campaign: SmsCampaign):  # type: ignore[no-untyped-def]
    """The numbers a campaign holds (a number that changes account leaves its campaign:
    ``numbers.service.allocate``)."""
    return PhoneNumber.campaign_id == campaign.id


def assign(session: Session, campaign: SmsCampaign, number_ids: Sequence[str], by: Authorisation) -> list[str]:
    """Put the account's numbers in the campaign, keeping who authorised it; all or none:
    ``Invalid`` UNKNOWN_ITEM for a number not the account's, TOO_MANY_ITEMS past 200, CAPACITY
    past the campaign's capacity, ITEMS_FAILED for a number another campaign holds. Returns the
    ids newly assigned (one already in this campaign stays, and is not counted twice)."""
    wanted = _wanted(number_ids)
    person = _text(by.person, "loa_authorizing_person", 128, required=True)
    contact = _text(by.contact_number, "contact_number", 32, required=True)
    title = _text(by.title, "title", 128, required=True)
    emails = _text(by.contact_emails, "contact_emails", 500)
    _lock(session, campaign.id)  # before counting: a racing assignment waits here, then counts ours
    rows = {r.id: r for r in session.scalars(select(PhoneNumber).where(PhoneNumber.id.in_(wanted)))}
    unknown = [n for n in wanted if n not in rows or rows[n].account_id != campaign.account_id]
    if unknown:
        raise Invalid(f"Phone number not found: {', '.join(unknown)}", Reason.UNKNOWN_ITEM)
    elsewhere = [(rows[n].number, rows[n].campaign_id) for n in wanted
                 if rows[n].campaign_id not in (None, campaign.id)]
    if elsewhere:
        raise Invalid("Some data failed: " + "; ".join(
            f"{number} is in SMS campaign {other}: unassign it there first" for number, other in elsewhere),
            Reason.ITEMS_FAILED)
    new = [n for n in wanted if rows[n].campaign_id != campaign.id]
    held = count_numbers(session, campaign)
    if campaign.capacity is not None and held + len(new) > campaign.capacity:
        raise Invalid(f"Insufficient campaign capacity. It holds {held} of {campaign.capacity} numbers; "
                      f"{len(new)} more asked", Reason.CAPACITY)
    if new:
        moved = session.execute(
            update(PhoneNumber)
            .where(PhoneNumber.id.in_(new), PhoneNumber.account_id == campaign.account_id,
                   PhoneNumber.campaign_id.is_(None))
            .values(campaign_id=campaign.id, updated_at=utcnow())
            .execution_options(synchronize_session="fetch")
        ).rowcount
        if moved != len(new):  # another campaign took one of them meanwhile: none of ours
            raise Conflict("A number was assigned to another SMS campaign meanwhile: nothing was assigned")
    session.add(CampaignAuthorisation(campaign_id=campaign.id, authorising_person=person, contact_number=contact,
                                      title=title, contact_emails=emails, number_ids=orjson.dumps(wanted).decode(),
                                      created_at=utcnow()))
    session.flush()
    return new


def unassign(session: Session, campaign: SmsCampaign, number_ids: Sequence[str]) -> None:
    """Take numbers out of the campaign; all or none (``Invalid`` UNKNOWN_ITEM for one it does not hold)."""
    wanted = _wanted(number_ids)
    held = set(session.scalars(select(PhoneNumber.id).where(PhoneNumber.id.in_(wanted), _held(campaign))))
    unknown = [n for n in wanted if n not in held]
    if unknown:
        raise Invalid(f"Phone number not found in this SMS campaign: {', '.join(unknown)}", Reason.UNKNOWN_ITEM)
    session.execute(update(PhoneNumber).where(PhoneNumber.id.in_(wanted), PhoneNumber.campaign_id == campaign.id)
                    .values(campaign_id=None, updated_at=utcnow()).execution_options(synchronize_session="fetch"))


def count_numbers(session: Session, campaign: SmsCampaign) -> int:
    return session.scalar(select(func.count()).where(_held(campaign))) or 0


def numbers_of(session: Session, campaign: SmsCampaign) -> list[tuple[str, str]]:
    """(id, number) of the numbers the campaign holds, in the numbers' order."""
    return [(row.id, row.number) for row in session.execute(
        select(PhoneNumber.id, PhoneNumber.number).where(_held(campaign)).order_by(PhoneNumber.number))]


def authorisations(session: Session, campaign: SmsCampaign) -> list[CampaignAuthorisation]:
    """Every letter of authorisation the campaign's assignments carried, oldest first."""
    return list(session.scalars(select(CampaignAuthorisation).where(CampaignAuthorisation.campaign_id == campaign.id)
                                .order_by(CampaignAuthorisation.id)))
