"""Port-in orders: numbers an account brings from another carrier, entered by the operator.

While an order runs its numbers are the account's already, source ported and state pending:
they neither send nor receive (nor change account: ``allocation.refusal``). When the order
becomes Successfully they become active, and each ported number that replaces one of the
account's numbers (``replacing``: source, the ported number; target, the number it stands in
for) takes over the target's user, default place, consent policy and campaign. Rejected or
Canceled removes those still pending. Those three are final. A number Pigeon already has, or
that another open order names, cannot be in a new order.

A number the order names may have left it meanwhile (deleted through the API, or moved before
pending numbers stayed put): a status change says which (``Change.missing``). Successfully
activates those still pending in the order's account, and is refused while none is left, or
while one it names is pending somewhere else (the order would report success while that number
stays pending: remove it, or cancel the order).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pigeon.accounts.models import Account
from pigeon.db import utcnow
from pigeon.errors import Conflict, Invalid, NotFound
from pigeon.numbers import service
from pigeon.numbers.allocation import PRODUCTS
from pigeon.numbers.models import Kind, PhoneNumber, PortOrder, PortStatus, Source, State
from pigeon.numbers.sip import kind_of

FINAL = (PortStatus.SUCCESSFULLY, PortStatus.REJECTED, PortStatus.CANCELED)
DETAILS = ("contact_emails", "contact_number", "isp", "printed_name")
BILLING = ("account_number", "authorizing_person", "billing_telephone_number", "company",
           "customer_requested_date", "pin")
ADDRESS = ("city", "country", "house_number", "state_code", "street_name", "zip")
MAX_NUMBERS = 1000
NOT_FOUND = "Port in order does not exist"


def _details(details: Mapping[str, object]) -> dict:
    """The order's details, checked: the contact's texts, and original_billing_info with its address."""
    known = (*DETAILS, "original_billing_info")
    unknown = sorted(set(details) - set(known))
    if unknown:
        raise Invalid(f"Unknown port order detail(s): {', '.join(unknown)}; known: {', '.join(known)}")
    kept: dict[str, object] = {}
    for name in DETAILS:
        value = details.get(name)
        if value is not None:
            if not isinstance(value, str) or len(value) > 500:
                raise Invalid(f"{name} is a text of at most 500 characters")
            kept[name] = value
    billing = details.get("original_billing_info")
    if billing is not None:
        if not isinstance(billing, Mapping):
            raise Invalid("original_billing_info is an object")
        address = billing.get("address", {})
        bad = sorted(set(billing) - {*BILLING, "address"}) + sorted(
            f"address.{key}" for key in (set(address) if isinstance(address, Mapping) else {"?"}) - set(ADDRESS))
        if bad:
            raise Invalid(f"Unknown original_billing_info field(s): {', '.join(bad)}")
        values = [v for k, v in billing.items() if k != "address"] + list(address.values())
        if any(not isinstance(v, str) or len(v) > 200 for v in values):
            raise Invalid("original_billing_info's fields are texts of at most 200 characters")
        kept["original_billing_info"] = dict(billing)
    return kept


def _new_id(session: Session) -> str:
    """Digits, as Zoom's order ids: the time, then five random digits."""
    while True:
        order_id = utcnow().strftime("%Y%m%d%H%M%S") + f"{secrets.randbelow(100_000):05d}"
        if session.get(PortOrder, order_id) is None:
            return order_id


def create(session: Session, account_id: int, numbers: Sequence[str], default_region: str, *,
           replacing: Sequence[tuple[str, str]] = (), details: Mapping[str, object] | None = None,
           product: str = "ZOOM_PHONE") -> PortOrder:
    """A new order (Not_Submitted) porting ``numbers`` into the account, which holds them pending."""
    if session.get(Account, account_id) is None:
        raise NotFound(f"No account {account_id}")
    if product not in PRODUCTS:
        raise Invalid(f"Invalid product {product!r}: one of {', '.join(PRODUCTS)}")
    ported = list(dict.fromkeys(service.canonical(raw, Kind.LOCAL, default_region) for raw in numbers))
    if not ported:
        raise Invalid("A port order needs one number at least")
    if len(ported) > MAX_NUMBERS:
        raise Invalid(f"At most {MAX_NUMBERS} numbers in one order")
    held = list(session.scalars(select(PhoneNumber.number).where(PhoneNumber.number.in_(ported))))
    if held:
        raise Conflict(f"Pigeon has these numbers already: {', '.join(sorted(held))}")
    named = _named_by_open_orders(session, ported)
    if named:
        raise Conflict(f"Open port orders name these numbers already: {', '.join(sorted(named))}")
    pairs = []
    for source, target in replacing:
        source = service.canonical(source, Kind.LOCAL, default_region)
        if source not in ported:
            raise Invalid(f"{source} replaces a number, but is not in the order")
        row = service.find(session, service.canonical(target, Kind.LOCAL, default_region))
        if row is None or row.account_id != account_id:
            raise Invalid(f"{target} is not a number of account {account_id}: {source} cannot replace it")
        pairs.append({"source_number": source, "target_number": row.number})
    if len({pair["source_number"] for pair in pairs}) != len(pairs) or len(
            {pair["target_number"] for pair in pairs}) != len(pairs):
        raise Invalid("Each number replaces one number at most, and is replaced by one at most")
    now = utcnow()
    order = PortOrder(id=_new_id(session), account_id=account_id, status=PortStatus.NOT_SUBMITTED.value,
                      numbers=orjson.dumps(ported).decode(), replacing=orjson.dumps(pairs).decode(),
                      details=orjson.dumps(_details(details or {})).decode(), created_at=now, updated_at=now)
    session.add(order)
    for number in ported:
        row = service.add(session, service.Spec(number, kind_of(number), Source.PORTED, state=State.PENDING),
                          default_region, account_id=account_id)
        row.product = product
    session.flush()
    return order


