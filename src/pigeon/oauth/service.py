"""Plain functions over a session: OAuth clients, the tokens granted to them, and a token's
grant when a request brings it back.

A client's secret and every access token are 32 random bytes, shown once and kept as keyed
hashes (``accounts.security``, under the same server key as API tokens). A token is found by
its hash and is good until ``expires_at`` (an hour, as Zoom's and Zoho's). Checking a client's
secret costs the same whether or not the client exists.

Two kinds of client. A Zoom client acts for its account and gets tokens by the grant
``account_credentials`` (``grant_account``). A self-client (Zoho's) belongs to one user of an
account and holds only Zoho's scopes (``scopes.ZOHO_VOICE``): its tokens act as that user, so
the Zoom scopes, which act for an account and reach others with ``:master``, are not given to
it, nor Zoho's to a Zoom client, whose tokens act as nobody. A self-client gets a one-time grant
code (``issue_grant_code``, short-lived), exchanged once for an access token and a refresh
token (``exchange_code``); the refresh token, good until the client is revoked, gets new access
tokens (``refresh``). Codes and refresh tokens are kept hashed as tokens are.
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

from pigeon.accounts.models import Account, User
from pigeon.accounts.policy import is_operator
from pigeon.accounts.security import NO_USER, keyed_hash, new_token
from pigeon.accounts.service import token_key
from pigeon.errors import Invalid, NotFound
from pigeon.oauth import scopes as scope_rules
from pigeon.oauth.models import OAuthClient, OAuthGrantCode, OAuthRefreshToken, OAuthToken

_ALPHANUMERIC = string.ascii_letters + string.digits
CARRIER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")  # as [[carriers]] names are written

LIFETIME = dt.timedelta(hours=1)
GRANT_CODE = "grant code"  # the subject of a refused code: a dialect answers it apart (OAuth's invalid_code)
REFRESH_TOKEN = "refresh token"  # the same, for a refresh token


@dataclass(frozen=True, slots=True)
class NewClient:
    """A client just created, with the only copy of its secret that will ever exist."""

    id: str
    secret: str
    account_id: int
    scopes: frozenset[str]
    carrier: str | None = None
    user_id: int | None = None  # a self-client's user


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid access token lets its bearer do: act for ``account_id`` with ``scopes``;
    ``carrier``: the configured carrier a peering provider's client speaks for, if any."""

    client_id: str
    account_id: int
    scopes: frozenset[str]
    expires_at: dt.datetime
    carrier: str | None = None
    user_id: int | None = None  # a self-client's user (Zoho): the token acts as that user

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
    wanted = _known(scopes)
    if wanted & scope_rules.ZOHO_VOICE:
        raise Invalid(f"Zoho's scopes are a self-client's (pigeon oauth self-client): "
                      f"{', '.join(sorted(wanted & scope_rules.ZOHO_VOICE))}")
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


def create_self_client(session: Session, user_id: int, scopes: Iterable[str], name: str | None = None) -> NewClient:
    """A new self-client of the user (Zoho's), in the user's account, holding ``scopes``: at
    least one, each one of Zoho's (``Invalid`` for any other). Its tokens act as the user."""
    wanted = _known(scopes)
    others = sorted(wanted - scope_rules.ZOHO_VOICE)
    if others:
        raise Invalid(f"A self-client holds only Zoho's scopes ({', '.join(sorted(scope_rules.ZOHO_VOICE))}); "
                      f"not {', '.join(others)}")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}")
    client_id, secret = new_client_id(), new_token()
    session.add(OAuthClient(id=client_id, account_id=user.account_id, user_id=user.id,
                            name=name or f"self-client of {user.email}",
                            secret_hash=keyed_hash(token_key(session), secret), scopes=scope_rules.written(wanted)))
    session.flush()
    return NewClient(client_id, secret, user.account_id, wanted, None, user.id)


def _known(scopes: Iterable[str]) -> frozenset[str]:
    """``scopes``, once they are at least one and each one known (else ``Invalid``)."""
    wanted = frozenset(scopes)
    if not wanted:
        raise Invalid("A client needs at least one scope")
    bad = scope_rules.unknown(wanted)
    if bad:
        raise Invalid(f"Unknown scope(s): {', '.join(bad)}")
    return wanted


def clients(session: Session, account_id: int | None = None) -> list[OAuthClient]:
    """The clients of an account (every account's when None), oldest first."""
    query = select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.id)
    if account_id is not None:
        query = query.where(OAuthClient.account_id == account_id)
    return list(session.scalars(query))


def revoke_client(session: Session, client_id: str) -> bool:
    """Stop a client: it gets no new token, and the tokens it holds (access and refresh
    tokens, grant codes) stop working now."""
    client = session.get(OAuthClient, client_id)
    if client is None:
        return False
    client.revoked = True
    for table in (OAuthToken, OAuthRefreshToken, OAuthGrantCode):
        session.execute(delete(table).where(table.client_id == client_id))
    return True


def check_client(session: Session, client_id: str, secret: str) -> OAuthClient | None:
    """The client, if ``secret`` is its own and it is not revoked; the same work either way."""
    client = session.get(OAuthClient, client_id) if client_id and "\x00" not in client_id else None
    stored = client.secret_hash if client is not None else NO_USER
    matches = hmac.compare_digest(keyed_hash(token_key(session), secret).encode(), stored.encode())
    return client if matches and client is not None and not client.revoked else None


