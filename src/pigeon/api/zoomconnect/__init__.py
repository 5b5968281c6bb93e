"""The Zoom Connect ("SMS Messenger") REST API v1, under /app/api/rest/v1."""

from pigeon.api.zoomconnect.routes import PREFIX, router

__all__ = ["PREFIX", "router"]