def get(session: Session, order_id: str) -> PortOrder | None:
    return session.get(PortOrder, order_id) if "\x00" not in order_id else None


def of_account(session: Session, account_id: int, order_id: str) -> PortOrder:
    """The account's order; ``NotFound`` (subject "port order") when unknown or another's."""
    order = get(session, order_id)
    if order is None or order.account_id != account_id:
        raise NotFound(NOT_FOUND, subject="port order")
    return order


def status_of(text: str) -> PortStatus:
    """A status by its name, in any case."""
    for status in PortStatus:
        if status.value.lower() == text.strip().lower():
            return status
    raise Invalid(f"Unknown port status {text!r}: one of {', '.join(s.value for s in PortStatus)}")


def _named_by_open_orders(session: Session, numbers: Sequence[str]) -> set[str]:
    """Those of ``numbers`` that an order not yet final names (its number may have been deleted)."""
    wanted, named = set(numbers), set()
    for listed in session.scalars(select(PortOrder.numbers).where(PortOrder.status.not_in([s.value for s in FINAL]))):
        named |= wanted.intersection(orjson.loads(listed))
    return named


@dataclass(frozen=True, slots=True)
class Change:
    """An order moved on: ``touched``, how many of its numbers became active (Successfully) or
    were removed (Rejected, Canceled); ``missing``, those it names that are no longer pending in
    its account (deleted, or moved), each with where it is."""

    order: PortOrder
    touched: int
    missing: tuple[str, ...] = ()


def _held(order: PortOrder, rows: Sequence[PhoneNumber]) -> list[PhoneNumber]:
    """The order's numbers still pending in its account, as it put them there."""
    return [row for row in rows if row.account_id == order.account_id and row.source == Source.PORTED.value
            and row.state == State.PENDING.value]


def _whereabouts(number: str, row: PhoneNumber | None) -> str:
    if row is None:
        return f"{number} (deleted)"
    where = "the pool" if row.account_id is None else f"account {row.account_id}"
    return f"{number} ({row.state} in {where})"


def change_status(session: Session, order_id: str, status: PortStatus) -> Change:
    """Move an order on. A final order changes no more. Successfully activates the order's
    numbers still pending in its account; ``Conflict`` when none is, or when one it names is
    pending (ported) somewhere else."""
    order = session.get(PortOrder, order_id, with_for_update=True) if "\x00" not in order_id else None
    if order is None:
        raise NotFound(f"No port order {order_id}")
    if order.status in FINAL:
        raise Invalid(f"Port order {order.id} is {order.status}: it changes no more")
    names = orjson.loads(order.numbers)
    rows = {row.number: row for row in session.scalars(
        select(PhoneNumber).where(PhoneNumber.number.in_(names)).with_for_update())}
    held = _held(order, list(rows.values()))
    kept = {row.number for row in held}
    missing = tuple(_whereabouts(number, rows.get(number)) for number in names if number not in kept)
    if status == PortStatus.SUCCESSFULLY:
        astray = [_whereabouts(number, row) for number, row in rows.items() if number not in kept
                  and row.source == Source.PORTED.value and row.state == State.PENDING.value]
        if astray:
            raise Conflict(f"Port order {order.id} cannot be Successfully: {', '.join(astray)} would stay pending "
                           f"outside account {order.account_id}; remove it (pigeon numbers remove) or cancel the order")
        if not held:
            raise Conflict(f"Port order {order.id} cannot be Successfully: none of its numbers is pending in account "
                           f"{order.account_id} any more ({', '.join(missing)}); cancel it instead")
    now = utcnow()
    order.status, order.updated_at = status.value, now
    if status != PortStatus.NOT_SUBMITTED and order.submitted_at is None:
        order.submitted_at = now
    touched = 0
    if status == PortStatus.SUCCESSFULLY:
        for row in held:
            row.state, row.updated_at = State.ACTIVE.value, now
        touched = len(held)
        session.flush()
        _replace(session, order, {row.number: row for row in held})
    elif status in (PortStatus.REJECTED, PortStatus.CANCELED):
        for row in held:
            session.delete(row)
        touched = len(held)
    session.flush()
    return Change(order, touched, missing)


def _replace(session: Session, order: PortOrder, ported: dict[str, PhoneNumber]) -> None:
    """Each ported number takes over what the number it replaces had."""
    for pair in orjson.loads(order.replacing):
        source, target = ported.get(pair["source_number"]), service.find(session, pair["target_number"])
        if source is None or target is None or target.account_id != order.account_id:
            continue
        source.user_id, source.consent_policy_id, source.campaign_id, source.is_default = (
            target.user_id, target.consent_policy_id, target.campaign_id, target.is_default)
        target.user_id = target.consent_policy_id = target.campaign_id = None
        target.is_default = False
        target.updated_at = source.updated_at = utcnow()
        session.flush()


def orders(session: Session, account_id: int | None, *, after: str | None = None,
           size: int | None = None) -> list[PortOrder]:
    """An account's orders (every account's when None) by id, oldest first, after ``after``."""
    query = select(PortOrder).order_by(PortOrder.id)
    if account_id is not None:
        query = query.where(PortOrder.account_id == account_id)
    if after is not None:
        query = query.where(PortOrder.id > after)
    if size is not None:
        query = query.limit(size)
    return list(session.scalars(query))


def count(session: Session, account_id: int) -> int:
    return session.scalar(select(func.count()).select_from(PortOrder).where(PortOrder.account_id == account_id)) or 0
