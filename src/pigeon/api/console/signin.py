"""Signing in and out, and the visitor's own account: their password and their API token.

Sign-in forms carry a CSRF token before there is a session: a random value in a short-lived
cookie, repeated in the form (double submit). Failed sign-ins are counted per address and per
email in the database (``accounts.throttle``, as the APIs count them); past the limit, the
form answers 429 until the window closes, whatever the password.
"""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pigeon.accounts import sessions
from pigeon.accounts.service import rotate_tokens
from pigeon.api.console.web import (
    PREFIX,
    SESSION_COOKIE,
    Context,
    Visitor,
    context,
    csrf_matches,
    form_of,
    page,
    redirect,
    render,
    secure,
    visitor_of,
)
from pigeon.audit import service as audit
from pigeon.db import utcnow
from pigeon.errors import Invalid, TooMany

PRE_CSRF_COOKIE = "pigeon_signin_csrf"


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site, nor out of the
    console by ``..`` or an encoded dot)."""
    if (target and target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target
            and ".." not in target.split("?")[0] and "%2e" not in target.lower()):
        return target
    return PREFIX + "/"


async def sign_in_form(request: Request) -> Response:
    if await run_in_threadpool(visitor_of, request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _form(request, 200)


def _form(request: Request, status: int, error: str | None = None, email: str = "") -> Response:
    token = request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "sign_in.html", status=status, error=error, email=email, csrf=token,
                      next=_safe_next(request.query_params.get("next")))
    response.set_cookie(PRE_CSRF_COOKIE, token, max_age=3600, path=PREFIX, httponly=True, samesite="strict",
                        secure=secure(request))
    return response


def _keys(address: str | None, email: str) -> tuple[str | None, str]:
    """The console's own throttle keys: its failures never lock a user's API integration out."""
    return (f"console:{address}" if address else None), f"console:{email.strip().lower()}"


async def sign_in(request: Request) -> Response:
    form = await form_of(request)
    email, password = str(form.get("email") or "").strip(), str(form.get("password") or "")
    if not csrf_matches(request.cookies.get(PRE_CSRF_COOKIE) or "", str(form.get("csrf") or "")):
        return _form(request, 403, "This form has expired. Please sign in again.", email)
    ctx = context(request)
    address = request.client.host if request.client else None
    throttle = request.app.state.throttle
    keys = _keys(address, email)
    wait = await run_in_threadpool(throttle.attempt, *keys)  # counted first: a burst cannot pass one read
    if wait > 0:
        response = _form(request, 429, f"Too many failed sign-ins. Try again in {int(wait) + 1} seconds.", email)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    def check() -> sessions.Principal | None:
        with ctx.db.read() as session:
            found = sessions.candidate(session, email)
        principal = sessions.matches(found, password)  # scrypt outside any transaction
        if principal is None:
            _record_failure(ctx, found, address)
        return principal

    principal = await run_in_threadpool(check)
    if principal is None:
        return _form(request, 401, "That email and password do not match.", email)

    def open_one() -> sessions.Opened:
        throttle.succeeded(*keys)
        with ctx.db.write() as session:
            audit.record(session, "signin", actor=principal.email, actor_id=principal.user_id,
                         account_id=principal.account_id, subject=principal.email, detail=_from(address))
            return sessions.open_session(session, principal, address, utcnow())

    opened = await run_in_threadpool(open_one)
    response = RedirectResponse(_safe_next(str(form.get("next") or "")), status_code=303)
    response.set_cookie(SESSION_COOKIE, opened.token, path=PREFIX, httponly=True, samesite="lax",
                        secure=secure(request), max_age=int(ctx.settings.console.lifetime_hours * 3600))
    response.delete_cookie(PRE_CSRF_COOKIE, path=PREFIX)
    return response


def _from(address: str | None) -> str:
    return f"from {address}" if address else "from an unknown address"


def _record_failure(ctx: Context, found: sessions.Candidate, address: str | None) -> None:
    """A wrong password for a user, in the audit log under their own email and account. A
    guess at an email that names nobody is not written (it would let anyone fill the log with
    text of their choosing, a password typed in the email box among it), nor is one refused
    by the throttle: the log holds at most the throttle's limit of failures a window for each
    user, from however many addresses."""
    who = found.principal
    if who is None:
        return
    with ctx.db.write() as session:
        audit.record(session, "signin.failed", actor=who.email, account_id=who.account_id, subject=who.email,
                     detail=f"wrong password, {_from(address)}")


@page
def sign_out(request: Request, visitor: Visitor) -> Response:
    with context(request).db.write() as session:
        sessions.close_session(session, visitor.session_hash)
        audit.record(session, "signout", actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                     account_id=visitor.principal.account_id, subject=visitor.principal.email)
    response = redirect(request, "/sign-in")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@page
def account(request: Request, visitor: Visitor) -> Response:
    return render(request, "account.html", visitor)


@page
def change_password(request: Request, visitor: Visitor) -> Response:
    form = request.state.form
    current, new, again = (str(form.get(k) or "") for k in ("current", "new", "again"))
    ctx, throttle = context(request), request.app.state.throttle
    keys = _keys(None, visitor.principal.email)
    wait = throttle.attempt(*keys)  # guesses at the current password count as failed sign-ins
    if wait > 0:
        raise TooMany(f"Too many wrong passwords. Try again in {int(wait) + 1} seconds.", int(wait) + 1)
    with ctx.db.read() as session:
        found = sessions.candidate(session, visitor.principal.email)
    if sessions.matches(found, current) is None:
        raise Invalid("The current password is not right.")
    throttle.succeeded(*keys)
    if new != again:
        raise Invalid("The new password and its repetition differ.")
    digest = sessions.hashed(new)
    with ctx.db.write() as session:
        sessions.set_password(session, visitor.principal.user_id, new, keep=visitor.session_hash, digest=digest)
        audit.record(session, "password.change", actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                     account_id=visitor.principal.account_id, subject=visitor.principal.email)
    return render(request, "account.html", visitor, notice="Your password was changed; your other sessions ended.")


@page
def rotate_token(request: Request, visitor: Visitor) -> Response:
    with context(request).db.write() as session:
        made = rotate_tokens(session, visitor.principal.email)
        audit.record(session, "token.rotate", actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                     account_id=visitor.principal.account_id, subject=visitor.principal.email)
    assert made is not None
    return render(request, "account.html", visitor, token=made.token, url_token=made.url_token,
                  notice="A new API token was made; the old one no longer works.")


ROUTES = [
    Route("/sign-in", sign_in_form, methods=["GET"]),
    Route("/sign-in", sign_in, methods=["POST"]),
    Route("/sign-out", sign_out, methods=["POST"]),
    Route("/account", account, methods=["GET"]),
    Route("/account/password", change_password, methods=["POST"]),
    Route("/account/token", rotate_token, methods=["POST"]),
]
