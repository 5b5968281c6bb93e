"""Opt-outs and consent policies: who opted out of the account's messages (each with the
keyword, the time and the number texted), the keyword events, a CSV import and export, and the
account's consent policies (read only).

The rules are ``pigeon consent set|import|export`` and the Number Management opt-outs view
(``api.zoomnumbers.opt_outs``): a scope is the account's own, one of its numbers (its policy's
scope if it has one) or a consent policy (``consent.service.scope_of``, ``check_scope``).
Everyone of the account may look; administrators change their account's opt-outs, the operator
(and a reseller's administrator, for its customers) any account it reaches, named by
``account`` (from the account picker). Another account by URL is 404. Every change is audited
in its transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from pigeon.api.console.web import PREFIX, Visitor, account_asked, account_picker, context, page, redirect, render
from pigeon.audit import service as audit
from pigeon.consent import browse, importer
from pigeon.consent import service as consent
from pigeon.consent.models import OptOut
from pigeon.db import utcnow
from pigeon.db.races import lost_races
from pigeon.errors import Invalid, NotFound
from pigeon.numbers import service as numbers
from pigeon.phone import normalise

HOW = "CONSOLE"  # how an opt-out set by hand here is kept (the CLI's is CLI, the API's API)
SCOPE_NUMBERS = 500  # the account's numbers offered as scopes in the add form
POLICY_PAGE = 20
POLICY_NUMBERS = 50
SHOWN_REFUSALS = 1000
EXPORT_PAGE = 1000
DONE = {"added": "The phone was opted out.", "removed": "The phone was opted back in.",
        "already-out": "That phone had already opted out of that scope.",
        "already-in": "That phone was not opted out of that scope."}


# -- what a request names --------------------------------------------------------------------

def _manages(visitor: Visitor) -> bool:
    return visitor.principal.is_admin or visitor.operator


def _account(session: Session, visitor: Visitor, raw: object) -> int:
    """The account a request names (``account``), if the visitor reaches it; else their own."""
    return account_asked(session, visitor, raw)


def _field(request: Request, name: str) -> str:
    value = request.state.form.get(name)
    return value if isinstance(value, str) else ""


def _phone(request: Request, raw: str) -> str:
    if not raw.strip():
        raise Invalid("A phone number is required")
    if "\x00" in raw:
        raise Invalid("A phone number cannot contain a NUL character (\\x00)")
    return normalise(raw, context(request).settings.default_region).e164


def _search(request: Request) -> browse.Phone:
    """A search by phone: a whole number in any form is sought in E.164, else a part of one."""
    text = request.query_params.get("q", "").strip()
    if not text:
        return browse.Phone()
    if "\x00" in text or len(text) > 64:
        raise Invalid("Search by a phone number, or a part of one")
    if re.fullmatch(r"[0-9+() -]{6,}", text):
        try:
            return browse.Phone(whole=normalise(text, context(request).settings.default_region).e164)
        except Invalid:
            pass
    return browse.Phone(part=text)


def _stamp(raw: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid("That page's position is not valid: start the search again.") from None


def _opt_out_cursor(raw: str | None) -> browse.OptOutCursor | None:
    if not raw:
        return None
    parts = raw.split("~")
    if len(parts) != 3 or "\x00" in raw:
        raise Invalid("That page's position is not valid: start the search again.")
    return _stamp(parts[0]), parts[1], parts[2]


def _event_cursor(raw: str | None) -> browse.EventCursor | None:
    if not raw:
        return None
    at, _, event_id = raw.partition("~")
    if not event_id.isascii() or not event_id.isdigit() or len(event_id) > 18:
        raise Invalid("That page's position is not valid: start the search again.")
    return _stamp(at), int(event_id)


def _next_url(request: Request, path: str, cursor: tuple | None) -> str | None:
    if cursor is None:
        return None
    after = "~".join(c.isoformat() if isinstance(c, dt.datetime) else str(c) for c in cursor)
    params = {k: request.query_params.get(k, "") for k in ("q", "account")}
    return f"{PREFIX}{path}?{urlencode({**params, 'after': after})}"


def _described(scope: str, policies: dict[str, str]) -> str:
    """A scope as a person reads it."""
    kind, _, ref = scope.partition(":")
    if kind == "policy":
        return f"policy {policies[ref]}" if ref in policies else f"policy {ref} (deleted)"
    if kind == "number":
        return f"number {ref}"
    return "the account"


def _scopes(session: Session, account_id: int) -> list[tuple[str, str]]:
    """The scopes an opt-out may be added in: (value, label), the account's own first."""
    policies = browse.policy_names(session, account_id)
    rows = numbers.page(session, account_id, numbers.Filter(), after=None, size=SCOPE_NUMBERS)
    return ([(consent.scope(account_id, None), "The account (messages from no number of its own)")]
            + [(consent.scope(account_id, None, pid), f"Policy {name}") for pid, name in policies.items()]
            + [(consent.scope(account_id, r.number), f"Number {r.number}"
                + (f" (policy {policies.get(r.consent_policy_id, r.consent_policy_id)})" if r.consent_policy_id else ""))
               for r in rows])