def grant_account(session: Session, client: OAuthClient, account: str, now: dt.datetime) -> Issued:
    """An access token for a client of ``account`` (the grant ``account_credentials``), with
    all its scopes; ``Invalid`` when the client is not that account's, or is a self-client
    (whose tokens come from its grant code and refresh tokens)."""
    if account.strip() != str(client.account_id):
        raise Invalid(f"The client does not belong to account {account!r}")
    if client.user_id is not None:
        raise Invalid("A self-client gets its tokens with its grant code or refresh token (POST /oauth/v2/token)")
    return _issue(session, client, scope_rules.parse(client.scopes), now)


def _issue(session: Session, client: OAuthClient, scopes: frozenset[str], now: dt.datetime) -> Issued:
    """A new access token of ``client`` with ``scopes``, acting as its user if it has one."""
    token = new_token()
    expires = now + LIFETIME
    session.add(OAuthToken(token_hash=keyed_hash(token_key(session), token), client_id=client.id,
                           account_id=client.account_id, scopes=scope_rules.written(scopes), expires_at=expires,
                           created_at=now, user_id=client.user_id))
    session.flush()
    return Issued(token, Grant(client.id, client.account_id, scopes, expires, client.carrier, client.user_id))


def issue_grant_code(session: Session, client_id: str, scopes: Iterable[str], now: dt.datetime,
                     lifetime: dt.timedelta) -> str:
    """A one-time grant code of a self-client, good for ``lifetime`` (the caller's: settings.zoho.
    grant_code_minutes), with ``scopes``: some of those the client holds or they imply (none
    given: all it holds). ``NotFound`` for no such client; ``Invalid`` for a revoked one, one that
    is not a self-client, or scopes it lacks."""
    client = session.get(OAuthClient, client_id)
    if client is None:
        raise NotFound(f"No client {client_id}")
    if client.revoked:
        raise Invalid(f"Client {client_id} is revoked")
    if client.user_id is None:
        raise Invalid(f"Client {client_id} is not a self-client: it gets its tokens by account_credentials")
    held = scope_rules.parse(client.scopes)
    wanted = frozenset(scopes) or held
    lacking = sorted(wanted - scope_rules.expanded(held))
    if lacking:
        raise Invalid(f"Client {client_id} does not hold {', '.join(lacking)}; it holds {scope_rules.written(held)}")
    code = new_token()
    session.add(OAuthGrantCode(code_hash=keyed_hash(token_key(session), code), client_id=client.id,
                               scopes=scope_rules.written(wanted), expires_at=now + lifetime, created_at=now))
    session.flush()
    return code


def exchange_code(session: Session, client: OAuthClient, code: str, now: dt.datetime) -> tuple[Issued, str]:
    """An access token and a refresh token for a self-client's grant code (the grant
    ``authorization_code``), with the code's scopes. The code is used up: it is deleted with a
    conditional delete, so of two exchanges of one code only one finds it. ``Invalid`` (subject
    ``GRANT_CODE``) for a code unknown, used, expired, or another client's."""
    code_hash = keyed_hash(token_key(session), code) if code else ""
    mine = (OAuthGrantCode.code_hash == code_hash, OAuthGrantCode.client_id == client.id)
    found = session.execute(select(OAuthGrantCode.scopes, OAuthGrantCode.expires_at).where(*mine)).first()
    if found is None or client.user_id is None:
        raise Invalid("The grant code is unknown, used already, or another client's", subject=GRANT_CODE)
    if found.expires_at <= now:
        raise Invalid("The grant code has expired; make a new one (pigeon oauth self-client --client ...)",
                      subject=GRANT_CODE)
    scopes = scope_rules.parse(found.scopes)
    taken = session.execute(delete(OAuthGrantCode).where(*mine)).rowcount
    if taken != 1:  # a concurrent exchange used it first
        raise Invalid("The grant code is used already", subject=GRANT_CODE)
    refresh_token = new_token()
    session.add(OAuthRefreshToken(token_hash=keyed_hash(token_key(session), refresh_token), client_id=client.id,
                                  scopes=scope_rules.written(scopes), created_at=now))
    return _issue(session, client, scopes, now), refresh_token


def refresh(session: Session, client: OAuthClient, refresh_token: str, now: dt.datetime) -> Issued:
    """A new access token with a refresh token's scopes (the grant ``refresh_token``).
    ``Invalid`` (subject ``REFRESH_TOKEN``) for a refresh token unknown or another client's (a
    revoked client has none left)."""
    scopes = session.scalar(select(OAuthRefreshToken.scopes).where(
        OAuthRefreshToken.token_hash == (keyed_hash(token_key(session), refresh_token) if refresh_token else ""),
        OAuthRefreshToken.client_id == client.id))
    if scopes is None or client.user_id is None or client.revoked:
        raise Invalid("The refresh token is unknown, revoked, or another client's", subject=REFRESH_TOKEN)
    return _issue(session, client, scope_rules.parse(scopes), now)


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
    return Grant(row.client_id, row.account_id, scope_rules.parse(row.scopes), row.expires_at, carrier, row.user_id)


def purge(session: Session, now: dt.datetime) -> int:
    """Forget expired access tokens and grant codes; how many."""
    return sum(session.execute(delete(table).where(table.expires_at <= now)).rowcount
               for table in (OAuthToken, OAuthGrantCode))
