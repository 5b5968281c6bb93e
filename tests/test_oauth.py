"""OAuth 2 in the core (pigeon.oauth) and Zoom's token endpoint over it (POST /oauth/token).

The domain on both databases: clients with scopes, secrets and tokens kept hashed, grants,
expiry, revocation. Then the endpoint over real HTTP, as Zoom's docs (query string) and the
PyPI client ``zoomus`` (form body) ask for a token, its refusals in OAuth's format, the
throttle on failed clients, and the command line that makes clients.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys
import uuid

import httpx
import pytest
from sqlalchemy import func, select
from zoomus.util import generate_token

from conftest import Server, User
from pigeon.accounts.models import Account
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.policy import is_operator
from pigeon.accounts.service import create_account
from pigeon.db import Database, utcnow
from pigeon.errors import Invalid, NotFound
from pigeon.oauth import scopes, service
from pigeon.oauth.models import OAuthClient, OAuthToken

READ = "number_management_numbers:read:master"
WRITE = "number_management_numbers:write:master"


def account_of(db: Database, user: User) -> int:
    with db.read() as session:
        return session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))


def make_client(db: Database, account_id: int, *wanted: str) -> service.NewClient:
    with db.write() as session:
        return service.create_client(session, account_id, wanted or (READ,))


# -- the domain ------------------------------------------------------------------------------

def test_scopes_allow_own_and_master_accounts() -> None:
    held = scopes.parse("number_management_numbers:read, number_management:read:list_numbers:master")
    assert scopes.allows(held, [READ], own_account=True)  # the own-account form of a master scope
    assert not scopes.allows(held, [READ], own_account=False)
    assert scopes.allows(held, [READ, "number_management:read:list_numbers:master"], own_account=False)
    assert not scopes.allows(held, [WRITE], own_account=True)
    assert scopes.unknown(["number_management_numbers:read", "nope:read", "admin"]) == ["admin", "nope:read"]
    assert scopes.written({WRITE, READ}) == f"{READ} {WRITE}"


def test_a_client_is_made_with_known_scopes_for_an_account(db: Database, user: User) -> None:
    account = account_of(db, user)
    new = make_client(db, account, READ, "number_management_numbers:write")
    with db.read() as session:
        row = session.get(OAuthClient, new.id)
        assert row is not None and row.account_id == account and new.secret not in row.secret_hash
        assert row.scopes == f"{READ} number_management_numbers:write"
    for bad, kind in [((), Invalid), (("admin:everything",), Invalid)]:
        with pytest.raises(kind), db.write() as session:
            service.create_client(session, account, bad)
    with pytest.raises(NotFound), db.write() as session:
        service.create_client(session, 2**31 - 1, [READ])


def test_a_token_is_granted_checked_expired_and_revoked(db: Database, user: User) -> None:
    account = account_of(db, user)
    new = make_client(db, account, READ)
    now = utcnow()
    with db.write() as session:
        assert service.check_client(session, new.id, "wrong") is None
        assert service.check_client(session, "no-such-client", new.secret) is None
        assert service.check_client(session, new.id + "\x00", new.secret) is None
        client = service.check_client(session, new.id, new.secret)
        assert client is not None
        with pytest.raises(Invalid, match="does not belong"):
            service.grant_account(session, client, str(account + 1), now)
        issued = service.grant_account(session, client, f" {account} ", now)
    assert issued.expires_in(now) == 3600 and issued.grant.scopes == {READ}
    with db.read() as session:
        assert session.scalar(select(OAuthToken.token_hash)) != issued.token  # kept hashed
        grant = service.authenticate(session, issued.token, now + dt.timedelta(minutes=59))
        assert grant is not None and grant.account_id == account and grant.allows([READ])
        assert grant.allows([READ], own_account=False) and not grant.allows([WRITE])  # it holds the master form
        assert service.authenticate(session, issued.token, now + dt.timedelta(hours=1)) is None  # expired
        assert service.authenticate(session, issued.token + "x", now) is None
        assert service.authenticate(session, "", now) is None
    with db.write() as session:
        assert service.purge(session, now + dt.timedelta(hours=2)) >= 1
    with db.write() as session:
        issued = service.grant_account(session, service.check_client(session, new.id, new.secret), str(account), now)
        assert service.revoke_client(session, new.id) and not service.revoke_client(session, "no-such-client")
    with db.read() as session:
        assert service.authenticate(session, issued.token, now) is None  # revoked: its tokens stop at once
        assert service.check_client(session, new.id, new.secret) is None  # and it gets no new one



def master_account(db: Database, parent_id: int | None = None) -> int:
    """The operator's master account; with ``parent_id``, an account flagged master under another
    (which create_account now refuses, as an older database may still hold one)."""
    with db.write() as session:
        made = create_account(session, f"op-{uuid.uuid4().hex[:10]}@example.com", master=parent_id is None,
                              parent_id=parent_id)
        if parent_id is not None:
            session.get_one(Account, made.user.account_id).is_master = True
        return made.user.account_id


def test_a_peering_providers_client_speaks_for_its_carrier(db: Database, user: User) -> None:
    """A client made with a carrier passes it to every grant its tokens carry; one without has none."""
    account = master_account(db)
    now = utcnow()
    with db.write() as session:
        new = service.create_client(session, account, [READ, WRITE], "peer's", carrier="peer")
        plain = service.create_client(session, account, [READ])
        assert new.carrier == "peer" and plain.carrier is None
        issued = service.grant_account(session, service.check_client(session, new.id, new.secret), str(account), now)
        other = service.grant_account(session, service.check_client(session, plain.id, plain.secret), str(account), now)
        for bad in ("", "no spaces please", "x" * 33):
            with pytest.raises(Invalid, match="carrier"):
                service.create_client(session, account, [READ], carrier=bad)
    assert issued.grant.carrier == "peer" and other.grant.carrier is None
    with db.read() as session:
        assert session.get(OAuthClient, new.id).carrier == "peer"
        assert service.authenticate(session, issued.token, now).carrier == "peer"
        assert service.authenticate(session, other.token, now).carrier is None


def test_only_the_operators_master_account_has_carrier_clients(db: Database, user: User) -> None:
    """A customer's client speaking for a carrier would list every tenant's peering numbers and
    add the carrier's numbers to its own account: only the master account (under no other) may
    have one; any account may have plain clients."""
    customer, master = account_of(db, user), master_account(db)
    under = master_account(db, parent_id=customer)  # a master flag under another account is not the operator's
    with db.write() as session:
        before = session.scalar(select(func.count()).select_from(OAuthClient))
        for account in (customer, under):
            with pytest.raises(Invalid, match=f"operator's master account; account {account} is not it"):
                service.create_client(session, account, [READ, WRITE], carrier="peer")
        assert session.scalar(select(func.count()).select_from(OAuthClient)) == before
        assert service.create_client(session, customer, [READ, WRITE]).carrier is None
        assert service.create_client(session, master, [READ], carrier="peer").carrier == "peer"
        assert is_operator(session, master) and not is_operator(session, customer)
        assert not is_operator(session, under) and not is_operator(session, 999_999_999)
        with pytest.raises(NotFound):
            service.create_client(session, 999_999_999, [READ], carrier="peer")

# -- POST /oauth/token -----------------------------------------------------------------------

def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def own_address() -> dict[str, str]:
    """A client address of its own (uvicorn takes X-Forwarded-For from loopback): failures
    counted here touch no other test."""
    n = uuid.uuid4().int
    return {"x-forwarded-for": f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"}


def test_a_token_as_zoom_documents_it_and_as_zoomus_asks(db: Database, server: Server, user: User) -> None:
    account = account_of(db, user)
    new = make_client(db, account, READ, WRITE)
    documented = httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials",
                                                                 "account_id": str(account)},
                            headers=basic(new.id, new.secret))
    assert documented.status_code == 200, documented.text
    body = documented.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "api_url"}
    assert body["token_type"] == "bearer" and 3590 <= body["expires_in"] <= 3600
    assert body["scope"] == f"{READ} {WRITE}" and body["api_url"] == server.url
    assert documented.headers["cache-control"] == "no-store"
    token = generate_token(f"{server.url}/oauth/token", new.id, new.secret, str(account))  # zoomus, form body
    assert token and token != body["access_token"]
    with db.read() as session:
        for issued in (token, body["access_token"]):
            grant = service.authenticate(session, issued, utcnow())
            assert grant is not None and grant.account_id == account and grant.client_id == new.id


def test_token_refusals_in_oauths_format(db: Database, server: Server, user: User, other: User) -> None:
    account = account_of(db, user)
    new = make_client(db, account, READ)
    url = f"{server.url}/oauth/token"
    form = {"grant_type": "account_credentials", "account_id": str(account)}
    cases = [
        (httpx.post(url, data=form, headers={**basic(new.id, "wrong"), **own_address()}), 401, "invalid_client"),
        (httpx.post(url, data=form, headers={**basic("nobody", new.secret), **own_address()}), 401, "invalid_client"),
        (httpx.post(url, data=form, headers=own_address()), 401, "invalid_client"),
        (httpx.post(url, data={**form, "grant_type": "client_credentials"}, headers=basic(new.id, new.secret)), 400,
         "unsupported_grant_type"),
        (httpx.post(url, data={"grant_type": "account_credentials"}, headers=basic(new.id, new.secret)), 400,
         "invalid_request"),
        (httpx.post(url, data={**form, "account_id": str(account_of(db, other))}, headers=basic(new.id, new.secret)),
         400, "invalid_request"),
        (httpx.get(url, params=form, headers=basic(new.id, new.secret)), 405, "invalid_request"),
        (httpx.post(url, content=b"grant_type=account_credentials&account_id=%ff", headers={
            **basic(new.id, new.secret), "content-type": "application/x-www-form-urlencoded"}), 400, "invalid_request"),
    ]
    for number, (answer, status, error) in enumerate(cases):
        assert answer.status_code == status, (number, answer.text)
        assert answer.json()["error"] == error and answer.json()["reason"], (number, answer.text)
    with db.read() as session:  # nothing refused was granted
        assert session.scalar(select(OAuthToken.token_hash).where(OAuthToken.client_id == new.id)) is None


def test_failed_clients_are_throttled(db: Database, server: Server, user: User) -> None:
    account = account_of(db, user)
    new = make_client(db, account, READ)
    form = {"grant_type": "account_credentials", "account_id": str(account)}
    answers = [httpx.post(f"{server.url}/oauth/token", data=form, headers={**basic(new.id, "wrong"), **own_address()})
               for _ in range(11)]  # ten failures for one client (signin.email_failures), from eleven addresses
    assert [a.status_code for a in answers] == [401] * 10 + [429]
    assert answers[-1].json()["error"] == "too_many_requests" and int(answers[-1].headers["retry-after"]) >= 1
    right = httpx.post(f"{server.url}/oauth/token", data=form, headers={**basic(new.id, new.secret), **own_address()})
    assert right.status_code == 200, right.text  # the right secret passes: a client id is no secret, and
    # refusing its owner would let anyone who knows it lock the integration out


def test_clients_on_the_command_line(db: Database, server: Server, user: User) -> None:
    def pigeon(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pigeon", "oauth", "client", *args], env=server.env,
                              cwd=server.workdir, capture_output=True, text=True, timeout=60)

    account = account_of(db, user)
    made = pigeon("create", "--account", str(account), "--scopes", f"{READ},{WRITE}", "--name", "crm")
    assert made.returncode == 0, made.stderr
    lines = made.stdout.strip().splitlines()
    client_id, secret = lines[0].split()[-1], lines[-1]
    assert httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials", "account_id": account},
                      headers=basic(client_id, secret)).status_code == 200
    listed = pigeon("list", "--account", str(account))
    assert client_id in listed.stdout and "active" in listed.stdout and secret not in listed.stdout
    assert pigeon("revoke", client_id).returncode == 0
    assert "revoked" in pigeon("list", "--account", str(account)).stdout
    assert httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials", "account_id": account},
                      headers={**basic(client_id, secret), **own_address()}).status_code == 401
    refused = pigeon("create", "--account", str(account), "--scopes", "everything")
    assert refused.returncode == 1 and refused.stderr.startswith("Error: Unknown scope(s): everything"), refused.stderr
    assert pigeon("revoke", "no-such-client").returncode == 1


def test_a_carriers_client_on_the_command_line(db: Database, server: Server, user: User) -> None:
    """``--carrier NAME`` names a configured carrier (``[[carriers]]``, or ``default`` for carrier_url)."""
    import json

    carriers = [{"name": "peer", "type": "simulator", "code": 8801}, {"name": "other", "type": "simulator"}]
    env = {**server.env, "PIGEON_CARRIERS": json.dumps(carriers)}

    def pigeon(*args: str, environment: dict[str, str] = env) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pigeon", "oauth", "client", *args], env=environment,
                              cwd=server.workdir, capture_output=True, text=True, timeout=60)

    account, customer = master_account(db), account_of(db, user)
    on_customer = pigeon("create", "--account", str(customer), "--scopes",
                         "number_management_numbers:read number_management_numbers:write", "--carrier", "peer")
    assert on_customer.returncode == 1 and on_customer.stdout == "", on_customer
    assert on_customer.stderr == (f"Error: A client that speaks for a carrier must be on the operator's master account; "
                                  f"account {customer} is not it\n"), on_customer.stderr
    assert "no clients" in pigeon("list", "--account", str(customer)).stderr
    made = pigeon("create", "--account", str(account), "--scopes", READ, "--carrier", "peer")
    assert made.returncode == 0, made.stderr
    assert "carrier:   peer" in made.stdout
    client_id = made.stdout.splitlines()[0].split()[-1]
    with db.read() as session:
        assert session.get(OAuthClient, client_id).carrier == "peer"
    listed = pigeon("list", "--account", str(account)).stdout
    assert f"{client_id}  account {account}  carrier peer  active" in listed
    refused = pigeon("create", "--account", str(account), "--scopes", READ, "--carrier", "nope")
    assert refused.returncode == 1 and "no carrier named 'nope'" in refused.stderr and "peer, other" in refused.stderr
    unconfigured = pigeon("create", "--account", str(account), "--scopes", READ, "--carrier", "peer",
                          environment=server.env)
    assert unconfigured.returncode == 1 and "the configured ones are none" in unconfigured.stderr
    url_one = pigeon("create", "--account", str(account), "--scopes", READ, "--carrier", "default",
                     environment={**server.env, "PIGEON_CARRIER_URL": "smpp://a:b@127.0.0.1:1"})
    assert url_one.returncode == 0, url_one.stderr


def test_client_ids_are_letters_and_digits() -> None:
    """A leading "-" made `pigeon oauth client revoke <id>` read the id as an option (CI, once in ~32)."""
    ids = {service.new_client_id() for _ in range(2000)}
    assert len(ids) == 2000 and all(len(i) == 22 and i.isascii() and i.isalnum() for i in ids)
