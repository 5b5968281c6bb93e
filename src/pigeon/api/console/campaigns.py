"""SMS campaigns (10DLC): an account's campaigns with their brand, status, throughput, capacity and
numbers, over ``pigeon.campaigns`` as the Number Management API's view uses it. Everyone sees
their account's; administrators create and edit them and assign and unassign the account's
numbers (all or none, never beyond the capacity, never a number another campaign holds). The
registry's word on a campaign (its status, capacity and throughput) is the operator's to record,
as ``pigeon campaigns`` does: an administrator's new campaign is pending until then."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon.accounts.models import Account
from pigeon.api.console.web import Visitor, account_asked, account_picker, context, page, reaches, redirect, render
from pigeon.audit import service as audit
from pigeon.campaigns import service as campaigns
from pigeon.campaigns.models import SmsCampaign
from pigeon.errors import Invalid, NotFound
from pigeon.numbers import service as numbers
from pigeon.phone import normalise

PAGE_SIZE = 50
FIELDS = ("display_name", "brand_name", "brand_id", "service_type", "status", "capacity", "throughput",
          "opt_in", "opt_out", "help")
DONE = {"created": "The campaign was created.", "updated": "The campaign was saved.",
        "assigned": "The numbers were assigned.", "unassigned": "The numbers were taken out of the campaign."}


# -- plumbing --------------------------------------------------------------------------------

def _field(request: Request, name: str) -> str:
    value = request.state.form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _account(session: Session, visitor: Visitor, raw: str) -> int:
    """The account asked for (the visitor's own when none is), if the visitor reaches it."""
    return account_asked(session, visitor, raw)


def _campaign(session: Session, visitor: Visitor, campaign_id: str) -> SmsCampaign:
    """A campaign of an account the visitor reaches; any other does not exist for them."""
    found = campaigns.get(session, None, campaign_id)
    if found is None or not reaches(session, visitor, found.account_id):
        raise NotFound("No such SMS campaign")
    return found


def _audit(session: Session, visitor: Visitor, action: str, campaign: SmsCampaign, detail: str) -> None:
    audit.record(session, action, actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                 account_id=campaign.account_id, subject=f"{campaign.display_name} ({campaign.id})", detail=detail)


def _capacity(raw: str) -> int | None:
    """Numbers a campaign may hold: a whole number, or blank for no limit."""
    if not raw:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise Invalid("capacity is a whole number of numbers, or blank for no limit")
    return int(raw)


def _throughput(raw: str) -> float | None:
    """Message parts per second, or blank for no limit."""
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Invalid("throughput is message parts per second (such as 4.5), or blank for no limit") from None
    if not math.isfinite(value):
        raise Invalid("throughput is message parts per second (such as 4.5), or blank for no limit")
    return value


def _texts(values: dict[str, str]) -> campaigns.Texts:
    """The automatic answers as the form gives them (blank clears one)."""
    return campaigns.Texts(opt_in=values["opt_in"], opt_out=values["opt_out"], help=values["help"])


def _summary(c: SmsCampaign) -> dict[str, Any]:
    return {"display_name": c.display_name, "status": c.status, "brand_name": c.brand_name, "brand_id": c.brand_id,
            "capacity": c.capacity, "throughput": c.throughput, "opt_in": c.response_to_opt_in,
            "opt_out": c.response_to_opt_out, "help": c.response_to_help}


# -- the list --------------------------------------------------------------------------------

@page
def campaign_list(request: Request, visitor: Visitor) -> Response:
    q = request.query_params
    after = q.get("after") or None
    if after is not None and "\x00" in after:
        raise Invalid("That page's position is not valid: start again.")
    with context(request).db.read() as session:
        account_id = _account(session, visitor, q.get("account", "").strip())
        rows = campaigns.page(session, account_id, after=after, size=PAGE_SIZE + 1)
        more = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
        rows = rows[:PAGE_SIZE]
        held = {c.id: campaigns.count_numbers(session, c) for c in rows}
        more_url = f"?{urlencode({'account': account_id, 'after': more})}" if more else None
        return render(request, "campaigns.html", visitor, rows=rows, held=held, account_id=account_id,
                      picker=account_picker(request, session, visitor, account_id), more=more_url,
                      notice=DONE.get(q.get("done", "")),
                      service_types=campaigns.SERVICE_TYPES, statuses=campaigns.STATUSES, values={})


@page(admin=True)
def create_campaign(request: Request, visitor: Visitor) -> Response:
    values = {name: _field(request, name) for name in FIELDS}
    registry = visitor.operator  # the registry's word is the operator's to record
    with context(request).db.write() as session:
        account_id = _account(session, visitor, _field(request, "account"))
        made = campaigns.create(
            session, account_id, values["display_name"], service_type=values["service_type"] or "zoomPhone",
            brand_id=values["brand_id"] or None, brand_name=values["brand_name"] or None,
            status=(values["status"] or "pending") if registry else "pending",
            capacity=_capacity(values["capacity"]) if registry else None,
            throughput=_throughput(values["throughput"]) if registry else None, texts=_texts(values))
        _audit(session, visitor, "campaign.create", made,
               f"status {made.status}, capacity {made.capacity}, throughput {made.throughput}")
        campaign_id = made.id
    return redirect(request, f"/campaigns/{campaign_id}?done=created")


# -- one campaign ----------------------------------------------------------------------------

@page
def campaign(request: Request, visitor: Visitor) -> Response:
    with context(request).db.read() as session:
        found = _campaign(session, visitor, request.path_params["campaign_id"])
        held = campaigns.numbers_of(session, found)
        account = session.get(Account, found.account_id)
        return render(request, "campaigns_campaign.html", visitor, c=found, held=held,
                      letters=campaigns.authorisations(session, found), account=account,
                      notice=DONE.get(request.query_params.get("done", "")), statuses=campaigns.STATUSES,
                      max_assign=campaigns.MAX_ASSIGN)


@page(admin=True)
def update_campaign(request: Request, visitor: Visitor) -> Response:
    values = {name: _field(request, name) for name in FIELDS}
    registry = visitor.operator
    with context(request).db.write() as session:
        found = _campaign(session, visitor, request.path_params["campaign_id"])
        before = _summary(found)
        campaigns.update_campaign(
            session, found, display_name=values["display_name"], brand_name=values["brand_name"],
            brand_id=values["brand_id"], texts=_texts(values),
            status=(values["status"] or None) if registry else None,
            capacity=_capacity(values["capacity"]) if registry else campaigns.KEEP,
            throughput=_throughput(values["throughput"]) if registry else campaigns.KEEP)
        after = _summary(found)
        changed = [f"{name} {after[name]!r}" for name in after if after[name] != before[name]]
        _audit(session, visitor, "campaign.update", found, ", ".join(changed) or "nothing changed")
        campaign_id = found.id
    return redirect(request, f"/campaigns/{campaign_id}?done=updated")


def _number_ids(session: Session, campaign: SmsCampaign, raw: str, region: str) -> list[str]:
    """The ids of the numbers written one a line (or separated by commas); ``Invalid`` naming
    those the campaign's account does not have."""
    wanted = [part.strip() for part in re.split(r"[\n,;]", raw) if part.strip()]
    if not wanted:
        raise Invalid("Write the numbers to assign, one a line")
    if len(wanted) > campaigns.MAX_ASSIGN:
        raise Invalid(f"At most {campaigns.MAX_ASSIGN} numbers at a time")
    ids, unknown = [], []
    for text in wanted:
        row = numbers.find(session, text)
        if row is None:
            try:
                row = numbers.find(session, normalise(text, region).e164)
            except Invalid:
                row = None
        if row is None or row.account_id != campaign.account_id:
            unknown.append(text)
        else:
            ids.append(row.id)
    if unknown:
        raise Invalid(f"This account has no number {', '.join(unknown)}")
    return ids


@page(admin=True)
def assign_numbers(request: Request, visitor: Visitor) -> Response:
    ctx = context(request)
    by = campaigns.Authorisation(_field(request, "person"), _field(request, "contact_number"),
                                 _field(request, "title"), _field(request, "contact_emails") or None)
    with ctx.db.write() as session:
        found = _campaign(session, visitor, request.path_params["campaign_id"])
        ids = _number_ids(session, found, _field(request, "numbers"), ctx.settings.default_region)
        new = campaigns.assign(session, found, ids, by)
        named = {row.id: row.number for row in (numbers.get(session, i) for i in new) if row is not None}
        _audit(session, visitor, "campaign.assign", found,
               f"{', '.join(named[i] for i in new) or 'no new number'}; authorised by {by.person}")
        campaign_id = found.id
    return redirect(request, f"/campaigns/{campaign_id}?done=assigned")


@page(admin=True)
def unassign_numbers(request: Request, visitor: Visitor) -> Response:
    ids = [value for value in request.state.form.getlist("number_id") if isinstance(value, str) and value]
    if not ids:
        raise Invalid("Tick the numbers to take out of the campaign")
    if any("\x00" in i for i in ids):
        raise Invalid("No such number in this campaign")
    with context(request).db.write() as session:
        found = _campaign(session, visitor, request.path_params["campaign_id"])
        named = dict(campaigns.numbers_of(session, found))
        campaigns.unassign(session, found, ids)
        _audit(session, visitor, "campaign.unassign", found, ", ".join(named.get(i, i) for i in ids))
        campaign_id = found.id
    return redirect(request, f"/campaigns/{campaign_id}?done=unassigned")


NAV = [("campaigns", "Campaigns")]
ROUTES = [
    Route("/campaigns", campaign_list, methods=["GET"]),
    Route("/campaigns", create_campaign, methods=["POST"]),
    Route("/campaigns/{campaign_id}", campaign, methods=["GET"]),
    Route("/campaigns/{campaign_id}", update_campaign, methods=["POST"]),
    Route("/campaigns/{campaign_id}/numbers", assign_numbers, methods=["POST"]),
    Route("/campaigns/{campaign_id}/numbers/remove", unassign_numbers, methods=["POST"]),
]
