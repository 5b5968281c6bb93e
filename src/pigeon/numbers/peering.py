"""Peering numbers: a provider exchange partner (a configured carrier) puts its own numbers in
its customers' accounts. Each is a ``PhoneNumber`` of source ``peering`` whose ``carrier`` is
that carrier's name, so that its messages go through that carrier, both ways.

Adding, updating and deleting are all or nothing: any item refused (an invalid E.164 number,
one Pigeon has already, one the carrier did not provide in that account, a bad field) refuses
the whole request with every refused item and its reason (``ItemsFailed``), and nothing is
written. A carrier acts only on the numbers it provided.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pigeon.accounts.models import Account
from pigeon.db import utcnow
from pigeon.errors import Invalid, Reason
from pigeon.numbers import service as numbers
from pigeon.numbers.models import Kind, PhoneNumber, Source, State
from pigeon.phone import normalise

MAX_ITEMS = 200
PRODUCTS = ("UNALLOCATED", "ZOOM_PHONE", "ZOOM_CONTACT_CENTER")
UNALLOCATED = "UNALLOCATED"
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
LIMITS = {"sip_trunk_name": 64, "billing_ref_id": 36, "service_info": 255}


class ItemsFailed(Invalid):
    """Some items of a request were refused: the detail is ``[{phoneNumber, reason}]`` in JSON,
    as Zoom's code 1000 shows them."""

    def __init__(self, failures: list[dict[str, object]]) -> None:
        super().__init__(orjson.dumps(failures).decode(), Reason.ITEMS_FAILED)
        self.failures = failures


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def check_count(items: Sequence[object]) -> None:
    """1 to ``MAX_ITEMS`` items, else ``Invalid`` (NO_ITEMS, TOO_MANY_ITEMS)."""
    if not items:
        raise Invalid("Request data cannot be empty", Reason.NO_ITEMS)
    if len(items) > MAX_ITEMS:
        raise Invalid(f"Too many numbers, should less than {MAX_ITEMS}", Reason.TOO_MANY_ITEMS)


def check_product(product: object) -> str:
    if product not in PRODUCTS:
        raise Invalid(f"Invalid allocated_product {product!r}: one of {', '.join(PRODUCTS)}")
    return str(product)


def e164(raw: object) -> str | None:
    """A number as a provider must give it (E.164, and a valid phone number); else None."""
    if not isinstance(raw, str) or not E164.fullmatch(raw.strip()):
        return None
    try:
        return normalise(raw.strip(), "ZZ").e164
    except Invalid:
        return None


def _text(item: dict, field: str, *, required: bool = False) -> str | None:
    value = item.get(field)
    if value is None:
        if required:
            raise _Refused("Invalid Sip Trunk" if field == "sip_trunk_name" else f"{field} is required")
        return None
    if not isinstance(value, str) or "\x00" in value or len(value.strip()) > LIMITS[field] or (
            required and not value.strip()):
        if field == "sip_trunk_name":
            raise _Refused("Invalid Sip Trunk")
        raise _Refused(f"{field} is text of at most {LIMITS[field]} characters")
    return value.strip()


def _status(item: dict, *, required: bool) -> bool | None:
    value = item.get("status")
    if value is None and not required:
        return None
    if not isinstance(value, bool):
        raise _Refused("status is required, true or false" if required else "status is true or false")
    return value


@dataclass(frozen=True, slots=True)
class _Checked:
    number: str
    fields: dict[str, object]


def _check_items(items: Sequence[object], check: object) -> tuple[list[_Checked], list[dict[str, object]]]:
    """Each item checked by ``check`` (item, number) -> its fields; the refused ones with their
    reasons, in the request's order."""
    checked, failures, seen = [], [], set()
    for item in items:
        shown = item.get("phone_number") if isinstance(item, dict) else item
        shown = shown if isinstance(shown, str) else None
        try:
            if not isinstance(item, dict):
                raise _Refused("Not a phone number's details")
            number = e164(item.get("phone_number"))
            if number is None:
                raise _Refused("Invalid number")
            if number in seen:
                raise _Refused("Phone number given twice")
            seen.add(number)
            checked.append(_Checked(number, check(item, number)))  # type: ignore[operator]
        except _Refused as refused:
            failures.append({"phoneNumber": shown, "reason": refused.reason})
    return checked, failures


def add(session: Session, account_id: int, carrier: str, product: object, items: Sequence[object]) -> list[PhoneNumber]:
    """The carrier's numbers, new to Pigeon, into the account (all or nothing)."""
    check_count(items)
    allocated = check_product(product)

    def fields(item: dict, number: str) -> dict[str, object]:
        kind = item.get("number_type")
        if kind not in (None, "Mobile"):
            raise _Refused("number_type is Mobile or not given")
        active = _status(item, required=True)
        return {"sip_trunk_name": _text(item, "sip_trunk_name", required=True),
                "billing_ref_id": _text(item, "billing_ref_id"), "service_info": _text(item, "service_info"),
                "kind": (Kind.MOBILE if kind == "Mobile" else Kind.LOCAL).value,
                "state": (State.ACTIVE if active else State.PENDING).value}

    checked, failures = _check_items(items, fields)
    wanted = [c.number for c in checked]
    existing = set(session.scalars(select(PhoneNumber.number).where(PhoneNumber.number.in_(wanted)))) if wanted else set()
    failures += [{"phoneNumber": c.number, "reason": "Phone Number already exists"} for c in checked
                 if c.number in existing]
    if failures:
        raise ItemsFailed(failures)
    now = utcnow()
    rows = [PhoneNumber(id=secrets.token_urlsafe(16), number=c.number, source=Source.PEERING.value, sms=True, mms=False,
                        voice=True, carrier=carrier, account_id=account_id, is_default=False, product=allocated,
                        created_at=now, updated_at=now, **c.fields) for c in checked]
    session.add_all(rows)
    session.flush()
    return rows


