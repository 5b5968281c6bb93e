"""The team endpoints: users as sub-accounts of one team, credit transfers, statistics.

Who reaches whom: an administrator every user of its team, anyone else only itself (another
user of the team: 403, code 13). A user of another team, like an unknown one, does not exist
for the caller (404, code 7), so ids and emails of other teams reveal nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session
from starlette.responses import Response

from pigeon.accounts import service as accounts
from pigeon.accounts import statistics
from pigeon.accounts.models import MILLI
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import Principal, Profile, from_milli
from pigeon.api.formats import render
from pigeon.api.zoomconnect.deps import PREFIX, CurrentUser, runtime
from pigeon.api.zoomconnect.errors import Code, ZoomError
from pigeon.api.zoomconnect.params import local_day
from pigeon.api.zoomconnect.present import timestamp
from pigeon.api.zoomconnect.schemas import Body as RequestBody
from pigeon.api.zoomconnect.schemas import Text
from pigeon.db import utcnow
from pigeon.phone import InvalidNumber

router = APIRouter(prefix=PREFIX)

MAX_CREDITS = 2**31 - 1  # the swagger's int32; also keeps balances far from BIGINT's limits
MAX_USER_ID = 2**31 - 1  # users.id is an INTEGER
DEFAULT_WINDOW = dt.timedelta(days=30)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
DAY_MONTH_YEAR = re.compile(r"(\d{2})-(\d{2})-(\d{4})")
LIMITS = {"firstName": 255, "lastName": 255, "company": 255, "password": 1024, "emailAddress": 320}


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


def _invalid(message: str) -> ZoomError:
    return ZoomError(400, Code.INVALID_REQUEST, message)


def _given(value: str | None, name: str) -> str | None:
    """A text field with surrounding blanks removed; None when missing or blank."""
    if value is None or not value.strip():
        return None
    if len(value) > LIMITS.get(name, 255):
        raise _invalid(f"{name} is longer than {LIMITS.get(name, 255)} characters")
    return value.strip() if name != "password" else value


def _required(value: str | None, name: str) -> str:
    given = _given(value, name)
    if given is None:
        raise _invalid(f"{name} is required")
    return given


def _milli(value: object, name: str, *, whole: bool, allow_zero: bool = False) -> int:
    """Credits given as a number (or its text, as XML gives it) in thousandths; 400 code 1
    unless finite, positive (or zero if allowed), at most MAX_CREDITS, and whole (or, when
    not ``whole``, with at most 3 decimals: credits are kept in thousandths)."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        amount = Decimal(value.strip() if isinstance(value, str) else repr(value))
    except (InvalidOperation, ValueError):
        raise _invalid(f"{name} must be a number, not {value!r}") from None
    step = Decimal(1) if whole else Decimal("0.001")
    if (
        not amount.is_finite()
        or amount < 0
        or (amount == 0 and not allow_zero)
        or amount > MAX_CREDITS
        or amount != amount.quantize(step)
    ):
        kind = "a whole number" if whole else "a number with at most 3 decimals"
        least = "0 or more" if allow_zero else "above 0"
        raise _invalid(f"{name} must be {kind}, {least} and up to {MAX_CREDITS}, not {value!r}")
    return int(amount * MILLI)


def _profile(body: UserRequest) -> Profile:
    return Profile(
        first_name=_given(body.firstName, "firstName"),
        last_name=_given(body.lastName, "lastName"),
        contact_number=_given(body.contactNumber, "contactNumber"),
        company=_given(body.company, "company"),
        password=_given(body.password, "password"),
    )


def _columns(request: Request, profile: Profile) -> dict[str, str]:
    try:
        return accounts.profile_columns(profile, runtime(request).settings.default_region)
    except InvalidNumber as exc:
        raise ZoomError(400, Code.INVALID_NUMBER, f"Invalid contactNumber: {exc}") from None


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


# -- who reaches whom ----------------------------------------------------------------------

def _reach(caller: Principal, user: UserRow | None, name: object) -> UserRow:
    """``user`` if the caller may see and change it; else 404 (not in the team) or 403."""
    if user is None or user.account_id != caller.account_id:
        raise ZoomError(404, Code.NOT_FOUND, f"No user {name} in your team")
    if not caller.is_admin and user.id != caller.user_id:
        raise ZoomError(403, Code.FORBIDDEN, f"Only a team administrator can reach user {name}")
    return user


def _by_id(session: Session, caller: Principal, raw_id: str) -> UserRow:
    """The user a path names; an id that is not a whole number in range is simply not found."""
    user_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 10 else 0
    found = accounts.team_user(session, caller.account_id, user_id) if 0 < user_id <= MAX_USER_ID else None
    return _reach(caller, found, raw_id)


