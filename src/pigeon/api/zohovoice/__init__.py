"""Zoho's token endpoint and the Zoho Voice SMS API, each a sub-application mounted at its
prefix (``app``): a thin dialect over the same services as Zoom Connect's.

``oauth``: ``POST /oauth/v2/token`` (refresh_token and a self-client's authorization_code
grants) over ``pigeon.oauth``. ``deps``: the token of a request (``Zoho-oauthtoken`` or
``Bearer``) and the user and scopes it acts with. ``params``: parameters from the query
string, JSON or a form. ``send``: v1 SMS and v2 MMS sends. ``logs``: the log, conversations and
scheduled sends. ``media``: MMS media streamed back. ``errors``: ``{status, code, message}``
with the ZVSMS codes, one table.
"""

from pigeon.api.zohovoice.app import OAUTH, PREFIX, mounts

__all__ = ["OAUTH", "PREFIX", "mounts"]
