"""Plain functions over a session: the numbers Pigeon owns, who owns them, and the two
questions the core asks of them (which number an account sends from; whose number a message
came to).

A phone number is stored in E.164 (``pigeon.phone``); a short code as its 3 to 8 digits; an
alphanumeric sender ID as given (1 to 11 letters, digits and spaces, at least one letter). A
number moved to another account loses its user and its place as that account's default.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pigeon.accounts.models import Account, User
from pigeon.db import bulk, utcnow
from pigeon.errors import Conflict, Invalid, NotFound, Reason
from pigeon.numbers.models import Kind, PhoneNumber, Source, State
from pigeon.phone import normalise

SHORT_CODE = re.compile(r"[0-9]{3,8}")
SENDER_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
PHONE_KINDS = (Kind.LOCAL, Kind.MOBILE, Kind.TOLL_FREE)
ACTIVE_CAMPAIGN = "active"  # pigeon.campaigns' status whose numbers may send (read here in SQL: it is above us)


@dataclass(frozen=True, slots=True)
class Spec:
    """A number to add: what it is and how it is reached."""

    number: str
    kind: Kind = Kind.LOCAL
    source: Source = Source.PURCHASED
    sms: bool = True
    mms: bool = False
    voice: bool = False
    carrier: str | None = None
    state: State = State.ACTIVE


def canonical(raw: object, kind: Kind, default_region: str) -> str:
    """The stored form of a number of this kind; ``Invalid`` (INVALID_NUMBER) if it is none."""
    text = raw.strip() if isinstance(raw, str) else raw
    if kind in PHONE_KINDS:
        try:
            return normalise(text, default_region).e164
        except Invalid:
            raise Invalid(f"Invalid {kind.value.replace('_', '-')} number {raw!r}: not a valid phone number",
                          Reason.INVALID_NUMBER) from None
    if not isinstance(text, str):
        raise Invalid(f"Invalid number: {raw!r} is not text", Reason.INVALID_NUMBER)
    if kind == Kind.SHORT_CODE and SHORT_CODE.fullmatch(text):
        return text
    if kind == Kind.ALPHANUMERIC and SENDER_ID.fullmatch(text):
        return text
    rule = "3 to 8 digits" if kind == Kind.SHORT_CODE else "1 to 11 letters, digits or spaces, one a letter at least"
    raise Invalid(f"Invalid {kind.value.replace('_', ' ')} {text!r}: it is {rule}", Reason.INVALID_NUMBER)


def add(session: Session, spec: Spec, default_region: str, *, account_id: int | None = None,
        user_id: int | None = None, known_carriers: Iterable[str] | None = None) -> PhoneNumber:
    """A new number, in the operator's pool or an account's; ``Conflict`` if Pigeon has it."""
    number = canonical(spec.number, spec.kind, default_region)
    if spec.kind == Kind.ALPHANUMERIC and (spec.mms or spec.voice):
        raise Invalid(f"A sender ID ({number}) sends SMS only: no MMS, no voice")
    if spec.carrier is not None and known_carriers is not None and spec.carrier not in set(known_carriers):
        raise Invalid(f"No carrier named {spec.carrier!r}; the configured ones are {sorted(set(known_carriers))}")
    if find(session, number) is not None:
        raise Conflict(f"Pigeon has the number {number} already")
    if account_id is not None and session.get(Account, account_id) is None:
        raise NotFound(f"No account {account_id}")
    now = utcnow()
    row = PhoneNumber(id=secrets.token_urlsafe(16), number=number, kind=spec.kind.value, source=spec.source.value,
                      sms=spec.sms, mms=spec.mms, voice=spec.voice, carrier=spec.carrier, state=spec.state.value,
                      account_id=account_id, is_default=False, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    if user_id is not None:
        assign_user(session, row, user_id)
    return row


def get(session: Session, number_id: str) -> PhoneNumber | None:
    return session.get(PhoneNumber, number_id) if "\x00" not in number_id else None


def find(session: Session, number: str) -> PhoneNumber | None:
    """A number by its stored form."""
    if "\x00" in number:
        return None
    return session.scalar(select(PhoneNumber).where(PhoneNumber.number == number))


def numbers(session: Session, account_id: int | None = None, *, pool: bool = False) -> list[PhoneNumber]:
    """An account's numbers (every number when None; the unallocated ones with ``pool``), in order."""
    query = select(PhoneNumber).order_by(PhoneNumber.number)
    if pool:
        query = query.where(PhoneNumber.account_id.is_(None))
    elif account_id is not None:
        query = query.where(PhoneNumber.account_id == account_id)
    return list(session.scalars(query))


