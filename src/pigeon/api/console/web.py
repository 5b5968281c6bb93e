"""What every console page shares: the signed-in visitor, the CSRF check, the templates, and
the security headers.

A page is a plain function ``(request, visitor) -> Response`` wrapped by ``page``: it runs in
a worker thread (the services are synchronous; an ``async`` one, which awaits the accept
batcher, runs on the loop), only for a signed-in visitor (others are sent
to the sign-in page; an htmx request gets ``HX-Redirect``), and, for anything but GET and
HEAD, only with the session's CSRF token in the form (``csrf``) or the ``X-CSRF-Token``
header, which htmx sends from the page's ``<body hx-headers>``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import ColumnElement, func, or_, select, true
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeon import __version__
from pigeon.accounts import policy
from pigeon.accounts.models import Account
from pigeon.accounts.service import Principal
from pigeon.accounts.sessions import find_session, touch_session
from pigeon.config import Settings
from pigeon.db import Database, utcnow
from pigeon.errors import Conflict, Forbidden, InsufficientCredits, Invalid, NotFound, TooMany
from pigeon.runtime import Runtime

PREFIX = "/console"
SESSION_COOKIE = "pigeon_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD"}

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")  # autoescapes .html
templates.env.globals.update(version=__version__, prefix=PREFIX, nav=[])  # nav: the screens beyond Messages


def shown_status(message: Any) -> str:
    """A message's status in the console's words: Zoom Connect says SCHEDULED for every message
    not yet sent, but one with no time ahead of it is waiting in the queue: QUEUED."""
    status, at = str(message.status), getattr(message, "scheduled_for", None)
    if status == "SCHEDULED" and (at is None or at <= utcnow()):
        return "QUEUED"
    return status


templates.env.filters["shown_status"] = shown_status

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """ASGI middleware: every console answer gets the CSP and its kin, and is never cached."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in HEADERS if h[0] not in names]
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is signed in: their principal, their session's CSRF token and hash, and their role."""

    principal: Principal
    csrf: str
    session_hash: str
    operator: bool  # the operator's master account: sees every account
    account_name: str

    @property
    def role(self) -> str:
        return "operator" if self.operator else "administrator" if self.principal.is_admin else "user"


@dataclass(frozen=True, slots=True)
class Context:
    """What a page's function needs beside the request: the database and the settings."""

    db: Database
    settings: Settings
    runtime: Runtime  # its sender and accept batcher, for the pages that send


def context(request: Request) -> Context:
    return request.app.state.console


def visitor_of(request: Request) -> Visitor | None:
    """The signed-in visitor of this request, or None (read in a worker thread)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    ctx = context(request)
    now = utcnow()
    with ctx.db.read() as session:
        found = find_session(session, token, now, idle=dt.timedelta(minutes=ctx.settings.console.idle_minutes),
                             lifetime=dt.timedelta(hours=ctx.settings.console.lifetime_hours))
        if found is None:
            return None
        account = session.get(Account, found.principal.account_id)
    if found.stale:
        with ctx.db.write() as session:
            touch_session(session, found.token_hash, now)
    operator = account is not None and account.is_master and account.parent_id is None and found.principal.is_admin
    return Visitor(found.principal, found.csrf, found.token_hash, operator, account.name if account else "")


def redirect(request: Request, path: str) -> Response:
    """Go to ``path`` (under the console): a 303, or ``HX-Redirect`` for htmx."""
    url = PREFIX + path
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def to_sign_in(request: Request) -> Response:
    """To the sign-in page, and back here after it: for htmx, back to the page that asked
    (``HX-Current-URL``), not to the fragment it polled."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    current = request.headers.get("hx-current-url")
    if current:
        parts = urlsplit(current)
        here = parts.path + (f"?{parts.query}" if parts.query else "")
    return redirect(request, f"/sign-in?next={quote(here, safe='')}")


MAX_ID = 2**31 - 1


