"""Zoom's OAuth token endpoint and (next) the Zoom Number Management API v2, each a
sub-application mounted at its prefix.

``oauth``: ``POST /oauth/token`` with the ``account_credentials`` grant, as Zoom's clients
(``zoomus``, Zoom's SDKs) ask for a token, over ``pigeon.oauth``. ``deps``: the bearer token of
a request, and the scopes a route needs.
"""

from pigeon.api.zoomnumbers.app import OAUTH, PREFIX, mounts

__all__ = ["OAUTH", "PREFIX", "mounts"]