def _audit(session: Session, visitor: Visitor, action: str, account_id: int, subject: str, detail: str) -> None:
    audit.record(session, action, actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                 account_id=account_id, subject=subject, detail=detail)


def _there(path: str, account_id: int, visitor: Visitor, **params: str) -> str:
    """A path of this screen for ``account_id`` (named only when it is not the visitor's own)."""
    if account_id != visitor.principal.account_id:
        params = {"account": str(account_id), **params}
    return path + (f"?{urlencode(params)}" if params else "")


# -- opt-outs --------------------------------------------------------------------------------

def _list(request: Request, visitor: Visitor, *, account_id: int | None = None, status: int = 200,
          error: str | None = None, values: dict[str, str] | None = None) -> Response:
    with context(request).db.read() as session:
        if account_id is None:
            account_id = _account(session, visitor, request.query_params.get("account"))
        rows, cursor = browse.opt_outs(session, account_id, _search(request),
                                       _opt_out_cursor(request.query_params.get("after")))
        policies = browse.policy_names(session, account_id)
        return render(request, "consent.html", visitor, status=status, error=error, rows=rows,
                      more=_next_url(request, "/opt-outs/rows", cursor), q=request.query_params.get("q", ""),
                      account_id=account_id, policies=policies, described=_described, manages=_manages(visitor),
                      scopes=_scopes(session, account_id) if _manages(visitor) else [], values=values or {},
                      notice=DONE.get(request.query_params.get("done", "")), tab="opt-outs",
                      picker=account_picker(request, session, visitor, account_id))


@page
def opt_outs(request: Request, visitor: Visitor) -> Response:
    return _list(request, visitor)


@page
def opt_out_rows(request: Request, visitor: Visitor) -> Response:
    """The next page of opt-outs, for the list's infinite scroll."""
    with context(request).db.read() as session:
        account_id = _account(session, visitor, request.query_params.get("account"))
        rows, cursor = browse.opt_outs(session, account_id, _search(request),
                                       _opt_out_cursor(request.query_params.get("after")))
        return render(request, "_consent_rows.html", visitor, rows=rows, account_id=account_id,
                      more=_next_url(request, "/opt-outs/rows", cursor), manages=_manages(visitor),
                      policies=browse.policy_names(session, account_id), described=_described)