def account_param(raw: str | None) -> int | None:
    """An ``account`` (or other id) parameter as an int; None when absent. Anything that is
    not a plain decimal within the databases' integers names no account: ``NotFound``."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 0 < int(raw) <= MAX_ID):
        raise NotFound(f"No account {raw[:20]}")
    return int(raw)


async def form_of(request: Request) -> FormData:
    return await request.form(max_files=10, max_fields=200)


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())


STATUSES = {Forbidden: 403, Invalid: 400, NotFound: 404, Conflict: 409, InsufficientCredits: 402, TooMany: 429}
Handler = Callable[[Request, Visitor], Any]


def page(fn: Handler | None = None, *, admin: bool = False, operator: bool = False) -> Any:
    """A console page for signed-in visitors (``admin``: administrators and the operator only;
    ``operator``: the operator only); unsafe methods need the session's CSRF token."""

    def wrap(handler: Handler) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            visitor = await run_in_threadpool(visitor_of, request)
            if visitor is None:
                return to_sign_in(request)
            if any("\x00" in value for value in request.query_params.values()):
                return refused(request, visitor, 400, "A parameter holds a NUL character.")
            if request.method not in SAFE_METHODS:
                form = await form_of(request)
                if any(isinstance(value, str) and "\x00" in value for value in form.values()):
                    return refused(request, visitor, 400, "A field holds a NUL character.")
                request.state.form = form
                given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
                if not csrf_matches(visitor.csrf, given if isinstance(given, str) else None):
                    return refused(request, visitor, 403, "This form has expired or did not come from this console. "
                                                          "Reload the page and try again.")
            if operator and not visitor.operator:
                return refused(request, visitor, 403, "Only the operator (an administrator of the master account) "
                                                      "can open this page.")
            if admin and not (visitor.principal.is_admin or visitor.operator):
                return refused(request, visitor, 403, "Only an administrator can open this page.")
            try:
                if inspect.iscoroutinefunction(handler):
                    return await handler(request, visitor)
                return await run_in_threadpool(handler, request, visitor)
            except (Forbidden, Invalid, NotFound, Conflict, InsufficientCredits, TooMany) as error:
                return refused(request, visitor, next(v for k, v in STATUSES.items() if isinstance(error, k)), error.detail)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap(fn) if fn is not None else wrap


def render(request: Request, name: str, visitor: Visitor | None = None, status: int = 200, **values: Any) -> Response:
    return templates.TemplateResponse(request, name, {"visitor": visitor, **values}, status_code=status)


