"""The team endpoints: users as sub-accounts of one team, credit transfers, statistics.

Who reaches whom is the team's policy (``pigeon.accounts.policy``): an administrator every
user of its team, anyone else only itself (another user of the team: 403, code 13). A user of
another team, like an unknown one, does not exist for the caller (404, code 7). Each change
writes its audit entry in the transaction of the change (user.create, user.update,
credits.transfer).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import Field
from starlette.responses import Response

from pigeon import credits
from pigeon.accounts import service as accounts
from pigeon.accounts import statistics, team
from pigeon.accounts.models import MILLI
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import Profile, from_milli
from pigeon.api.actors import user_actor
from pigeon.api.formats import render
from pigeon.api.zoomconnect.deps import CurrentUser, runtime
from pigeon.api.zoomconnect.params import local_day
from pigeon.api.zoomconnect.present import timestamp
from pigeon.api.zoomconnect.schemas import Body as RequestBody
from pigeon.api.zoomconnect.schemas import Text
from pigeon.db import utcnow
from pigeon.errors import Invalid, Reason

router = APIRouter()

DEFAULT_WINDOW = dt.timedelta(days=30)
DAY_MONTH_YEAR = re.compile(r"(\d{2})-(\d{2})-(\d{4})")
FIELDS = {"first_name": "firstName", "last_name": "lastName", "contact_number": "contactNumber",
          "company": "company", "password_hash": "password"}  # a profile's columns as the API names them


# -- request bodies ------------------------------------------------------------------------

class UserRequest(RequestBody):
    """WebServiceUser. userId is ignored (the path names the user); so are emailAddress and
    creditBalance on update: an email never changes, and balances move only by transfer."""

    userId: Any = None
    emailAddress: Text = Field(None, examples=["jane@example.com"])
    firstName: Text = None
    lastName: Text = None
    contactNumber: Text = Field(None, examples=["+27821234567"])
    company: Text = None
    password: Text = None
    creditBalance: Any = Field(None, description="On create: credits moved from your balance to the new user's")


class TransferRequest(RequestBody):
    """WebServiceTransferCreditsRequest."""

    transferFromEmailAddress: Text = None
    transferToEmailAddress: Text = None
    numberOfCreditsToTransfer: Any = Field(None, description="A positive whole number", examples=[10])


def _profile(body: UserRequest) -> Profile:
    return Profile.given(first_name=body.firstName, last_name=body.lastName, contact_number=body.contactNumber,
                         company=body.company, password=body.password)


def _columns(request: Request, profile: Profile) -> dict[str, str]:
    return accounts.profile_columns(profile, runtime(request).settings.default_region)


def _credits(milli: int) -> str:
    return f"{from_milli(milli):g}"


# -- presenters ----------------------------------------------------------------------------

def web_user(user: UserRow) -> dict:
    """WebServiceUser; never a password, nor its hash."""
    return {
        "userId": user.id,
        "emailAddress": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "contactNumber": user.contact_number,
        "company": user.company,
        "creditBalance": from_milli(user.credit_balance),
        "password": None,
    }


def web_statistics(figures: statistics.Figures, unit: int) -> dict:
    """WebServiceStatistics: counts (unit 1) or credits (unit MILLI), as numbers."""
    return {
        "delivered": figures.delivered / unit,
        "failed": figures.failed / unit,
        "failedOptout": figures.failed_optout / unit,
        "failedRefunded": figures.failed_refunded / unit,
        "sent": figures.sent / unit,
        "total": figures.total / unit,
    }


def web_report(
    report: statistics.Report, users: list[UserRow], since: dt.datetime, until: dt.datetime, *, credit_value: bool
) -> dict:
    """WebServiceAccountStatistics; ``to`` is the end of the window, exclusive."""
    unit = MILLI if credit_value else 1
    return {
        "from": timestamp(since),
        "to": timestamp(until),
        "grandTotal": web_statistics(report.grand_total, unit),
        "showingCreditValue": credit_value,
        "users": [
            {
                "user": web_user(user),
                "total": web_statistics(figures.total, unit),
                "campaigns": [
                    {"campaign": name, "statistics": web_statistics(campaign, unit)}
                    for name, campaign in figures.sorted_campaigns()
                ],
            }
            for user, figures in zip(users, report.users)
        ],
    }


# -- users ---------------------------------------------------------------------------------

def _required(value: str | None, name: str) -> str:
    if value is None or not value.strip():
        raise Invalid(f"{name} is required")
    return value.strip()


@router.get("/account/user", summary="Find the users of your team whose email contains searchEmail")
def search_users(request: Request, user: CurrentUser, searchEmail: str | None = None) -> Response:
    """Case-insensitive; an administrator searches its whole team, anyone else only itself."""
    text = _required(searchEmail, "searchEmail")
    with runtime(request).db.read() as session:
        found = [web_user(u) for u in team.search(session, user, text)]
    return render(request, {"webServiceUserList": found}, "webServiceUsers")


@router.put("/account/user", summary="Create a sub-account in your team (administrators only)")
def create_user(request: Request, user: CurrentUser, body: Annotated[UserRequest | None, Body()] = None) -> Response:
    """Requires firstName, lastName, emailAddress, contactNumber and password. An optional
    creditBalance is transferred from your own balance (402, code 5, if you lack it)."""
    body = body or UserRequest()
    opening = body.creditBalance
    milli = 0 if opening is None or opening == "" else credits.amount(opening, "creditBalance", whole=False,
                                                                      allow_zero=True)
    rt = runtime(request)
    new = team.prepare_user(user, _profile(body), body.emailAddress, milli, rt.settings.default_region)
    with rt.db.write() as session:
        made = team.create_user(session, user, new)
        user_actor(user).record(session, "user.create", account_id=made.account_id, subject=made.email,
                                detail=f"user {made.id} created" + (
                                    f", opening balance {_credits(milli)} credits from {user.email}" if milli else ""))
        return render(request, web_user(made), "webServiceUser")


@router.get("/account/user/{userId}", summary="A user of your team")
def get_user(request: Request, user: CurrentUser, userId: str) -> Response:
    with runtime(request).db.read() as session:
        return render(request, web_user(team.by_id(session, user, userId)), "webServiceUser")


@router.post("/account/user/{userId}", summary="Update a user of your team")
def update_user(
    request: Request, user: CurrentUser, userId: str, body: Annotated[UserRequest | None, Body()] = None
) -> Response:
    """Changes firstName, lastName, contactNumber, password and company; a field missing,
    null or blank is left as it is. The email and the balance never change here."""
    columns = _columns(request, _profile(body or UserRequest()))
    with runtime(request).db.write() as session:
        target = team.by_id(session, user, userId)
        before = {name: getattr(target, name) for name in columns}
        accounts.update_user(session, target, columns)
        changed = [FIELDS.get(name, name) for name in columns  # a password is new however it compares
                   if name == "password_hash" or getattr(target, name) != before[name]]
        user_actor(user).record(session, "user.update", account_id=target.account_id, subject=target.email,
                                detail=f"changed {', '.join(changed)}" if changed else "nothing changed")
        return render(request, web_user(target), "webServiceUser")


# -- credits -------------------------------------------------------------------------------

@router.post("/account/transfer", summary="Transfer credits between two users of your team")
def transfer(request: Request, user: CurrentUser, body: Annotated[TransferRequest | None, Body()] = None) -> Response:
    """Moves a positive whole number of credits, atomically. Answers with the user RECEIVING
    the credits (the swagger names one WebServiceUser; the receiver's new balance is the news).
    Only an administrator moves credits out of another user's balance."""
    body = body or TransferRequest()
    source_email = _required(body.transferFromEmailAddress, "transferFromEmailAddress")
    target_email = _required(body.transferToEmailAddress, "transferToEmailAddress")
    if body.numberOfCreditsToTransfer is None:
        raise Invalid("numberOfCreditsToTransfer is required")
    milli = credits.amount(body.numberOfCreditsToTransfer, "numberOfCreditsToTransfer", whole=True)
    with runtime(request).db.write() as session:
        shown = team.transfer(session, user, source_email, target_email, milli)
        source, target = team.member(session, user, source_email), team.member(session, user, target_email)
        user_actor(user).record(session, "credits.transfer", account_id=source.account_id,  # where they left
                                subject=f"{source.email} to {target.email}",
                                detail=f"{_credits(milli)} credits from {source.email} (account {source.account_id}) "
                                       f"to {target.email} (account {target.account_id})")
        return render(request, web_user(shown), "webServiceUser")


# -- statistics ----------------------------------------------------------------------------

def _day(request: Request, value: str | None, name: str, *, end: bool = False) -> dt.datetime | None:
    """A ``yyyyMMdd`` day (or the swagger's ``dd-MM-yyyy``) in the configured zone, as naive UTC."""
    if value is not None and (match := DAY_MONTH_YEAR.fullmatch(value.strip())):
        value = match[3] + match[2] + match[1]
    return local_day(runtime(request), value, name, end=end)


def _window(request: Request, start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    """``[from, to)``: ``to`` is inclusive as a day, so the window ends when the next begins.
    Without ``to`` it ends now; without ``from`` it starts 30 days before its end."""
    until = _day(request, end, "to", end=True) or utcnow()
    since = _day(request, start, "from") or until - DEFAULT_WINDOW
    if since >= until:
        raise Invalid("from must be before to", Reason.INVALID_DATE)
    return since, until


@router.get("/account/statistics", summary="The statistics report: your team's messages by status")
def account_statistics(
    request: Request,
    user: CurrentUser,
    userEmailAddress: str | None = None,
    campaign: str | None = None,
    includeRefundedAndOptout: bool = False,
    calculateCreditValue: bool = False,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
) -> Response:
    """Outbound messages created in [from, to): ``sent`` counts SENT and UNKNOWN; SCHEDULED is
    only in ``total``; FAILED_REFUNDED and FAILED_OPTOUT count only with
    includeRefundedAndOptout; calculateCreditValue sums credits instead of counting."""
    since, until = _window(request, from_, to)
    with runtime(request).db.read() as session:
        users = team.reported(session, user, (userEmailAddress or "").strip() or None)
        result = statistics.report(
            session, [u.id for u in users], since, until, campaign=campaign or None,
            include_refunded_and_optout=includeRefundedAndOptout, credit_value=calculateCreditValue,
        )
        body = web_report(result, users, since, until, credit_value=calculateCreditValue)
    return render(request, body, "webServiceAccountStatistics")