@page(admin=True)
def add_opt_out(request: Request, visitor: Visitor) -> Response:
    """Opt a phone out of a scope of the account, as ``pigeon consent set --out`` does."""
    values = {"phone": _field(request, "phone"), "scope": _field(request, "scope")}
    with context(request).db.read() as session:
        account_id = _account(session, visitor, _field(request, "account"))
    try:
        who = _phone(request, values["phone"])
        with lost_races("That phone has just been opted out of that scope"), context(request).db.write() as session:
            where = consent.check_scope(session, account_id, values["scope"] or consent.scope(account_id, None))
            changed = consent.set_consent(session, account_id, where, who, out=True, how=HOW, now=utcnow())
            if changed:
                _audit(session, visitor, "opt_out.add", account_id, who, f"opted out of {where}")
    except (Invalid, NotFound) as exc:
        return _list(request, visitor, account_id=account_id, status=404 if isinstance(exc, NotFound) else 400,
                     error=exc.detail, values=values)
    return redirect(request, _there("/opt-outs", account_id, visitor, done="added" if changed else "already-out"))


@page(admin=True)
def remove_opt_out(request: Request, visitor: Visitor) -> Response:
    """Opt a phone back in to the scope it opted out of (the row as listed: its scope may be of
    a number or policy the account no longer has)."""
    with context(request).db.write() as session:
        account_id = _account(session, visitor, _field(request, "account"))
        where, phone = _field(request, "scope"), _field(request, "phone")
        found = session.get(OptOut, (where, phone)) if "\x00" not in where + phone else None
        if found is None or found.account_id != account_id:
            raise NotFound(f"{phone or 'That phone'} has not opted out of {where or 'that scope'}")
        consent.set_consent(session, account_id, where, phone, out=False, how=HOW, now=utcnow())
        _audit(session, visitor, "opt_out.remove", account_id, phone, f"opted back in to {where}")
    return redirect(request, _there("/opt-outs", account_id, visitor, done="removed"))


# -- import and export ----------------------------------------------------------------------

def _rows_of(upload: Any) -> list[importer.Row]:
    """The file's rows (read whole before anything is written, so a file the parser gives up
    on is refused as a whole); ``Invalid`` for no file or one that is not UTF-8 CSV."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Invalid("Choose a CSV file to import")
    upload.file.seek(0)
    stream = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
    try:
        return list(importer.read_csv(stream))
    except UnicodeDecodeError:
        raise Invalid(f"{upload.filename} is not UTF-8 text: save it as CSV (UTF-8)") from None
    finally:
        stream.detach()


@page(admin=True)
def import_opt_outs(request: Request, visitor: Visitor) -> Response:
    """Opt out every phone of a CSV file, as ``pigeon consent import`` does: each row in its
    ``scope`` column's scope, else the one chosen; each refused row reported with its line and
    reason, the others imported. Each chunk's transaction writes its own audit entry."""
    ctx = context(request)
    upload = request.state.form.get("file")
    name = upload.filename if isinstance(upload, UploadFile) and upload.filename else "CSV file"
    with ctx.db.read() as session:
        account_id = _account(session, visitor, _field(request, "account"))
        default = consent.check_scope(session, account_id, _field(request, "scope") or consent.scope(account_id, None))
    rows = _rows_of(upload)

    def audited(session: Session, added: int) -> None:
        _audit(session, visitor, "opt_out.import", account_id, name[:255], f"opted out {added} (default scope {default})")

    summary = importer.import_rows(ctx.db, account_id, rows, default_scope=default,
                                   region=ctx.settings.default_region, how="IMPORT", then=audited)
    return render(request, "consent_import.html", visitor, summary=summary, refused=summary.refused[:SHOWN_REFUSALS],
                  account_id=account_id, file_name=name, tab="opt-outs")