def _member(session: Session, caller: Principal, email: str) -> UserRow:
    """A user of the caller's team, whoever the caller is; 404 naming the email if none."""
    found = accounts.team_user_by_email(session, caller.account_id, email)
    if found is None:
        raise ZoomError(404, Code.NOT_FOUND, f"No user {email} in your team")
    return found


# -- users ---------------------------------------------------------------------------------

@router.get("/account/user", summary="Find the users of your team whose email contains searchEmail")
def search_users(request: Request, user: CurrentUser, searchEmail: str | None = None) -> Response:
    """Case-insensitive; an administrator searches its whole team, anyone else only itself."""
    if searchEmail is None or not searchEmail.strip():
        raise _invalid("searchEmail is required")
    with runtime(request).db.read() as session:
        found = accounts.search_team_users(session, user.account_id, searchEmail)
        visible = [web_user(u) for u in found if user.is_admin or u.id == user.user_id]
    return render(request, {"webServiceUserList": visible}, "webServiceUsers")


@router.put("/account/user", summary="Create a sub-account in your team (administrators only)")
def create_user(request: Request, user: CurrentUser, body: Annotated[UserRequest | None, Body()] = None) -> Response:
    """Requires firstName, lastName, emailAddress, contactNumber and password. An optional
    creditBalance is transferred from your own balance (402, code 5, if you lack it)."""
    if not user.is_admin:
        raise ZoomError(403, Code.FORBIDDEN, "Only a team administrator can create users")
    body = body or UserRequest()
    profile, email = _profile(body), _given(body.emailAddress, "emailAddress") or ""
    required = {"firstName": profile.first_name, "lastName": profile.last_name, "emailAddress": email,
                "contactNumber": profile.contact_number, "password": profile.password}
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise _invalid(f"Missing required field(s): {', '.join(missing)}")
    if not EMAIL.fullmatch(email):
        raise _invalid(f"emailAddress {email!r} is not an email address")
    opening = body.creditBalance
    milli = 0 if opening is None or opening == "" else _milli(opening, "creditBalance", whole=False, allow_zero=True)
    columns = _columns(request, profile)
    try:
        with runtime(request).db.write() as session:
            created = accounts.create_sub_account(session, user, email, columns, milli=milli)
            return render(request, web_user(created), "webServiceUser")
    except accounts.EmailTaken:
        raise ZoomError(409, Code.DUPLICATE, f"A user with email {email} already exists") from None
    except accounts.InsufficientCredits as exc:
        raise ZoomError(402, Code.INSUFFICIENT_CREDITS, str(exc)) from None


@router.get("/account/user/{userId}", summary="A user of your team")
def get_user(request: Request, user: CurrentUser, userId: str) -> Response:
    with runtime(request).db.read() as session:
        return render(request, web_user(_by_id(session, user, userId)), "webServiceUser")


@router.post("/account/user/{userId}", summary="Update a user of your team")
def update_user(
    request: Request, user: CurrentUser, userId: str, body: Annotated[UserRequest | None, Body()] = None
) -> Response:
    """Changes firstName, lastName, contactNumber, password and company; a field missing,
    null or blank is left as it is. The email and the balance never change here."""
    columns = _columns(request, _profile(body or UserRequest()))
    with runtime(request).db.write() as session:
        target = accounts.update_user(session, _by_id(session, user, userId), columns)
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
        raise _invalid("numberOfCreditsToTransfer is required")
    milli = _milli(body.numberOfCreditsToTransfer, "numberOfCreditsToTransfer", whole=True)
    if accounts.normalise_email(source_email) == accounts.normalise_email(target_email):
        raise _invalid("transferFromEmailAddress and transferToEmailAddress are the same user")
    with runtime(request).db.write() as session:
        source, target = _member(session, user, source_email), _member(session, user, target_email)
        if not user.is_admin and source.id != user.user_id:
            raise ZoomError(403, Code.FORBIDDEN, "Only a team administrator can transfer another user's credits")
        try:
            accounts.transfer_credits(session, source.id, target.id, milli)
        except accounts.InsufficientCredits as exc:
            raise ZoomError(402, Code.INSUFFICIENT_CREDITS, f"{exc} from {source.email}") from None
        session.refresh(target)
        return render(request, web_user(target), "webServiceUser")


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
        raise ZoomError(400, Code.INVALID_DATE, "from must be before to")
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
        if userEmailAddress and userEmailAddress.strip():
            users = [_reach(user, _member(session, user, userEmailAddress), userEmailAddress)]
        elif user.is_admin:
            users = accounts.team_users(session, user.account_id)
        else:
            users = [_by_id(session, user, str(user.user_id))]
        result = statistics.report(
            session, [u.id for u in users], since, until, campaign=campaign or None,
            include_refunded_and_optout=includeRefundedAndOptout, credit_value=calculateCreditValue,
        )
        body = web_report(result, users, since, until, credit_value=calculateCreditValue)
    return render(request, body, "webServiceAccountStatistics")
