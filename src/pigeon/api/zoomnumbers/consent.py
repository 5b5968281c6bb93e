"""SMS consent policies: list, create, get, update, delete, and their phone numbers (list,
assign, unassign), over ``pigeon.consent``. A policy's ``status`` is whether it is active;
``capacity`` is how many numbers it may hold (200 a request, as assigned). Each change writes one
audit entry in its transaction (consent_policy.create, .update, .delete, .assign, .unassign)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from pigeon.accounts.service import token_key
from pigeon.api.actors import SHOWN, grant_actor, listed, named
from pigeon.api.zoomnumbers import pages
from pigeon.api.zoomnumbers.deps import runtime, scoped
from pigeon.consent import service as consent
from pigeon.consent.models import ConsentPolicy
from pigeon.db import utcnow
from pigeon.errors import Invalid
from pigeon.numbers import service as numbers

router = APIRouter(prefix="/accounts/{accountId}/number_management/sms_consent")
READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"
MAX_PAGE, DEFAULT_PAGE, CAPACITY = 300, 30, 200
FIELDS = {"name": "consent_name", "description": "description", "active": "status",  # as the API names them
          "opt_in_prompt": "opt-in prompt", "opt_in_keywords": "opt-in keywords",
          "opt_in_message": "opt-in confirmation", "opt_out_keywords": "opt-out keywords",
          "opt_out_message": "opt-out message", "help_keywords": "help keywords", "help_message": "help message",
          "disclaimer": "disclaimer", "disclaimer_enabled": "disclaimer enabled"}


def _named(policy: ConsentPolicy) -> str:
    return f"{policy.name} ({policy.id})"


def _stamp(value) -> str:  # type: ignore[no-untyped-def]
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def present(policy: ConsentPolicy, used: int | None = None) -> dict:
    shown = {
        "consent_id": policy.id, "consent_name": policy.name, "description": policy.description or "",
        "account_id": str(policy.account_id),
        "in_out_bound": {
            "opt_in_message": {"prompt": policy.opt_in_prompt, "keywords": orjson.loads(policy.opt_in_keywords),
                               "confirmation_message": policy.opt_in_message},
            "opt_out_message": {"message": policy.opt_out_message, "keywords": orjson.loads(policy.opt_out_keywords)},
            "help_message": {"message": policy.help_message, "keywords": orjson.loads(policy.help_keywords)},
            "disclaimer": {"message": policy.disclaimer, "enable": policy.disclaimer_enabled},
        },
        "status": policy.active, "capacity": CAPACITY,
        "create_time": _stamp(policy.created_at), "modify_time": _stamp(policy.updated_at),
    }
    if policy.user_id is not None:
        shown["user_id"] = str(policy.user_id)
    if used is not None:
        shown["used_number"] = used
    return shown


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OptIn(_Loose):
    prompt: str | None = None
    keywords: list[str] | None = None
    confirmation_message: str | None = None


class Said(_Loose):
    message: str | None = None
    keywords: list[str] | None = None


class Disclaimer(_Loose):
    message: str | None = None
    enable: StrictBool | None = None


class InOutBound(_Loose):
    opt_in_message: OptIn | None = None
    opt_out_message: Said | None = None
    help_message: Said | None = None
    disclaimer: Disclaimer | None = None


class PolicyBody(_Loose):
    consent_name: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=4096)
    in_out_bound: InOutBound | None = None
    status: StrictBool | None = None


def _texts(body: InOutBound | None) -> consent.Texts:
    if body is None:
        return consent.Texts()
    oi, oo, hm, dc = body.opt_in_message, body.opt_out_message, body.help_message, body.disclaimer
    return consent.Texts(
        opt_in_prompt=oi.prompt if oi else None, opt_in_keywords=oi.keywords if oi else None,
        opt_in_message=oi.confirmation_message if oi else None,
        opt_out_keywords=oo.keywords if oo else None, opt_out_message=oo.message if oo else None,
        help_keywords=hm.keywords if hm else None, help_message=hm.message if hm else None,
        disclaimer=dc.message if dc else None, disclaimer_enabled=dc.enable if dc else None,
    )


@router.get("", operation_id="ListSMSConsents", summary="List SMS consent policies")
async def list_policies(
    request: Request, account: Annotated[int, Depends(scoped(READ, "number_management:read:sms_consent:master",
                                                             label="MEDIUM"))],
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE, next_page_token: str | None = None,
) -> Response:
    listing, db = f"sms_consent:{account}", runtime(request).db

    def read() -> dict:
        with db.read() as session:
            rows, token = pages.walk(
                token_key(session), listing, next_page_token, page_size, utcnow(),
                lambda after, limit: consent.policies(session, account, after=after, size=limit), lambda p: p.id)
            return {"page_size": page_size, "total_records": consent.count_policies(session, account),
                    "next_page_token": token,
                    "sms_consent": [present(p) for p in rows]}

    return JSONResponse(await run_in_threadpool(read))


@router.post("", operation_id="CreateSMSConsent", status_code=201, summary="Create an SMS consent policy")
def create_policy(request: Request, body: Annotated[PolicyBody, Body()],
                  account: Annotated[int, Depends(scoped(WRITE, "number_management:write:sms_consent:master"))]
                  ) -> Response:
    bound = body.in_out_bound
    missing = [name for name, value in (
        ("consent_name", body.consent_name), ("in_out_bound", bound), ("status", body.status),
        ("in_out_bound.opt_in_message", bound and bound.opt_in_message),
        ("in_out_bound.opt_out_message", bound and bound.opt_out_message),
        ("in_out_bound.help_message", bound and bound.help_message),
        ("in_out_bound.disclaimer", bound and bound.disclaimer)) if value is None]
    if missing:
        raise Invalid(f"Invalid field: {', '.join(missing)} required")
    with runtime(request).db.write() as session:
        policy = consent.create_policy(session, account, body.consent_name or "", _texts(body.in_out_bound),
                                       description=body.description, active=bool(body.status))
        grant_actor(session, request.state.grant).record(
            session, "consent_policy.create", account_id=account, subject=_named(policy),
            detail=f"created, {'active' if policy.active else 'inactive'}")
        return JSONResponse(present(policy, 0), status_code=201)


class Ids(_Loose):
    consent_ids: list[str] | None = None


@router.delete("", operation_id="DeleteSMSConsents", status_code=204, summary="Delete SMS consent policies")
def delete_policies(request: Request, body: Annotated[Ids, Body()],
                    account: Annotated[int, Depends(scoped(WRITE, "number_management:delete:sms_consent:master",
                                                           label="MEDIUM"))]) -> Response:
    if not body.consent_ids:
        raise Invalid("Invalid field: consent_ids required")
    wanted = list(dict.fromkeys(body.consent_ids))
    with runtime(request).db.write() as session:
        first = {i: consent.get_policy(session, account, i) for i in wanted[:SHOWN]}  # named before they go
        gone = [_named(p) if (p := first.get(i)) is not None else i for i in wanted]
        consent.delete_policies(session, account, wanted)
        grant_actor(session, request.state.grant).record(session, "consent_policy.delete", account_id=account,
                                                         subject=named(gone), detail=f"deleted {listed(gone, 'policy', plural='policies')}")
    return Response(status_code=204)


def _policy(session, account: int, consent_id: str) -> ConsentPolicy:  # type: ignore[no-untyped-def]
    return consent.must_exist(consent.get_policy(session, account, consent_id), consent_id)


@router.get("/{consentId}", operation_id="GetSMSConsent", summary="Get an SMS consent policy")
def get_policy(request: Request, consentId: str,
               account: Annotated[int, Depends(scoped(READ, "number_management:read:sms_consent:master"))]) -> Response:
    with runtime(request).db.read() as session:
        policy = _policy(session, account, consentId)
        return JSONResponse(present(policy, consent.count_numbers(session, policy)))


@router.patch("/{consentId}", operation_id="UpdateSMSConsent", status_code=204, summary="Update an SMS consent policy")
def update_policy(request: Request, consentId: str,
                  account: Annotated[int, Depends(scoped(WRITE, "number_management:update:sms_consent:master"))],
                  body: Annotated[PolicyBody | None, Body()] = None) -> Response:
    body = body or PolicyBody()
    with runtime(request).db.write() as session:
        policy = _policy(session, account, consentId)
        before = {name: getattr(policy, name) for name in FIELDS}
        consent.update_policy(session, policy, name=body.consent_name, description=body.description,
                              active=body.status, texts=_texts(body.in_out_bound))
        changed = [said + (f" (was {before[name]!r})" if name == "name" else "")
                   for name, said in FIELDS.items() if getattr(policy, name) != before[name]]
        grant_actor(session, request.state.grant).record(
            session, "consent_policy.update", account_id=account, subject=_named(policy),
            detail=f"changed {', '.join(changed)}" if changed else "nothing changed")
    return Response(status_code=204)


@router.get("/{consentId}/phone_numbers", operation_id="ListConsentPhoneNumbers",
            summary="List the phone numbers of an SMS consent policy")
async def policy_numbers(
    request: Request, consentId: str,
    account: Annotated[int, Depends(scoped(READ, "number_management:read:sms_consent:master", label="MEDIUM"))],
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE, next_page_token: str | None = None,
) -> Response:
    listing, db = f"sms_consent_numbers:{account}:{consentId}", runtime(request).db

    def read() -> dict:
        with db.read() as session:
            policy = _policy(session, account, consentId)
            rows, token = pages.walk(
                token_key(session), listing, next_page_token, page_size, utcnow(),
                lambda after, limit: consent.numbers_of(session, policy, after=after, size=limit), lambda r: r.number)
            return {"page_size": page_size, "total_records": consent.count_numbers(session, policy),
                    "next_page_token": token,
                    "sms_consent_number": [{"phone_number_id": r.id, "phone_number": r.number,
                                            "account_id": str(r.account_id)} for r in rows]}

    return JSONResponse(await run_in_threadpool(read))


class NumberIds(_Loose):
    phone_number_ids: list[str] | None = None


@router.post("/{consentId}/phone_numbers", operation_id="AssignPhoneNumbersToConsent", status_code=201,
             summary="Assign phone numbers to an SMS consent policy")
def assign_numbers(request: Request, consentId: str, body: Annotated[NumberIds, Body()],
                   account: Annotated[int, Depends(scoped(WRITE, "number_management:write:numbers:master",
                                                          label="MEDIUM"))]) -> Response:
    with runtime(request).db.write() as session:
        policy = _policy(session, account, consentId)
        consent.assign(session, policy, body.phone_number_ids or [])
        _numbers_changed(request, session, policy, body.phone_number_ids or [], "consent_policy.assign", "assigned")
    return Response(status_code=201)


@router.delete("/{consentId}/phone_numbers", operation_id="UnassignPhoneNumbersFromConsent", status_code=204,
               summary="Unassign phone numbers from an SMS consent policy")
def unassign_numbers(request: Request, consentId: str, body: Annotated[NumberIds, Body()],
                     account: Annotated[int, Depends(scoped(WRITE, "number_management:delete:numbers:master",
                                                            label="MEDIUM"))]) -> Response:
    with runtime(request).db.write() as session:
        policy = _policy(session, account, consentId)
        consent.assign(session, policy, body.phone_number_ids or [], on=False)
        _numbers_changed(request, session, policy, body.phone_number_ids or [], "consent_policy.unassign",
                         "unassigned")
    return Response(status_code=204)


def _numbers_changed(request: Request, session: Session, policy: ConsentPolicy, ids: list[str], action: str,
                     done: str) -> None:
    """The one audit entry of numbers assigned to a policy or unassigned from it (every one
    named: it assigns all or none), naming the first few."""
    held = [row.number for row in (numbers.get(session, i) for i in dict.fromkeys(ids)) if row is not None]
    grant_actor(session, request.state.grant).record(session, action, account_id=policy.account_id,
                                                     subject=_named(policy), detail=f"{done} {listed(held, 'number')}")
