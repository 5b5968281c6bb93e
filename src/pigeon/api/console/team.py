"""Team: the users of an account with their balances, a new user, a user's console password
and API token, credit transfers, and the account's OAuth clients.

The same rules as the Zoom Connect API's team endpoints (``pigeon.accounts.team`` under
``accounts.policy``): an administrator reaches every user of its team, anyone else only itself
(a team-mate: 403; another account's user: 404). The operator (and a reseller's administrator,
for its customers) picks an account with ``account`` and acts on it as its administrator
(``accounts.members.acting``). Secrets (a made password, an API token, a client's secret) are
shown once, on the page that answers the change. Every change is audited in its transaction.
"""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon import credits
from pigeon.accounts import members, sessions, team
from pigeon.accounts.models import Account, User
from pigeon.accounts.service import Principal, Profile, from_milli, rotate_tokens
from pigeon.api.console.web import (
    MAX_ID,
    PREFIX,
    Visitor,
    account_asked,
    account_picker,
    context,
    page,
    reaches,
    redirect,
    render,
)
from pigeon.audit import service as audit
from pigeon.errors import InsufficientCredits, Invalid, NotFound
from pigeon.oauth import scopes as scope_rules
from pigeon.oauth import service as oauth
from pigeon.oauth.models import OAuthClient

CLIENT_SCOPES = sorted(scope_rules.KNOWN - scope_rules.ZOHO_VOICE)
"""What a console-made client may hold: Zoom's scopes (Zoho's are a self-client's)."""
DONE = {"transfer": "The credits were moved.", "revoke": "The client was revoked: its tokens no longer work."}


# -- what a request names --------------------------------------------------------------------

def _manages(visitor: Visitor) -> bool:
    return visitor.principal.is_admin or visitor.operator


def _account(session: Session, visitor: Visitor, raw: object) -> int:
    """The account a request names (``account``), if the visitor reaches it; else their own."""
    return account_asked(session, visitor, raw)


def _field(request: Request, name: str) -> str:
    value = request.state.form.get(name)
    return value if isinstance(value, str) else ""


def _member(session: Session, visitor: Visitor, raw_id: str) -> tuple[User, Principal]:
    """The user a path names and whom the visitor acts as on its account, under the team's
    policy: a user of an account the visitor does not reach does not exist for them."""
    user_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 10 else 0
    found = session.get(User, user_id) if 0 < user_id <= team.MAX_USER_ID else None
    if found is None or not reaches(session, visitor, found.account_id):
        raise NotFound(f"No user {raw_id} in your team")
    caller = members.acting(session, visitor.principal, found.account_id)
    return team.by_id(session, caller, raw_id), caller


def _record(session: Session, visitor: Visitor, action: str, account_id: int, subject: str,
            detail: str | None = None) -> None:
    audit.record(session, action, actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                 account_id=account_id, subject=subject, detail=detail)


def _credits(milli: int) -> str:
    return f"{from_milli(milli):g}"


# -- the team --------------------------------------------------------------------------------

def _rows(session: Session, visitor: Visitor, account_id: int, after: str, text: str) -> tuple[list[User], str | None]:
    """The users the visitor sees on the account, a page, and the next page's URL: everyone
    for an administrator, only themselves for anyone else."""
    if not _manages(visitor):
        return [session.get_one(User, visitor.principal.user_id)], None
    if after and not (after.isascii() and after.isdigit() and len(after) <= 10 and int(after) <= MAX_ID):
        raise Invalid("That page's position is not valid: start again.")
    found, last = members.page(session, account_id, after=int(after) if after else None, text=text or None)
    more = f"{PREFIX}/team/rows?{urlencode({'account': account_id, 'q': text, 'after': last})}" if last else None
    return found, more


