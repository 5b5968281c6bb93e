"""What a token's scopes allow. Pure.

A route names the scopes that admit it, any one of them: Zoom lists a classic scope
(``number_management_numbers:read:master``) and a granular one
(``number_management:read:list_numbers:master``). A scope ending in ``:master`` acts on the
accounts its holder administers as well as its own; the same scope without ``:master`` acts
on the holder's own account only.

Zoho's scopes (``ZohoVoice.sms.CREATE``, ``.READ``, ``.GET``, ``.ALL``) are a self-client's,
whose tokens act as one user: they have no ``:master`` form. ``ZohoVoice.sms.ALL`` holds the
others, and ``READ`` and ``GET`` are one scope spelled two ways (applications ask for either).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASTER = ":master"
WELL_FORMED = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,127}")

ZOOM_NUMBER_MANAGEMENT = frozenset({
    "number_management_numbers:read:master", "number_management_numbers:write:master",
    "number_management:read:list_carrier_peering_numbers:master", "number_management:read:list_peering_numbers:master",
    "number_management:write:peering_number:master", "number_management:delete:peering_number:master",
    "number_management:update:peering_number:master", "number_management:write:numbers:master",
    "number_management:write:byoc_numbers:master", "number_management:read:list_numbers:master",
    "number_management:delete:numbers:master", "number_management:read:numbers:master",
    "number_management:update:numbers:master", "number_management:read:numbers_plan:master",
    "number_management:read:list_sms_campaigns:master", "number_management:read:sms_campaign:master",
    "number_management:read:sms_consent:master", "number_management:write:sms_consent:master",
    "number_management:delete:sms_consent:master", "number_management:update:sms_consent:master",
    "number_management:read:list_ported_numbers:master", "number_management:read:ported_number:master",
    "number_management:read:list_sip_groups:master", "number_management:read:list_sip_trunks:master",
})
"""Every scope the Number Management API's operations name (its OpenAPI file), classic and granular."""

ZOHO_CREATE, ZOHO_READ, ZOHO_GET, ZOHO_ALL = (f"ZohoVoice.sms.{part}" for part in ("CREATE", "READ", "GET", "ALL"))
ZOHO_VOICE = frozenset({ZOHO_CREATE, ZOHO_READ, ZOHO_GET, ZOHO_ALL})
"""The Zoho Voice SMS API's scopes: a self-client's, and only a self-client's."""

IMPLIED = {
    ZOHO_ALL: frozenset({ZOHO_CREATE, ZOHO_READ, ZOHO_GET}),
    ZOHO_READ: frozenset({ZOHO_GET}),
    ZOHO_GET: frozenset({ZOHO_READ}),
}
"""What holding a scope also holds."""

KNOWN = ZOOM_NUMBER_MANAGEMENT | {scope.removesuffix(MASTER) for scope in ZOOM_NUMBER_MANAGEMENT} | ZOHO_VOICE
"""The scopes a client may hold: Zoom's, each in its ``:master`` form and its own-account form;
Zoho's (a self-client's)."""


def parse(text: str) -> frozenset[str]:
    """Scopes written as OAuth writes them: separated by spaces (commas are taken too)."""
    return frozenset(part for part in re.split(r"[\s,]+", text.strip()) if part)


def unknown(scopes: Iterable[str]) -> list[str]:
    """The scopes no route names, in order: a client cannot be given them."""
    return sorted(scope for scope in scopes if scope not in KNOWN)


def expanded(held: frozenset[str]) -> frozenset[str]:
    """The scopes ``held``, and those they imply (``IMPLIED``)."""
    return held.union(*(IMPLIED.get(scope, ()) for scope in held))


def allows(held: frozenset[str], needed: Iterable[str], *, own_account: bool) -> bool:
    """Whether scopes ``held`` admit a route needing any one of ``needed``, on the holder's own
    account or (``own_account`` false) on another one it may reach."""
    held = expanded(held)
    for scope in needed:
        if scope in held:
            return True
        if own_account and scope.endswith(MASTER) and scope.removesuffix(MASTER) in held:
            return True
    return False


def written(scopes: Iterable[str]) -> str:
    """Scopes as an OAuth answer writes them: sorted, separated by spaces."""
    return " ".join(sorted(scopes))