def refused(request: Request, visitor: Visitor | None, status: int, detail: str) -> Response:
    if request.headers.get("hx-request"):
        return HTMLResponse(f'<p class="error" role="alert">{_escape(detail)}</p>', status_code=status,
                            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    return render(request, "refused.html", visitor, status=status, detail=detail, code=status)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def secure(request: Request) -> bool:
    configured = context(request).settings.console.secure_cookies
    return configured if configured is not None else request.url.scheme == "https"


def account_asked(session: Any, visitor: Visitor, raw: object) -> int:
    """The account a request names (``account``) if the visitor reaches it, else ``NotFound``;
    their own when it names none. Every screen's ``account`` parameter goes through here."""
    text = raw.strip() if isinstance(raw, str) else ""
    account_id = account_param(text)
    if account_id is None:
        return visitor.principal.account_id
    if not reaches(session, visitor, account_id):
        raise NotFound(f"No account {text}")
    return account_id


PICKER_SIZE = 100  # accounts a picker lists at most, beside the chosen one
PICKER_SEARCH = "account_q"  # the picker's search box: part of a name, or an id
PICKER_SEARCH_MAX = 100


@dataclass(frozen=True, slots=True)
class AccountChoices:
    """What an account picker offers: at most ``PICKER_SIZE`` of the accounts the visitor
    reaches that match the search, by name, and always the chosen one (first when it is not
    among them); how many match in all, and how many of those are not listed."""

    accounts: list[Account]
    chosen: int | None
    q: str
    matched: int
    more: int

    @property
    def listed(self) -> int:
        """How many of those matching are listed."""
        return self.matched - self.more


def account_choices(session: Any, visitor: Visitor, chosen: int | None = None, search: object = "") -> \
        AccountChoices | None:
    """The accounts a picker offers (``chosen``: the one the page is of); None for a visitor who
    reaches no account but their own (anyone but the operator and a reseller's administrator),
    who gets no picker. ``search`` matches a name, case-insensitively, or an id."""
    within = _reached(session, visitor)
    if within is None:
        return None
    text = search.strip()[:PICKER_SEARCH_MAX] if isinstance(search, str) else ""
    where = [within, *_matching(text)]
    found = list(session.scalars(select(Account).where(*where).order_by(Account.name, Account.id).limit(PICKER_SIZE)))
    matched = session.scalar(select(func.count()).select_from(Account).where(*where)) or 0
    listed = len(found)
    if chosen is not None and chosen not in {a.id for a in found}:
        extra = session.scalar(select(Account).where(within, Account.id == chosen))
        if extra is not None:
            found.insert(0, extra)
            listed += session.scalar(select(func.count()).select_from(Account).where(*where, Account.id == chosen)) or 0
    return AccountChoices(found, chosen, text, matched, max(matched - listed, 0))


def account_picker(request: Request, session: Any, visitor: Visitor, chosen: int | None) -> AccountChoices | None:
    """``account_choices`` for a page: its search is the request's ``account_q``."""
    return account_choices(session, visitor, chosen, request.query_params.get(PICKER_SEARCH, ""))


def account_shown(session: Any, visitor: Visitor, raw: object) -> int:
    """The account a picker shows chosen on a page refused for something else: the one asked
    for if the visitor reaches it, else their own."""
    try:
        return account_asked(session, visitor, raw)
    except NotFound:
        return visitor.principal.account_id


def _reached(session: Any, visitor: Visitor) -> ColumnElement[bool] | None:
    """The accounts the visitor reaches, as a condition on ``Account`` (what ``reaches`` says,
    in one query): every one for the operator; a reseller's administrator their own and those
    under it, at any depth; None for anyone who reaches only their own."""
    own = visitor.principal.account_id
    if visitor.operator:
        return true()
    if not visitor.principal.is_admin or session.scalar(select(Account.id).where(Account.parent_id == own).limit(1)) \
            is None:
        return None
    under = select(Account.id).where(Account.parent_id == own).cte("reached", recursive=True)
    under = under.union(select(Account.id).join(under, Account.parent_id == under.c.id))  # UNION: ends on a cycle
    return or_(Account.id == own, Account.id.in_(select(under.c.id)))


def _matching(text: str) -> list[ColumnElement[bool]]:
    """The condition of a picker's search: a name containing it (LIKE's wildcards taken
    literally), or the id it is; none when it is empty."""
    if not text:
        return []
    by_name = Account.name.icontains(text, autoescape=True)
    digits = text.removeprefix("#")
    if digits.isascii() and digits.isdigit() and len(digits) <= 10 and 0 < int(digits) <= MAX_ID:
        return [or_(by_name, Account.id == int(digits))]
    return [by_name]


KeyCursor = tuple[dt.datetime, str]
"""Where a keyset page ends: its last row's time and id, written ``ISO-time~id`` in URLs."""


def key_cursor(raw: str | None) -> KeyCursor | None:
    """A page's position from its URL; ``Invalid`` when it is not one."""
    if not raw:
        return None
    at, _, row_id = raw.partition("~")
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        when = None
    if when is None or "\x00" in row_id or len(row_id) > 64:
        raise Invalid("That page's position is not valid: start the search again.")
    return when, row_id


def cursor_text(cursor: KeyCursor) -> str:
    return f"{cursor[0].isoformat()}~{cursor[1]}"


def reaches(session: Any, visitor: Visitor, account_id: int) -> bool:
    """Whether the visitor may look at ``account_id``: their own; any, for the operator; a
    reseller administrator's customers."""
    if account_id == visitor.principal.account_id:
        return True
    return (visitor.operator or visitor.principal.is_admin) and policy.reaches_account(
        session, visitor.principal.account_id, account_id)
