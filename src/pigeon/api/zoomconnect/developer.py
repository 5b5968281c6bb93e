"""Developer settings (a Pigeon extension): where replies and delivery reports are POSTed, and
the shared secret that signs them. Zoom Connect keeps these on a web page; Pigeon serves them
here and through ``pigeon account settings``. A change writes its audit entry (webhook.settings)
in its transaction, saying what changed and never the secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import Field
from starlette.responses import Response

from pigeon.api.actors import user_actor
from pigeon.api.formats import render
from pigeon.api.zoomconnect.deps import CurrentUser, runtime
from pigeon.api.zoomconnect.schemas import Body as RequestBody
from pigeon.api.zoomconnect.schemas import Text
from pigeon.webhooks import service as webhooks

router = APIRouter(tags=["Pigeon extensions"])
PATH = "/account/developer-settings"


class DeveloperSettingsRequest(RequestBody):
    replyUrl: Text = Field(None, description="Where replies are POSTed; \"\" stops them.")
    reportUrl: Text = Field(None, description="Where delivery reports are POSTed; \"\" stops them.")
    secret: Text = Field(None, description="The shared secret for checksums (8 to 255 characters).")


def _present(settings: webhooks.DeveloperSettings) -> dict:
    return {
        "replyUrl": settings.reply_url,
        "reportUrl": settings.report_url,
        "hasSecret": settings.has_secret,
        "secret": settings.new_secret,
    }


@router.get(PATH, summary="Your webhook URLs (Pigeon extension)")
def get_developer_settings(request: Request, user: CurrentUser) -> Response:
    with runtime(request).db.read() as session:
        settings = webhooks.get_settings(session, user.user_id)
    return render(request, _present(settings), "webServiceDeveloperSettings")


@router.post(PATH, summary="Set your webhook URLs and shared secret (Pigeon extension)",
             description="Fields left out or null keep their value. A URL with no secret set makes Pigeon "
                         "create one, returned once in `secret`.")
def set_developer_settings(
    request: Request, user: CurrentUser, body: Annotated[DeveloperSettingsRequest | None, Body()] = None
) -> Response:
    rt = runtime(request)
    body = body or DeveloperSettingsRequest()
    # before the transaction: checking a URL looks its host up in DNS
    changes = webhooks.check_settings(body.replyUrl, body.reportUrl, body.secret,
                                      allow_private=rt.settings.webhooks_allow_private)
    with rt.db.write() as session:
        before = webhooks.get_settings(session, user.user_id)
        settings = webhooks.update_settings(session, user.user_id, changes)
        user_actor(user).record(session, "webhook.settings", account_id=user.account_id, subject=user.email,
                                detail=webhooks.describe_change(before, settings, "webhook_secret" in changes))
    return render(request, _present(settings), "webServiceDeveloperSettings")
