"""SMS campaigns: list, get, and their phone numbers (assign, unassign), over
``pigeon.campaigns``. Campaigns are created by the operator (``pigeon campaigns create``), as
Zoom's API has no create; another account's campaign is never seen (404, "Invalid campaign ID.").
Assigning and unassigning write one audit entry each in their transaction, under the console's
names (campaign.assign, campaign.unassign)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response

from pigeon.accounts.service import token_key
from pigeon.api.actors import grant_actor, listed
from pigeon.api.zoomnumbers import pages
from pigeon.api.zoomnumbers.deps import runtime, scoped
from pigeon.campaigns import service as campaigns
from pigeon.campaigns.models import SmsCampaign
from pigeon.db import utcnow
from pigeon.errors import Invalid
from pigeon.numbers import service as numbers

router = APIRouter(prefix="/accounts/{accountId}/number_management/sms_campaigns")
READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"
MAX_PAGE, DEFAULT_PAGE = 300, 30


def _brand(campaign: SmsCampaign) -> dict:
    return {"brand_id": campaign.brand_id or "", "name": campaign.brand_name or ""}


def present(campaign: SmsCampaign) -> dict:
    """A campaign as the list's items show it."""
    return {"sms_campaign_id": campaign.id, "display_name": campaign.display_name, "status": campaign.status,
            "brand": _brand(campaign)}


def present_one(campaign: SmsCampaign, held: list[tuple[str, str]]) -> dict:
    """A campaign as GetSMSCampaign shows it, with the numbers it holds."""
    return {**present(campaign), "service_type": campaign.service_type,
            "phone_numbers": [{"phone_number_id": number_id, "number": number} for number_id, number in held],
            "response_to_opt_in": campaign.response_to_opt_in or "",
            "response_to_opt_out": campaign.response_to_opt_out or "",
            "response_to_help": campaign.response_to_help or ""}


@router.get("", operation_id="listAccountSMSCampaigns", summary="List SMS campaigns")
async def list_campaigns(
    request: Request,
    account: Annotated[int, Depends(scoped(READ, "number_management:read:list_sms_campaigns:master"))],
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE, next_page_token: str | None = None,
) -> Response:
    listing, db = f"sms_campaigns:{account}", runtime(request).db

    def read() -> dict:
        with db.read() as session:
            rows, token = pages.walk(
                token_key(session), listing, next_page_token, page_size, utcnow(),
                lambda after, limit: campaigns.page(session, account, after=after, size=limit), lambda c: c.id)
            return {"next_page_token": token, "page_size": page_size, "total_records": campaigns.count(session, account),
                    "sms_campaigns": [present(c) for c in rows]}

    return JSONResponse(await run_in_threadpool(read))


def _campaign(session, account: int, campaign_id: str) -> SmsCampaign:  # type: ignore[no-untyped-def]
    return campaigns.must_exist(campaigns.get(session, account, campaign_id))


def _numbers(session, ids: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    return [row.number for row in (numbers.get(session, i) for i in dict.fromkeys(ids)) if row is not None]


def _audit(request: Request, session, action: str, campaign: SmsCampaign, detail: str) -> None:  # type: ignore[no-untyped-def]
    grant_actor(session, request.state.grant).record(session, action, account_id=campaign.account_id,
                                                     subject=f"{campaign.display_name} ({campaign.id})", detail=detail)


@router.get("/{smsCampaignId}", operation_id="GetSMSCampaign", summary="Get an SMS campaign")
def get_campaign(request: Request, smsCampaignId: str,
                 account: Annotated[int, Depends(scoped(READ, "number_management:read:sms_campaign:master"))]
                 ) -> Response:
    with runtime(request).db.read() as session:
        campaign = _campaign(session, account, smsCampaignId)
        return JSONResponse(present_one(campaign, campaigns.numbers_of(session, campaign)))


class Assignment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    phone_number_ids: list[str] | None = None
    loa_authorizing_person: str | None = None
    contact_number: str | None = None
    title: str | None = None
    contact_emails: str | None = None


@router.post("/{smsCampaignId}/phone_numbers", operation_id="assignCampaignPhoneNumbers", status_code=204,
             summary="Assign phone numbers to an SMS campaign")
def assign_numbers(request: Request, smsCampaignId: str, body: Annotated[Assignment, Body()],
                   account: Annotated[int, Depends(scoped(WRITE, "number_management:update:numbers:master"))]
                   ) -> Response:
    missing = [name for name in ("phone_number_ids", "loa_authorizing_person", "contact_number", "title")
               if getattr(body, name) is None]
    if missing:
        raise Invalid(f"Invalid field: {', '.join(missing)} required")
    by = campaigns.Authorisation(body.loa_authorizing_person or "", body.contact_number or "", body.title or "",
                                 body.contact_emails)
    with runtime(request).db.write() as session:
        campaign = _campaign(session, account, smsCampaignId)
        new = _numbers(session, campaigns.assign(session, campaign, body.phone_number_ids or [], by))
        _audit(request, session, "campaign.assign", campaign,
               f"{listed(new, 'number') if new else 'no new number'}; authorised by {by.person}")
    return Response(status_code=204)


@router.delete("/{smsCampaignId}/phone_numbers", operation_id="unassignCampaignPhoneNumber", status_code=204,
               summary="Unassign phone numbers from an SMS campaign")
def unassign_numbers(request: Request, smsCampaignId: str,
                     account: Annotated[int, Depends(scoped(WRITE, "number_management:update:numbers:master"))],
                     phone_number_ids: Annotated[list[str] | None, Query()] = None) -> Response:
    wanted = [part for value in phone_number_ids or [] for part in value.split(",") if part]  # repeated, or a,b
    with runtime(request).db.write() as session:
        campaign = _campaign(session, account, smsCampaignId)
        campaigns.unassign(session, campaign, wanted)
        _audit(request, session, "campaign.unassign", campaign, f"took out {listed(_numbers(session, wanted), 'number')}")
    return Response(status_code=204)
