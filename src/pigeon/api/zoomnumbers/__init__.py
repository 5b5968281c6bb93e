"""Zoom's OAuth token endpoint and the Zoom Number Management API v2, each a sub-application
mounted at its prefix (``app``).

``oauth``: ``POST /oauth/token`` with the ``account_credentials`` grant, as Zoom's clients
(``zoomus``, Zoom's SDKs) ask for a token, over ``pigeon.oauth``. ``deps``: the bearer token of
a request, and the account and scopes a route needs. ``numbers``: phone numbers (list, get,
update, delete), over ``pigeon.numbers``. ``pages``: the sealed ``next_page_token``.
``errors``: ``{code, message}`` and OAuth's ``{reason, error}``, one table each.
"""

from pigeon.api.zoomnumbers.app import OAUTH, PREFIX, mounts

__all__ = ["OAUTH", "PREFIX", "mounts"]