def _provided(session: Session, account_id: int, carrier: str, wanted: list[str]) -> dict[str, PhoneNumber]:
    """Those of ``wanted`` the carrier provided in the account, by number."""
    if not wanted:
        return {}
    rows = session.scalars(select(PhoneNumber).where(
        PhoneNumber.number.in_(wanted), PhoneNumber.account_id == account_id,
        PhoneNumber.source == Source.PEERING.value, PhoneNumber.carrier == carrier))
    return {row.number: row for row in rows}


def update(session: Session, account_id: int, carrier: str, product: object, items: Sequence[object]) -> list[PhoneNumber]:
    """Change the carrier's numbers in the account (all or nothing): their trunk, status,
    billing reference and service text, and their product, which changes only from UNALLOCATED."""
    check_count(items)
    allocated = None if product is None else check_product(product)

    def fields(item: dict, number: str) -> dict[str, object]:
        changes: dict[str, object] = {}
        if item.get("sip_trunk_name") is not None:
            changes["sip_trunk_name"] = _text(item, "sip_trunk_name", required=True)
        for field in ("billing_ref_id", "service_info"):
            if field in item and item[field] is not None:
                changes[field] = _text(item, field) or None  # "" clears it
        active = _status(item, required=False)
        if active is not None:
            changes["state"] = (State.ACTIVE if active else State.PENDING).value
        return changes

    checked, failures = _check_items(items, fields)
    found = _provided(session, account_id, carrier, [c.number for c in checked])
    for c in checked:
        row = found.get(c.number)
        if row is None:
            failures.append({"phoneNumber": c.number, "reason": "Phone number does not exist"})
        elif allocated is not None and allocated != row.product and row.product != UNALLOCATED:
            failures.append({"phoneNumber": c.number, "reason": f"allocated_product is {row.product}: it can be "
                                                                 f"changed only from {UNALLOCATED}"})
    if failures:
        raise ItemsFailed(failures)
    now = utcnow()
    for c in checked:
        row = found[c.number]
        for field, value in c.fields.items():
            setattr(row, field, value)
        if allocated is not None:
            row.product = allocated
        if row.state != State.ACTIVE.value:
            row.is_default = False  # a pending number sends nothing: no longer the account's sender
        row.updated_at = now
    session.flush()
    return [found[c.number] for c in checked]


def delete(session: Session, account_id: int, carrier: str, phone_numbers: Sequence[object]) -> int:
    """Take the carrier's numbers out of Pigeon (all or nothing). Their messages stay."""
    check_count(phone_numbers)
    checked, failures = _check_items([{"phone_number": n} for n in phone_numbers], lambda item, number: {})
    found = _provided(session, account_id, carrier, [c.number for c in checked])
    failures += [{"phoneNumber": c.number, "reason": "Phone number does not exist"} for c in checked
                 if c.number not in found]
    if failures:
        raise ItemsFailed(failures)
    for row in found.values():
        numbers.remove(session, row.id)
    session.flush()
    return len(found)


@dataclass(frozen=True, slots=True)
class Listing:
    """Which peering numbers a list shows: an account's (of one carrier, or of every carrier),
    or one carrier's in every account (``account_id`` None)."""

    account_id: int | None = None
    carrier: str | None = None
    number: str | None = None

    def query(self, *columns):  # type: ignore[no-untyped-def]
        query = select(*columns).where(PhoneNumber.source == Source.PEERING.value)
        if self.account_id is not None:
            query = query.where(PhoneNumber.account_id == self.account_id)
        if self.carrier is not None:
            query = query.where(PhoneNumber.carrier == self.carrier)
        if self.number is not None:
            query = query.where(PhoneNumber.number == self.number)
        return query


def page(session: Session, listing: Listing, *, after: str | None, size: int) -> list[tuple[PhoneNumber, Account | None]]:
    """Up to ``size`` numbers in the order of their stored form, from the one after ``after``,
    each with its account (None: in no account)."""
    query = listing.query(PhoneNumber, Account).outerjoin(Account, Account.id == PhoneNumber.account_id)
    if after is not None:
        query = query.where(PhoneNumber.number > after)
    return [(row, account) for row, account in session.execute(query.order_by(PhoneNumber.number).limit(size))]


def count(session: Session, listing: Listing) -> int:
    return session.scalar(listing.query(func.count()).select_from(PhoneNumber)) or 0