def _team_page(request: Request, visitor: Visitor, account_id: int | None = None, status: int = 200,
               **shown: object) -> Response:
    q = request.query_params
    with context(request).db.read() as session:
        account_id = account_id if account_id is not None else _account(session, visitor, q.get("account"))
        text = q.get("q", "").strip()
        rows, more = _rows(session, visitor, account_id, q.get("after", ""), text)
        return render(request, "team.html", visitor, status=status, rows=rows, more=more, q=text,
                      account=session.get(Account, account_id),
                      picker=account_picker(request, session, visitor, account_id),
                      manages=_manages(visitor), notice=DONE.get(q.get("done", "")), **shown)


@page
def team_view(request: Request, visitor: Visitor) -> Response:
    return _team_page(request, visitor)


@page
def rows(request: Request, visitor: Visitor) -> Response:
    """The next page of users, for the list's infinite scroll."""
    q = request.query_params
    with context(request).db.read() as session:
        account_id = _account(session, visitor, q.get("account"))
        found, more = _rows(session, visitor, account_id, q.get("after", ""), q.get("q", "").strip())
        return render(request, "_team_rows.html", visitor, rows=found, more=more, manages=_manages(visitor))


@page(admin=True)
def create_user(request: Request, visitor: Visitor) -> Response:
    """A new user of the account, its opening balance moved from the administrator's, with a
    console password (typed, or made and shown once) and an API token shown once."""
    typed = _field(request, "password")
    password = sessions.check_new_password(typed) if typed else members.made_password()
    opening = _field(request, "credits").strip()
    milli = credits.amount(opening, "Opening credits", whole=False, allow_zero=True) if opening else 0
    profile = Profile.given(first_name=_field(request, "first_name"), last_name=_field(request, "last_name"),
                            contact_number=_field(request, "contact_number"), company=_field(request, "company"),
                            password=password)
    ctx = context(request)
    with ctx.db.read() as session:
        account_id = _account(session, visitor, request.state.form.get("account"))
        caller = members.acting(session, visitor.principal, account_id)
    new = team.prepare_user(caller, profile, _field(request, "email"), milli, ctx.settings.default_region)
    with ctx.db.write() as session:
        try:
            user = team.create_user(session, caller, new)
        except InsufficientCredits as exc:
            raise Invalid(f"{exc.detail}: {caller.email} cannot give {_credits(milli)} opening credits") from None
        tokens = rotate_tokens(session, user.email)
        _record(session, visitor, "user.create", account_id, user.email,
                f"opening balance {_credits(milli)} from {caller.email}" if milli else None)
    assert tokens is not None
    return _team_page(request, visitor, account_id, created=user, password=None if typed else password,
                      token=tokens.token)


@page
def transfer(request: Request, visitor: Visitor) -> Response:
    """Credits between two users of the team: an administrator from anyone's balance, anyone
    else only from their own."""
    source, target = _field(request, "from").strip(), _field(request, "to").strip()
    if not source or not target:
        raise Invalid("Name the user who gives the credits and the one who gets them")
    milli = credits.amount(_field(request, "credits"), "Credits", whole=True)
    with context(request).db.write() as session:
        account_id = _account(session, visitor, request.state.form.get("account"))
        caller = members.acting(session, visitor.principal, account_id)
        try:
            team.transfer(session, caller, source, target, milli)
        except InsufficientCredits as exc:
            raise Invalid(exc.detail) from None
        _record(session, visitor, "credits.transfer", account_id, f"{source} to {target}",
                f"{_credits(milli)} credits from {source} to {target}")
    return redirect(request, f"/team?account={account_id}&done=transfer")


# -- one user --------------------------------------------------------------------------------

def _user_page(request: Request, visitor: Visitor, status: int = 200, **shown: object) -> Response:
    with context(request).db.read() as session:
        user, _ = _member(session, visitor, request.path_params["user_id"])
        return render(request, "team_user.html", visitor, status=status, user=user, manages=_manages(visitor),
                      account=session.get(Account, user.account_id), balance=_credits(user.credit_balance), **shown)


@page
def user_view(request: Request, visitor: Visitor) -> Response:
    return _user_page(request, visitor)