def _cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (CSV injection); a phone in
    E.164 ('+' and digits) is left as it is, so that the file imports again."""
    if re.fullmatch(r"\+[0-9]+", text):
        return text
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@page
def export(request: Request, visitor: Visitor) -> Response:
    """The account's opt-outs as ``pigeon consent export`` writes them (phone, scope, keyword,
    at), streamed a page at a time, each page in its own read."""
    db = context(request).db
    with db.read() as session:
        account_id = _account(session, visitor, request.query_params.get("account"))

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["phone", "scope", "keyword", "at"])
        after: tuple[str, str] | None = None
        while True:
            with db.read() as session:
                found = consent.opt_outs(session, account_id, after=after, size=EXPORT_PAGE)
                for row in found:
                    writer.writerow([_cell(row.phone), _cell(row.scope), _cell(row.keyword),
                                     f"{row.at:%Y-%m-%dT%H:%M:%SZ}"])
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if len(found) < EXPORT_PAGE:
                return
            after = (found[-1].phone, found[-1].scope)

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="opt-outs-{account_id}.csv"'})


# -- keyword events and policies ------------------------------------------------------------

@page
def keyword_events(request: Request, visitor: Visitor) -> Response:
    with context(request).db.read() as session:
        account_id = _account(session, visitor, request.query_params.get("account"))
        rows, cursor = browse.events(session, account_id, _search(request),
                                     _event_cursor(request.query_params.get("after")))
        return render(request, "consent_events.html", visitor, rows=rows, q=request.query_params.get("q", ""),
                      more=_next_url(request, "/opt-outs/events/rows", cursor), account_id=account_id,
                      policies=browse.policy_names(session, account_id), described=_described, tab="events",
                      picker=account_picker(request, session, visitor, account_id))


@page
def keyword_event_rows(request: Request, visitor: Visitor) -> Response:
    with context(request).db.read() as session:
        account_id = _account(session, visitor, request.query_params.get("account"))
        rows, cursor = browse.events(session, account_id, _search(request),
                                     _event_cursor(request.query_params.get("after")))
        return render(request, "_consent_events_rows.html", visitor, rows=rows,
                      more=_next_url(request, "/opt-outs/events/rows", cursor),
                      policies=browse.policy_names(session, account_id), described=_described)


@page
def policies(request: Request, visitor: Visitor) -> Response:
    """The account's consent policies, by id, a page at a time: name, state, their own
    keywords (the standard ones hold too) and numbers."""
    after = request.query_params.get("after") or None
    if after is not None and (len(after) > 32 or "\x00" in after):
        raise Invalid("That page's position is not valid: start again.")
    with context(request).db.read() as session:
        account_id = _account(session, visitor, request.query_params.get("account"))
        found = consent.policies(session, account_id, after=after, size=POLICY_PAGE + 1)
        more, found = len(found) > POLICY_PAGE, found[:POLICY_PAGE]
        shown = [{"p": p, "opt_out": orjson.loads(p.opt_out_keywords), "opt_in": orjson.loads(p.opt_in_keywords),
                  "help": orjson.loads(p.help_keywords), "count": consent.count_numbers(session, p),
                  "numbers": [n.number for n in consent.numbers_of(session, p, after=None, size=POLICY_NUMBERS)]}
                 for p in found]
        next_url = _there(f"{PREFIX}/opt-outs/policies", account_id, visitor, after=found[-1].id) if more else None
        return render(request, "consent_policies.html", visitor, policies=shown, more=next_url,
                      account_id=account_id, tab="policies")


NAV = [("opt-outs", "Opt-outs")]
ROUTES = [
    Route("/opt-outs", opt_outs, methods=["GET"]),
    Route("/opt-outs", add_opt_out, methods=["POST"]),
    Route("/opt-outs/rows", opt_out_rows, methods=["GET"]),
    Route("/opt-outs/remove", remove_opt_out, methods=["POST"]),
    Route("/opt-outs/import", import_opt_outs, methods=["POST"]),
    Route("/opt-outs.csv", export, methods=["GET"]),
    Route("/opt-outs/events", keyword_events, methods=["GET"]),
    Route("/opt-outs/events/rows", keyword_event_rows, methods=["GET"]),
    Route("/opt-outs/policies", policies, methods=["GET"]),
]
