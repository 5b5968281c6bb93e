"""BYOC: the SIP trunks and groups the configuration declares (``[[sip_trunks]]``,
``[[sip_groups]]``), which of them an account may use for a product, and the numbers an
account brings over them.

A trunk or group with ``accounts`` unset serves every account; one whose ``source_system`` is
COMMON serves both products. A group is usable when it and its trunk both serve the account
and the group serves the product. A BYOC number belongs to the account that added it, serves
the product it was added for, and goes out through its group's trunk's carrier (none: the
router decides). Adding is all or nothing: the numbers that cannot be added are listed, each
with its reason, and none is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import orjson
import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from pigeon.carriers.settings import SipGroupSettings, SipTrunkSettings
from pigeon.config import Settings
from pigeon.errors import Invalid, NotFound, Reason
from pigeon.numbers import service
from pigeon.numbers.allocation import PRODUCTS
from pigeon.numbers.models import Kind, PhoneNumber, Source

MAX_BYOC = 100
FORMAT_INVALID, EXISTS = "Phone Number format invalid", "Phone Number already exists"
Configured = TypeVar("Configured", SipTrunkSettings, SipGroupSettings)
KINDS = {phonenumbers.PhoneNumberType.MOBILE: Kind.MOBILE, phonenumbers.PhoneNumberType.TOLL_FREE: Kind.TOLL_FREE}


def _serves(accounts: list[int] | None, account_id: int) -> bool:
    return accounts is None or account_id in accounts


def _for(source_system: str, product: str) -> bool:
    return source_system in ("COMMON", product)


def trunks(settings: Settings, account_id: int, product: str) -> list[SipTrunkSettings]:
    """The trunks the account may use for ``product``, by id."""
    return sorted((trunk for trunk in settings.sip_trunks
                   if _serves(trunk.accounts, account_id) and _for(trunk.source_system, product)),
                  key=lambda trunk: trunk.id)


def groups(settings: Settings, account_id: int, product: str) -> list[SipGroupSettings]:
    """The groups the account may use for ``product`` (their trunks serve it too), by id."""
    served = {trunk.id for trunk in settings.sip_trunks if _serves(trunk.accounts, account_id)}
    return sorted((group for group in settings.sip_groups
                   if group.trunk in served and _serves(group.accounts, account_id)
                   and _for(group.source_system, product)), key=lambda group: group.id)


def trunk_of(settings: Settings, group: SipGroupSettings) -> SipTrunkSettings:
    return next(trunk for trunk in settings.sip_trunks if trunk.id == group.trunk)


def group_names(settings: Settings) -> dict[str, str]:
    """Each configured group's display name, by id."""
    return {group.id: group.display_name for group in settings.sip_groups}


def after(rows: Sequence[Configured], key: str | None, size: int) -> list[Configured]:
    """Up to ``size`` of ``rows`` (sorted by id) after ``key``."""
    return [row for row in rows if key is None or row.id > key][:size]


@dataclass(frozen=True, slots=True)
class Byoc:
    """An AddBYOCPhoneNumber request."""

    product: str
    numbers: Sequence[str]
    country_iso: str | None = None
    sip_group_id: str | None = None


def _e164(raw: str, country_iso: str | None) -> tuple[str, Kind] | str:
    """The E.164 form and kind of a number given in E.164 or local to ``country_iso``; else why not."""
    text = raw.strip()
    if not text.startswith("+") and country_iso is None:
        return f"{FORMAT_INVALID}: country_iso is required for a local number"
    if not text or len(text) > 32 or "\x00" in text:
        return FORMAT_INVALID
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else country_iso)
    except phonenumbers.NumberParseException:
        return FORMAT_INVALID
    if not phonenumbers.is_valid_number(parsed):
        return FORMAT_INVALID
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), _kind(parsed)


def _kind(parsed: phonenumbers.PhoneNumber) -> Kind:
    return KINDS.get(phonenumbers.number_type(parsed), Kind.LOCAL)


def kind_of(e164: str) -> Kind:
    """Mobile, toll-free or (any other) local, for a valid E.164 number."""
    return _kind(phonenumbers.parse(e164, None))


def add_byoc(session: Session, settings: Settings, account_id: int, request: Byoc) -> list[PhoneNumber]:
    """Add an account's own numbers, reached over one of its SIP groups; all or none."""
    if request.product not in PRODUCTS:
        raise Invalid(f"Invalid allocated_product {request.product!r}: one of {', '.join(PRODUCTS)}")
    if not request.numbers:
        raise Invalid("Invalid field: phone_numbers required")
    if len(request.numbers) > MAX_BYOC:
        raise Invalid(f"Too many numbers, should less than {MAX_BYOC}", Reason.TOO_MANY_ITEMS, subject="byoc numbers")
    country = request.country_iso.strip().upper() if request.country_iso is not None else None
    if country is not None and country not in phonenumbers.SUPPORTED_REGIONS:
        raise Invalid(f"Invalid country_iso {request.country_iso!r}: a two-letter ISO 3166 country code")
    usable = groups(settings, account_id, request.product)
    if not usable:
        raise Invalid("BYOC Phone Numbers are not enabled for this account", subject="byoc")
    group = None
    if request.sip_group_id is not None and request.sip_group_id != "":
        group = next((g for g in usable if g.id == request.sip_group_id), None)
        if group is None:
            raise NotFound("Sip Group not found", subject="sip group")
    elif request.product == "ZOOM_CONTACT_CENTER":
        raise Invalid("Invalid field: sip_group_id is required for a ZOOM_CONTACT_CENTER number")
    failed: list[dict[str, str]] = []
    wanted: dict[str, Kind] = {}
    for raw in request.numbers:
        found = _e164(raw, country)
        if isinstance(found, str):
            failed.append({"phoneNumber": raw, "reason": found})
        else:
            wanted.setdefault(*found)
    taken = set(session.scalars(select(PhoneNumber.number).where(PhoneNumber.number.in_(list(wanted)))))
    failed += [{"phoneNumber": number, "reason": EXISTS} for number in wanted if number in taken]
    if failed:
        raise Invalid(orjson.dumps(failed).decode(), Reason.ITEMS_FAILED)
    carrier = trunk_of(settings, group).carrier if group is not None else None
    made = []
    for number, kind in wanted.items():
        row = service.add(session, service.Spec(number, kind, Source.BYOC, sms=True, voice=True, carrier=carrier),
                          settings.default_region, account_id=account_id)
        row.product, row.sip_group_id = request.product, group.id if group is not None else None
        made.append(row)
    session.flush()
    return made