@page(admin=True)
def set_password(request: Request, visitor: Visitor) -> Response:
    """A user's console password: the one typed, or one made and shown once. Their sessions end."""
    typed = _field(request, "password")
    password = sessions.check_new_password(typed) if typed else members.made_password()
    digest = sessions.hashed(password)  # scrypt before the write, not inside it
    with context(request).db.write() as session:
        user, _ = _member(session, visitor, request.path_params["user_id"])
        sessions.set_password(session, user.id, password, digest=digest)
        _record(session, visitor, "user.password", user.account_id, user.email, "typed" if typed else "made")
    notice = f"{user.email} has a new password; their sessions ended."
    return _user_page(request, visitor, notice=notice, password=None if typed else password)


@page(admin=True)
def new_token(request: Request, visitor: Visitor) -> Response:
    """New API and URL-sending tokens for a user, shown once; the old ones stop working."""
    with context(request).db.write() as session:
        user, _ = _member(session, visitor, request.path_params["user_id"])
        made = rotate_tokens(session, user.email)
        _record(session, visitor, "user.token", user.account_id, user.email)
    assert made is not None
    return _user_page(request, visitor, notice=f"{user.email} has a new API token; the old one no longer works.",
                      token=made.token, url_token=made.url_token)


# -- OAuth clients ---------------------------------------------------------------------------

def _oauth_page(request: Request, visitor: Visitor, account_id: int | None = None, **shown: object) -> Response:
    with context(request).db.read() as session:
        if account_id is None:
            account_id = _account(session, visitor, request.query_params.get("account"))
        owners = dict(session.execute(select(User.id, User.email).join(
            OAuthClient, OAuthClient.user_id == User.id).where(OAuthClient.account_id == account_id)).all())
        return render(request, "team_oauth.html", visitor, clients=oauth.clients(session, account_id), owners=owners,
                      account=session.get(Account, account_id),
                      picker=account_picker(request, session, visitor, account_id),
                      scopes=CLIENT_SCOPES, notice=DONE.get(request.query_params.get("done", "")), **shown)


@page(admin=True)
def oauth_clients(request: Request, visitor: Visitor) -> Response:
    return _oauth_page(request, visitor)


@page(admin=True)
def create_client(request: Request, visitor: Visitor) -> Response:
    """A client of the account with the scopes picked; its secret is shown once."""
    wanted = [s for s in request.state.form.getlist("scopes") if isinstance(s, str)]
    name = _field(request, "name").strip()
    if len(name) > 255:
        raise Invalid("A client's name has at most 255 characters")
    with context(request).db.write() as session:
        account_id = _account(session, visitor, request.state.form.get("account"))
        made = oauth.create_client(session, account_id, wanted, name or None)
        _record(session, visitor, "oauth_client.create", account_id, made.id, scope_rules.written(made.scopes))
    return _oauth_page(request, visitor, account_id, made=made)


@page(admin=True)
def revoke_client(request: Request, visitor: Visitor) -> Response:
    client_id = request.path_params["client_id"]
    with context(request).db.write() as session:
        found = session.get(OAuthClient, client_id) if "\x00" not in client_id else None
        if found is None or not reaches(session, visitor, found.account_id):
            raise NotFound(f"No OAuth client {client_id}")
        oauth.revoke_client(session, found.id)
        _record(session, visitor, "oauth_client.revoke", found.account_id, found.id)
        account_id = found.account_id
    return redirect(request, f"/team/oauth?account={account_id}&done=revoke")


NAV = [("team", "Team")]
ROUTES = [
    Route("/team", team_view, methods=["GET"]),
    Route("/team/rows", rows, methods=["GET"]),
    Route("/team/users", create_user, methods=["POST"]),
    Route("/team/users/{user_id}", user_view, methods=["GET"]),
    Route("/team/users/{user_id}/password", set_password, methods=["POST"]),
    Route("/team/users/{user_id}/token", new_token, methods=["POST"]),
    Route("/team/transfer", transfer, methods=["POST"]),
    Route("/team/oauth", oauth_clients, methods=["GET"]),
    Route("/team/oauth", create_client, methods=["POST"]),
    Route("/team/oauth/{client_id}/revoke", revoke_client, methods=["POST"]),
]
