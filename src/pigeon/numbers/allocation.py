"""Which account and which product a number serves (Zoom's ``allocated_product``), and an
account's number plan.

A number is in the operator's pool (no account, product UNALLOCATED) or an account's, where it
serves ZOOM_PHONE or ZOOM_CONTACT_CENTER. Taking numbers from the pool and returning them is the
operator's master account's to do; an account switches the product of its own numbers. A
request moves all its numbers or none. A number that changes account loses its user, its place
as default, its campaign and its consent policy (``service.allocate``).

Some numbers never change account (nor go to the pool), whoever asks (``refusal``, for
AllocateNumber and ``pigeon numbers allocate`` alike): a pending one (a port order, or its
carrier, has not finished with it), a peering one (its carrier put it in that account) and a
BYOC one (its SIP group serves that account). A BYOC number switches product only to one its
SIP group serves.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pigeon.db import utcnow
from pigeon.errors import Conflict, Forbidden, Invalid, Reason
from pigeon.numbers import service
from pigeon.numbers.models import PhoneNumber, Source, State

PRODUCTS = ("ZOOM_PHONE", "ZOOM_CONTACT_CENTER")
UNALLOCATED = "UNALLOCATED"
PLAN_NAMES = {"local": "Local numbers", "mobile": "Mobile numbers", "toll_free": "Toll-free numbers",
              "short_code": "Short codes", "alphanumeric": "Sender IDs"}
NOT_FOUND = "Phone number not found"


def move(session: Session, rows: Sequence[PhoneNumber], account_id: int | None, product: str | None = None) -> None:
    """Give ``rows`` to an account (None: back to the pool, UNALLOCATED) with ``product`` (None:
    each keeps its own). One that changes account loses its user, default, campaign and policy."""
    leaving = [row.id for row in rows if row.account_id != account_id]
    if leaving:
        service.allocate(session, leaving, account_id)  # the rows see it ("fetch")
    now = utcnow()
    for row in rows:
        if account_id is None:
            row.product = UNALLOCATED
        elif product is not None:
            row.product = product
        row.updated_at = now
    session.flush()


def _where(account_id: int | None) -> str:
    return "the pool" if account_id is None else f"account {account_id}"


def refusal(row: PhoneNumber, account_id: int | None, product: str | None, sip_groups: Collection[str]) -> str | None:
    """Why ``row`` may not go to ``account_id`` (None: the pool) with ``product`` (None: its own),
    or None when it may. ``sip_groups``: the ids of the configured SIP groups that serve
    ``account_id`` for ``product``."""
    if row.account_id != account_id:
        if row.source == Source.PEERING.value:
            return f"{row.number} is a peering number: its carrier put it in {_where(row.account_id)}"
        if row.source == Source.BYOC.value:
            return f"{row.number} is a BYOC number: its SIP group serves {_where(row.account_id)}"
        if row.state == State.PENDING.value:
            doing = " (being ported)" if row.source == Source.PORTED.value else ""
            return f"{row.number} is pending{doing}: it stays in {_where(row.account_id)}"
    wanted = UNALLOCATED if account_id is None else product
    if (row.source == Source.BYOC.value and row.sip_group_id is not None and wanted is not None
            and wanted != row.product and row.sip_group_id not in sip_groups):
        return f"the SIP group of {row.number} does not serve {wanted}"
    return None


def place(session: Session, rows: Sequence[PhoneNumber], account_id: int | None, product: str | None = None, *,
          sip_groups: Collection[str] = ()) -> None:
    """Move ``rows`` as ``move`` does if every one may go (``refusal``); else none moves, and
    ``Conflict`` (subject "allocation") gives each one's reason."""
    if product is not None and product not in PRODUCTS:
        raise Invalid(f"Invalid allocated_product {product!r}: one of {', '.join(PRODUCTS)}")
    reasons = [reason for row in rows if (reason := refusal(row, account_id, product, sip_groups)) is not None]
    if reasons:
        raise Conflict(f"Unable to switch products for the number: {'; '.join(reasons)}", subject="allocation")
    move(session, rows, account_id, product)


def allocate(session: Session, target: int, number_ids: Sequence[str], product: str, *, operator: bool,
             sip_groups: Collection[str] = ()) -> None:
    """AllocateNumber: ``product`` for the ids, in ``target``'s account (UNALLOCATED: back to the
    pool). ``operator``: the caller is the operator's master account, which alone takes numbers
    from the pool and returns them. Any id that is unknown, another account's, or in the pool
    when the caller may not take it refuses the whole request (``Invalid``, UNKNOWN_ITEM); any
    number ``refusal`` keeps where it is, too (``Conflict``). ``sip_groups``: the ids of the
    groups serving the target for ``product``."""
    if product != UNALLOCATED and product not in PRODUCTS:
        raise Invalid(f"Invalid allocated_product {product!r}: one of {', '.join((*PRODUCTS, UNALLOCATED))}")
    if product == UNALLOCATED and not operator:
        raise Forbidden("Only the operator's master account returns numbers to the pool")
    ids = list(dict.fromkeys(number_ids))
    clean = [number_id for number_id in ids if "\x00" not in number_id]
    rows = {row.id: row for row in session.scalars(  # locked: a concurrent request waits, then sees the move
        select(PhoneNumber).where(PhoneNumber.id.in_(clean)).with_for_update())}

    def allowed(row: PhoneNumber | None) -> bool:
        if row is None:
            return False
        if product == UNALLOCATED:
            return row.account_id == target
        return row.account_id == target or (row.account_id is None and operator)

    refused = [number_id for number_id in ids if not allowed(rows.get(number_id))]
    if refused:
        raise Invalid(f"{NOT_FOUND}: {', '.join(refused)}", Reason.UNKNOWN_ITEM)
    chosen = [rows[number_id] for number_id in ids]
    if product == UNALLOCATED:
        place(session, chosen, None, sip_groups=sip_groups)
    else:
        place(session, chosen, target, product, sip_groups=sip_groups)


@dataclass(frozen=True, slots=True)
class Plan:
    """The numbers of one kind an account holds under a product."""

    kind: str
    subscribed: int
    assigned: int  # to a user

    @property
    def name(self) -> str:
        return PLAN_NAMES.get(self.kind, self.kind)

    @property
    def available(self) -> int:
        return self.subscribed - self.assigned


def plans(session: Session, account_id: int, product: str, *, after: str | None, size: int) -> list[Plan]:
    """Up to ``size`` plans of the account under ``product``, one per kind of number, in the
    order of the kinds, from the kind after ``after``."""
    query = (select(PhoneNumber.kind, func.count(), func.count(PhoneNumber.user_id))
             .where(PhoneNumber.account_id == account_id, PhoneNumber.product == product)
             .group_by(PhoneNumber.kind).order_by(PhoneNumber.kind).limit(size))
    if after is not None:
        query = query.where(PhoneNumber.kind > after)
    return [Plan(kind, subscribed, assigned) for kind, subscribed, assigned in session.execute(query)]