def allocate(session: Session, number_ids: Sequence[str], account_id: int | None) -> int:
    """Give numbers to an account (None: back to the pool). A number that changes account loses
    its user, its place as default, its campaign and its consent policy (all of them the old
    account's); one already the account's keeps them."""
    if account_id is not None and session.get(Account, account_id) is None:
        raise NotFound(f"No account {account_id}")
    if account_id is None:
        moving = PhoneNumber.account_id.is_not(None)
    else:
        moving = PhoneNumber.account_id.is_(None) | (PhoneNumber.account_id != account_id)
    return session.execute(
        update(PhoneNumber).where(PhoneNumber.id.in_(list(number_ids)), moving)
        .values(account_id=account_id, user_id=None, is_default=False, campaign_id=None, consent_policy_id=None,
                updated_at=utcnow())
        .execution_options(synchronize_session="fetch")  # numbers loaded in the session see it too
    ).rowcount


def assign_user(session: Session, row: PhoneNumber, user_id: int | None) -> PhoneNumber:
    """Give an account's number to one of its users (None: to nobody in particular)."""
    if user_id is not None:
        if row.account_id is None:
            raise Invalid(f"{row.number} is in no account: allocate it to one before giving it a user")
        user = session.get(User, user_id)
        if user is None or user.account_id != row.account_id:
            named = user.email if user is not None else f"user {user_id}"
            raise Invalid(f"{named} is not of account {row.account_id}, which {row.number} belongs to")
    row.user_id, row.updated_at = user_id, utcnow()
    session.flush()
    return row


def make_default(session: Session, row: PhoneNumber) -> PhoneNumber:
    """The account's sender when a send names none (one per account)."""
    if row.account_id is None:
        raise Invalid(f"{row.number} is in no account: allocate it first")
    _check_sends(row)
    session.execute(update(PhoneNumber).where(PhoneNumber.account_id == row.account_id, PhoneNumber.id != row.id)
                    .values(is_default=False))
    row.is_default, row.updated_at = True, utcnow()
    session.flush()
    return row


def remove(session: Session, number_id: str) -> bool:
    row = get(session, number_id)
    if row is None:
        return False
    session.delete(row)
    return True


def _check_sends(row: PhoneNumber) -> None:
    if not row.sms:
        raise Invalid(f"{row.number} cannot send SMS")
    if row.state != State.ACTIVE:
        raise Invalid(f"{row.number} is {row.state}, not active")


@dataclass(frozen=True, slots=True)
class Senders:
    """What a batch of an account's messages may go out from."""

    default: str | None  # the account's default number, if it can send
    usable: set[str]  # those of the requested senders the account may send from
    policies: dict[str, str | None]  # the consent policy of each of those numbers (and the default)
    unregistered: set[str] = field(default_factory=set)  # campaigns required: requested, able, in no active campaign
    unregistered_default: str | None = None  # campaigns required: the default, able, in no active campaign
    mms: set[str] = field(default_factory=set)  # those usable numbers (the default among them) that can send MMS


