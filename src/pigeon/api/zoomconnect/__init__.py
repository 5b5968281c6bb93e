"""The Zoom Connect ("SMS Messenger") REST API v1, a sub-application mounted at /app/api/rest/v1.

``app``: the sub-application, its middleware and exception handlers. ``errors``: the one table
from the core's kinds of error to Zoom Connect's codes. ``routes``: sending, analysis,
messages, balance. ``contacts``: contacts, groups, templates, and sending to a group or with a
template. ``team``: users, credit transfers, statistics. ``developer``: the webhook settings
(a Pigeon extension).
"""

from pigeon.api.zoomconnect.app import create
from pigeon.api.zoomconnect.deps import PREFIX

__all__ = ["PREFIX", "create"]
