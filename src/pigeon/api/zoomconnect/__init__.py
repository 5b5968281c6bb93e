"""The Zoom Connect ("SMS Messenger") REST API v1, under /app/api/rest/v1.

``routes``: sending, analysis, messages, balance. ``contacts``: contacts, groups, templates,
and sending to a group or with a template. ``team``: users, credit transfers, statistics.
``developer``: the webhook settings (a Pigeon extension).
"""

from fastapi import APIRouter

from pigeon.api.zoomconnect import contacts, developer, routes, team
from pigeon.api.zoomconnect.deps import PREFIX

router = APIRouter()
for module in (routes, contacts, team, developer):
    router.include_router(module.router)
LEAN = routes.LEAN  # the hot routes, served without FastAPI's machinery (pigeon.api.fast)

__all__ = ["LEAN", "PREFIX", "router"]