def senders(session: Session, account_id: int, requested: set[str], *, campaigns_required: bool = False) -> Senders:
    """For a batch of an account's messages, in one query: the account's default sender (or
    None), those of the ``requested`` senders (stored forms) it may send from (its own, active,
    able to send SMS and, when ``campaigns_required``, in an active SMS campaign of the account),
    and their consent policies."""
    wanted = sorted(requested)
    which = f"(p.is_default OR p.number IN ({', '.join('?' * len(wanted))}))" if wanted else "p.is_default"
    campaign, joined = ("c.status", " LEFT JOIN sms_campaigns c ON c.id = p.campaign_id AND c.account_id = p.account_id"
                        ) if campaigns_required else ("NULL", "")
    rows = bulk.fetch(session, f"SELECT p.number, p.is_default, p.sms, p.state, p.consent_policy_id, {campaign}, p.mms "
                               f"FROM phone_numbers p{joined} WHERE p.account_id = ? AND {which}", [account_id, *wanted])
    default, usable, policies, unregistered, unregistered_default, mms = None, set(), {}, set(), None, set()
    for number, is_default, sms, state, policy, status, can_mms in rows:
        if not (sms and state == State.ACTIVE):
            continue
        if campaigns_required and status != ACTIVE_CAMPAIGN:
            unregistered.add(number)
            unregistered_default = number if is_default else unregistered_default
            continue
        usable.add(number)
        policies[number] = policy
        if can_mms:
            mms.add(number)
        if is_default:
            default = number
    return Senders(default, usable & requested, policies, unregistered & requested, unregistered_default,
                   mms & (requested | {default}))


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose a number is: an account, and the user it is assigned to if any."""

    account_id: int
    user_id: int | None
    number_id: str
    number: str  # its stored form
    policy_id: str | None  # its consent policy


def owner_of(session: Session, number: str, default_region: str) -> Owner | None:
    """Whose the number a message came to is; None when Pigeon does not own it (or nobody
    does yet, or it is not active)."""
    row = find(session, number)
    if row is None:
        try:
            row = find(session, normalise(number, default_region).e164)
        except Invalid:
            return None
    if row is None or row.account_id is None or row.state != State.ACTIVE:
        return None
    return Owner(row.account_id, row.user_id, row.id, row.number, row.consent_policy_id)


@dataclass(frozen=True, slots=True)
class Filter:
    """Which of an account's numbers a list shows (each None: any)."""

    kinds: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    state: str | None = None
    text: str | None = None  # a part of the number or of its display name
    assigned: bool | None = None  # to a user, or to none
    products: tuple[str, ...] | None = None  # Zoom's allocated_product


def page(session: Session, account_id: int, flt: Filter, *, after: str | None, size: int) -> list[PhoneNumber]:
    """Up to ``size`` of the account's numbers in the order of their stored form, from the one
    after ``after`` (keyset: a walk sees each number once while others are added or removed)."""
    query = select(PhoneNumber).where(PhoneNumber.account_id == account_id)
    if flt.kinds is not None:
        query = query.where(PhoneNumber.kind.in_(flt.kinds))
    if flt.sources is not None:
        query = query.where(PhoneNumber.source.in_(flt.sources))
    if flt.state is not None:
        query = query.where(PhoneNumber.state == flt.state)
    if flt.products is not None:
        query = query.where(PhoneNumber.product.in_(flt.products))
    if flt.assigned is not None:
        query = query.where(PhoneNumber.user_id.is_not(None) if flt.assigned else PhoneNumber.user_id.is_(None))
    if flt.text:
        like = "%" + flt.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where((PhoneNumber.number.like(like, escape="\\")) |
                            (PhoneNumber.display_name.like(like, escape="\\")))
    if after is not None:
        query = query.where(PhoneNumber.number > after)
    return list(session.scalars(query.order_by(PhoneNumber.number).limit(size)))


def update_number(session: Session, row: PhoneNumber, *, display_name: str | None = None,
                  voice: bool | None = None) -> PhoneNumber:
    """Change what a request may change (None keeps it): the label, and voice."""
    if display_name is not None:
        name = display_name.strip()
        if len(name) > 32 or "\x00" in name:
            raise Invalid("display_name is at most 32 characters, without NUL")
        row.display_name = name or None
    if voice is not None:
        if voice and row.kind in (Kind.ALPHANUMERIC, Kind.SHORT_CODE):
            raise Invalid(f"{row.number} cannot carry voice")
        row.voice = voice
    row.updated_at = utcnow()
    session.flush()
    return row
