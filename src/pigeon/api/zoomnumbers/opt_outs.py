"""Opt-outs, a Pigeon extension in the Number Management style: an account's opt-outs listed
(``page_size``, ``next_page_token``) and set or lifted, each in a scope: a consent policy
(``consent_id``), a number of the account (``phone_number_id``: its policy's scope if it has
one), or neither (the account's own, for messages from no number of its own). A request writes
one audit entry in its transaction (opt_out.set), however many phones it names."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from pigeon.accounts.service import token_key
from pigeon.api.actors import grant_actor, listed, named
from pigeon.api.zoomnumbers import pages
from pigeon.api.zoomnumbers.deps import runtime, scoped
from pigeon.consent import service as consent
from pigeon.db import utcnow
from pigeon.errors import Invalid, NotFound
from pigeon.numbers import service as numbers
from pigeon.phone import normalise

router = APIRouter(prefix="/accounts/{accountId}/number_management/sms_consent_opt_outs", tags=["Pigeon extensions"])
READ, WRITE = "number_management:read:sms_consent:master", "number_management:update:sms_consent:master"
CLASSIC_READ, CLASSIC_WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"


def _scope_shown(scope: str) -> dict:
    kind, _, ref = scope.partition(":")
    return {"policy": {"consent_id": ref}, "number": {"phone_number": ref}}.get(kind, {"account": True})


@router.get("", operation_id="ListOptOuts", summary="List the account's opt-outs (a Pigeon extension)")
async def list_opt_outs(
    request: Request, account: Annotated[int, Depends(scoped(CLASSIC_READ, READ))],
    page_size: Annotated[int, Query(ge=1, le=300)] = 30, next_page_token: str | None = None,
) -> Response:
    listing, db = f"opt_outs:{account}", runtime(request).db

    def read() -> dict:
        with db.read() as session:
            key = token_key(session)
            after = None
            if next_page_token:
                phone, _, where = pages.open_token(key, listing, next_page_token, utcnow()).partition(" ")
                after = (phone, where)
            rows = consent.opt_outs(session, account, after=after, size=page_size + 1)
            more, rows = len(rows) > page_size, rows[:page_size]
            token = pages.seal(key, listing, f"{rows[-1].phone} {rows[-1].scope}", utcnow()) if more else ""
            return {"page_size": page_size, "next_page_token": token, "opt_outs": [
                {"phone_number": r.phone, "scope": _scope_shown(r.scope), "keyword": r.keyword,
                 "opt_out_time": r.at.strftime("%Y-%m-%dT%H:%M:%SZ")} for r in rows]}

    return JSONResponse(await run_in_threadpool(read))


class Change(BaseModel):
    model_config = ConfigDict(extra="ignore")
    phone_number: str
    status: Literal["opted_out", "opted_in"]
    consent_id: str | None = None
    phone_number_id: str | None = None


class Changes(BaseModel):
    model_config = ConfigDict(extra="ignore")
    opt_outs: list[Change] = Field(min_length=1, max_length=200)


@router.patch("", operation_id="SetOptOuts", status_code=204,
              summary="Opt phones out of a scope of the account, or back in (a Pigeon extension); all or none")
def set_opt_outs(request: Request, account: Annotated[int, Depends(scoped(CLASSIC_WRITE, WRITE, label="MEDIUM"))],
                 body: Annotated[Changes, Body()]) -> Response:
    rt = runtime(request)
    phones: list[str] = []
    done: dict[bool, list[str]] = {True: [], False: []}  # the phones opted out, and those opted back in
    scopes: dict[str, None] = {}
    with rt.db.write() as session:
        for change in body.opt_outs:
            change.consent_id, change.phone_number_id = change.consent_id or None, change.phone_number_id or None
            if change.consent_id and change.phone_number_id:
                raise Invalid("Give consent_id or phone_number_id, not both")
            number = None
            if change.phone_number_id:
                row = numbers.get(session, change.phone_number_id)
                if row is None or row.account_id != account:
                    raise NotFound(f"Phone number {change.phone_number_id} not found")
                number = row.number
            where = consent.scope_of(session, account, number=number, policy_id=change.consent_id)
            who = normalise(change.phone_number, rt.settings.default_region).e164
            consent.set_consent(session, account, where, who, out=change.status == "opted_out", how="API",
                                now=utcnow())
            phones.append(who)
            done[change.status == "opted_out"].append(who)
            scopes[where] = None
        said = [f"{verb} {listed(those, 'phone')}" for verb, those in (("opted out", done[True]),
                                                                        ("opted back in", done[False])) if those]
        grant_actor(session, request.state.grant).record(
            session, "opt_out.set", account_id=account, subject=named(phones),
            detail=f"{'; '.join(said)} (scope {named(list(scopes))})")
    return Response(status_code=204)
