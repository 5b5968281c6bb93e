"""Plain functions over a session: OAuth clients, the tokens granted to them, and a token's
grant when a request brings it back.

A client's secret and every access token are 32 random bytes, shown once and kept as keyed
hashes (``accounts.security``, under the same server key as API tokens). A token is found by
its hash and is good until ``expires_at`` (an hour, as Zoom's). Checking a client's secret
costs the same whether or not the client exists.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pigeon.accounts.models import Account
from pigeon.accounts.policy import is_operator
from pigeon.accounts.security import NO_USER, keyed_hash, new_token
from pigeon.accounts.service import token_key
from pigeon.errors import Invalid, NotFound
from pigeon.oauth import scopes as scope_rules
from pigeon.oauth.models import OAuthClient, OAuthToken

_ALPHANUMERIC = string.ascii_letters + string.digits
CARRIER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")  # as [[carriers]] names are written

LIFETIME = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class NewClient:
    """A client just created, with the only copy of its secret that will ever exist."""

    id: str
    secret: str
    account_id: int
    scopes: frozenset[str]
    carrier: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid access token lets its bearer do: act for ``account_id`` with ``scopes``;
    ``carrier``: the configured carrier a peering provider's client speaks for, if any."""

    client_id: str
    account_id: int
    scopes: frozenset[str]
    expires_at: dt.datetime
    carrier: str | None = None

    def allows(self, needed: Iterable[str], *, own_account: bool = True) -> bool:
        return scope_rules.allows(self.scopes, needed, own_account=own_account)


@dataclass(frozen=True, slots=True)
class Issued:
    """An access token just granted (shown once) and its grant."""

    token: str
    grant: Grant

    def expires_in(self, now: dt.datetime) -> int:
        return max(0, int((self.grant.expires_at - now).total_seconds()))


def new_client_id() -> str:
    """22 letters and digits (131 bits), as Zoom's client ids look: never a leading ``-`` that a
    command line would take for an option, nor a character a URL or a Basic header must escape."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(22))


def create_client(session: Session, account_id: int, scopes: Iterable[str], name: str | None = None,
                  carrier: str | None = None) -> NewClient:
    """A new client of the account, holding ``scopes`` (at least one, each one a route names);
    with ``carrier``, a peering provider's client that speaks for that carrier (a configured
    carrier's name: the caller checks it against the settings), made on the operator's master
    account only (``Invalid`` on any other)."""
    wanted = frozenset(scopes)
    if not wanted:
        raise Invalid("A client needs at least one scope")
    bad = scope_rules.unknown(wanted)
    if bad:
        raise Invalid(f"Unknown scope(s): {', '.join(bad)}")
    if carrier is not None and not CARRIER_NAME.fullmatch(carrier):
        raise Invalid(f"Invalid carrier name {carrier!r}")
    if session.get(Account, account_id) is None:
        raise NotFound(f"No account {account_id}")
    if carrier is not None and not is_operator(session, account_id):
        raise Invalid(f"A client that speaks for a carrier must be on the operator's master account; "
                      f"account {account_id} is not it")
    client_id, secret = new_client_id(), new_token()
    session.add(OAuthClient(id=client_id, account_id=account_id, name=name or f"client of account {account_id}",
                            secret_hash=keyed_hash(token_key(session), secret), scopes=scope_rules.written(wanted),
                            carrier=carrier))
    session.flush()
    return NewClient(client_id, secret, account_id, wanted, carrier)


def clients(session: Session, account_id: int | None = None) -> list[OAuthClient]:
    """The clients of an account (every account's when None), oldest first."""
    query = select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.id)
    if account_id is not None:
        query = query.where(OAuthClient.account_id == account_id)
    return list(session.scalars(query))


def revoke_client(session: Session, client_id: str) -> bool:
    """Stop a client: it gets no new token, and the tokens it holds stop working now."""
    client = session.get(OAuthClient, client_id)
    if client is None:
        return False
    client.revoked = True
    session.execute(delete(OAuthToken).where(OAuthToken.client_id == client_id))
    return True


def check_client(session: Session, client_id: str, secret: str) -> OAuthClient | None:
    """The client, if ``secret`` is its own and it is not revoked; the same work either way."""
    client = session.get(OAuthClient, client_id) if client_id and "\x00" not in client_id else None
    stored = client.secret_hash if client is not None else NO_USER
    matches = hmac.compare_digest(keyed_hash(token_key(session), secret).encode(), stored.encode())
    return client if matches and client is not None and not client.revoked else None


def grant_account(session: Session, client: OAuthClient, account: str, now: dt.datetime) -> Issued:
    """An access token for a client of ``account`` (the grant ``account_credentials``), with
    all its scopes; ``Invalid`` when the client is not that account's."""
    if account.strip() != str(client.account_id):
        raise Invalid(f"The client does not belong to account {account!r}")
    token = new_token()
    expires = now + LIFETIME
    session.add(OAuthToken(token_hash=keyed_hash(token_key(session), token), client_id=client.id,
                           account_id=client.account_id, scopes=client.scopes, expires_at=expires, created_at=now))
    session.flush()
    return Issued(token, Grant(client.id, client.account_id, scope_rules.parse(client.scopes), expires, client.carrier))


def authenticate(session: Session, token: str, now: dt.datetime) -> Grant | None:
    """The grant of a valid, unexpired access token; None for any other."""
    if not token or len(token) > 512:
        return None
    found = session.execute(
        select(OAuthToken, OAuthClient.carrier).join(OAuthClient, OAuthClient.id == OAuthToken.client_id)
        .where(OAuthToken.token_hash == keyed_hash(token_key(session), token))
    ).first()
    if found is None or found[0].expires_at <= now:
        return None
    row, carrier = found
    return Grant(row.client_id, row.account_id, scope_rules.parse(row.scopes), row.expires_at, carrier)


def purge(session: Session, now: dt.datetime) -> int:
    """Forget expired tokens."""
    return session.execute(delete(OAuthToken).where(OAuthToken.expires_at <= now)).rowcount
