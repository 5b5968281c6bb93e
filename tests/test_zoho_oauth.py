"""Zoho's OAuth over pigeon.oauth: a user's self-client, its one-time grant code, refresh tokens,
and Zoho's token endpoint (POST /oauth/v2/token).

The domain on both databases: Zoho's scopes, self-clients (Zoho's scopes only, a user's),
codes and refresh tokens kept hashed, a code used once (two concurrent exchanges: one wins),
expiry, revocation, purge. Then the endpoint over real HTTP as applications call it (form
body and query string), its refusals in OAuth's format, and ``pigeon oauth self-client``.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys
import threading
import uuid

import httpx
import pytest
from sqlalchemy import func, select, text

from conftest import Server, User
from pigeon.accounts.models import User as UserRow
from pigeon.db import Database, utcnow
from pigeon.errors import Invalid, NotFound
from pigeon.oauth import scopes, service
from pigeon.oauth.models import OAuthClient, OAuthGrantCode, OAuthRefreshToken, OAuthToken

CREATE, READ, GET, ALL = "ZohoVoice.sms.CREATE", "ZohoVoice.sms.READ", "ZohoVoice.sms.GET", "ZohoVoice.sms.ALL"
ZOOM_READ = "number_management_numbers:read:master"
TEN_MINUTES = dt.timedelta(minutes=10)
LOGS = "/rest/json/v1/sms/logs"  # a route of Zoho's API that reads (ZohoVoice.sms.READ)


def account_of(db: Database, user: User) -> int:
    with db.read() as session:
        return session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))


def self_client(db: Database, user: User, *wanted: str) -> service.NewClient:
    with db.write() as session:
        return service.create_self_client(session, user.user_id, wanted or (CREATE, READ))


def code_for(db: Database, client_id: str, *wanted: str, now: dt.datetime | None = None,
             lifetime: dt.timedelta = TEN_MINUTES) -> str:
    with db.write() as session:
        return service.issue_grant_code(session, client_id, wanted, now or utcnow(), lifetime)


def own_address() -> dict[str, str]:
    """A client address of its own (uvicorn takes X-Forwarded-For from loopback): failures
    counted here touch no other test."""
    n = uuid.uuid4().int
    return {"x-forwarded-for": f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"}


# -- the domain ------------------------------------------------------------------------------

def test_zohos_scopes_read_and_get_are_one_and_all_holds_both() -> None:
    assert scopes.unknown([CREATE, READ, GET, ALL, "ZohoVoice.sms.DELETE", CREATE + ":master"]) == [
        CREATE + ":master", "ZohoVoice.sms.DELETE"]
    for held, needed, allowed in [
        ({READ}, [GET], True), ({GET}, [READ], True), ({ALL}, [CREATE], True), ({ALL}, [GET], True),
        ({CREATE}, [READ, GET], False), ({READ}, [CREATE], False), ({GET}, [ALL], False),
    ]:
        for own in (True, False):
            assert scopes.allows(frozenset(held), needed, own_account=own) is allowed, (held, needed, own)
    assert not scopes.allows(frozenset({ALL}), [ZOOM_READ], own_account=True)
    assert scopes.written({READ, CREATE}) == f"{CREATE} {READ}"


def test_a_self_client_is_a_users_with_zohos_scopes_only(db: Database, user: User) -> None:
    new = self_client(db, user, CREATE, GET)
    assert new.user_id == user.user_id and new.account_id == account_of(db, user) and new.scopes == {CREATE, GET}
    with db.read() as session:
        row = session.get(OAuthClient, new.id)
        assert row.user_id == user.user_id and row.account_id == new.account_id and row.scopes == f"{CREATE} {GET}"
        assert new.secret not in row.secret_hash and user.email in row.name
        assert service.check_client(session, new.id, new.secret) is not None
    for bad, match in [((), "at least one"), ((CREATE, ZOOM_READ), "only Zoho's scopes"),
                       (("ZohoVoice.everything",), "Unknown scope")]:
        with pytest.raises(Invalid, match=match), db.write() as session:
            service.create_self_client(session, user.user_id, bad)
    with pytest.raises(NotFound), db.write() as session:
        service.create_self_client(session, 2**31 - 1, [CREATE])
    with pytest.raises(Invalid, match="self-client"), db.write() as session:  # a Zoom client's tokens act as nobody
        service.create_client(session, new.account_id, [ZOOM_READ, CREATE])


def test_a_code_is_exchanged_once_then_refreshed_until_revoked(db: Database, user: User) -> None:
    new = self_client(db, user)
    now = utcnow()
    with db.write() as session:
        zoom = service.create_client(session, new.account_id, [ZOOM_READ])
    for client_id, wanted, kind, match in [
        (new.id, (ALL,), Invalid, "does not hold ZohoVoice.sms.ALL"),
        (zoom.id, (), Invalid, "not a self-client"),
        ("no-such-client", (), NotFound, "No client"),
    ]:
        with pytest.raises(kind, match=match):
            code_for(db, client_id, *wanted)
    code = code_for(db, new.id, CREATE, now=now)  # some of its scopes
    with db.read() as session:
        row = session.scalar(select(OAuthGrantCode).where(OAuthGrantCode.client_id == new.id))
        assert row.code_hash != code and code not in row.code_hash  # kept hashed
        assert row.expires_at == now + TEN_MINUTES and row.scopes == CREATE
    with db.write() as session:
        client = service.check_client(session, new.id, new.secret)
        issued, refresh_token = service.exchange_code(session, client, code, now)
    assert issued.grant.user_id == user.user_id and issued.grant.scopes == {CREATE}
    assert issued.expires_in(now) == 3600 and issued.grant.account_id == new.account_id
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(OAuthGrantCode)
                              .where(OAuthGrantCode.client_id == new.id)) == 0  # used up
        stored = session.scalar(select(OAuthRefreshToken).where(OAuthRefreshToken.client_id == new.id))
        assert stored.token_hash != refresh_token and stored.scopes == CREATE  # kept hashed
        token_row = session.scalar(select(OAuthToken).where(OAuthToken.client_id == new.id))
        assert token_row.user_id == user.user_id and token_row.token_hash != issued.token
        grant = service.authenticate(session, issued.token, now)
        assert grant.user_id == user.user_id and grant.allows([CREATE]) and not grant.allows([READ])
    with pytest.raises(Invalid, match="used already") as used, db.write() as session:
        service.exchange_code(session, client, code, now)
    assert used.value.subject == service.GRANT_CODE
    with db.write() as session:
        refreshed = service.refresh(session, client, refresh_token, now + dt.timedelta(hours=5))
    assert refreshed.token != issued.token and refreshed.grant.scopes == {CREATE}
    assert refreshed.grant.user_id == user.user_id
    with db.read() as session:
        assert service.authenticate(session, refreshed.token, now + dt.timedelta(hours=5)).user_id == user.user_id
        assert service.authenticate(session, issued.token, now + dt.timedelta(hours=5)) is None  # the old one expired
    with pytest.raises(Invalid, match="refresh token") as wrong, db.write() as session:
        service.refresh(session, client, refresh_token + "x", now)
    assert wrong.value.subject == service.REFRESH_TOKEN
    other = self_client(db, user)
    with pytest.raises(Invalid) as elsewhere, db.write() as session:  # another client's refresh token
        service.refresh(session, service.check_client(session, other.id, other.secret), refresh_token, now)
    assert elsewhere.value.subject == service.REFRESH_TOKEN
    waiting = code_for(db, new.id)
    with db.write() as session:
        assert service.revoke_client(session, new.id)
    with db.read() as session:
        for table in (OAuthToken, OAuthRefreshToken, OAuthGrantCode):
            assert session.scalar(select(func.count()).select_from(table).where(table.client_id == new.id)) == 0
        assert service.check_client(session, new.id, new.secret) is None
    with pytest.raises(Invalid), db.write() as session:  # the client object as a request held it before
        service.refresh(session, client, refresh_token, now)
    with pytest.raises(Invalid), db.write() as session:
        service.exchange_code(session, client, waiting, now)
    with pytest.raises(Invalid, match="revoked"):
        code_for(db, new.id)


def test_an_expired_code_is_refused_and_purged(db: Database, user: User) -> None:
    new = self_client(db, user)
    then = utcnow() - dt.timedelta(hours=1)
    code = code_for(db, new.id, now=then)
    fresh = code_for(db, new.id)
    with pytest.raises(Invalid, match="expired") as expired, db.write() as session:
        service.exchange_code(session, service.check_client(session, new.id, new.secret), code, utcnow())
    assert expired.value.subject == service.GRANT_CODE
    with db.write() as session:
        assert service.purge(session, utcnow()) >= 1
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(OAuthGrantCode)
                              .where(OAuthGrantCode.client_id == new.id)) == 1  # the fresh one stays
    with db.write() as session:
        service.exchange_code(session, service.check_client(session, new.id, new.secret), fresh, utcnow())


def test_two_concurrent_exchanges_of_one_code_one_wins(db: Database, user: User) -> None:
    """The first exchange has deleted the code and not yet committed; the second, in another
    transaction, finds the code still there (or, on SQLite, waits for the one writer), then
    finds it gone: refused."""
    new = self_client(db, user)
    code = code_for(db, new.id)
    outcome: list[object] = []

    def second() -> None:
        try:
            with db.write() as session:
                client = session.get(OAuthClient, new.id)
                outcome.append(service.exchange_code(session, client, code, utcnow()))
        except Exception as exc:  # noqa: BLE001 - what the second one met is the test's result
            outcome.append(exc)

    with db.write() as session:
        first = service.exchange_code(session, session.get(OAuthClient, new.id), code, utcnow())
        racer = threading.Thread(target=second)
        racer.start()
        if db.engine.dialect.name == "postgresql":  # let it reach the code's row lock before committing
            with db.engine.connect() as watcher:
                for _ in range(3000):
                    waiting = watcher.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database() AND query LIKE 'DELETE FROM oauth_grant_codes%'")).scalar()
                    watcher.commit()
                    if waiting:
                        break
                    threading.Event().wait(0.01)
                assert waiting, "the second exchange never waited on the first's delete"
    racer.join(30)
    assert first[0].grant.user_id == user.user_id
    assert len(outcome) == 1 and isinstance(outcome[0], Invalid), outcome
    assert outcome[0].subject == service.GRANT_CODE


# -- POST /oauth/v2/token ----------------------------------------------------------------------

def pigeon(server: Server, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pigeon", "oauth", *args], env=env or server.env,
                          cwd=server.workdir, capture_output=True, text=True, timeout=60)


def printed(out: str) -> dict[str, str]:
    """``key: value`` lines of ``pigeon oauth self-client``."""
    return {key.strip(): value.strip() for key, sep, value in (line.partition(":") for line in out.splitlines())
            if sep and not key.startswith("curl")}


def token_url(server: Server) -> str:
    return f"{server.url}/oauth/v2/token"


def test_a_self_client_from_the_command_line_and_its_code_exchanged(db: Database, server: Server, user: User) -> None:
    made = pigeon(server, "self-client", "--user", user.email, "--scopes", f"{CREATE},{READ}")
    assert made.returncode == 0, made.stderr
    shown = printed(made.stdout)
    client_id, secret, code = shown["client id"], shown["client secret"], shown["grant code"]
    assert shown["scopes"] == f"{CREATE} {READ}" and "10 minutes" in shown["expires"]
    assert f"-d client_id={client_id} -d client_secret={secret} -d code={code}" in made.stdout
    assert "/oauth/v2/token" in made.stdout and made.stdout.count("curl ") == 1
    with db.read() as session:
        assert session.get(OAuthClient, client_id).user_id == user.user_id

    exchanged = httpx.post(token_url(server), data={"grant_type": "authorization_code", "client_id": client_id,
                                                    "client_secret": secret, "code": code,
                                                    "redirect_uri": "https://example.com/ignored"})
    assert exchanged.status_code == 200, exchanged.text
    body = exchanged.json()
    assert set(body) == {"access_token", "refresh_token", "scope", "api_domain", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["api_domain"] == server.url
    assert body["scope"] == f"{CREATE} {READ}" and exchanged.headers["cache-control"] == "no-store"
    with db.read() as session:
        grant = service.authenticate(session, body["access_token"], utcnow())
        assert grant.user_id == user.user_id and grant.client_id == client_id and grant.allows([GET])

    again = httpx.post(token_url(server), data={"grant_type": "authorization_code", "client_id": client_id,
                                                "client_secret": secret, "code": code})
    assert again.status_code == 400 and again.json()["error"] == "invalid_code", again.text

    # a new code for the same client, by user id; no secret shown; exchanged in the query string
    more = pigeon(server, "self-client", "--user", str(user.user_id), "--client", client_id, "--scopes", GET)
    assert more.returncode == 0, more.stderr
    shown = printed(more.stdout)
    assert "client secret" not in shown and secret not in more.stdout and "client_secret=<CLIENT_SECRET>" in more.stdout
    assert shown["client id"] == client_id and shown["scopes"] == GET
    by_query = httpx.post(token_url(server), params={"grant_type": "authorization_code", "client_id": client_id,
                                                     "client_secret": secret, "code": shown["grant code"]})
    assert by_query.status_code == 200, by_query.text
    assert by_query.json()["scope"] == GET and by_query.json()["refresh_token"] != body["refresh_token"]

    # the refresh token, in the form body and in the query string: a new token that works
    for how in ("data", "params"):
        refreshed = httpx.post(token_url(server), **{how: {"grant_type": "refresh_token", "client_id": client_id,
                                                           "client_secret": secret,
                                                           "refresh_token": body["refresh_token"]}})
        assert refreshed.status_code == 200, refreshed.text
        fresh = refreshed.json()
        assert set(fresh) == {"access_token", "api_domain", "token_type", "expires_in"}
        assert fresh["access_token"] != body["access_token"] and fresh["expires_in"] == 3600
        with db.read() as session:
            grant = service.authenticate(session, fresh["access_token"], utcnow())
            assert grant.user_id == user.user_id and grant.scopes == {CREATE, READ}
        logs = httpx.get(f"{server.url}{LOGS}", headers={"Authorization": f"Zoho-oauthtoken {fresh['access_token']}"})
        assert logs.status_code == 200 and logs.json()["code"] == "ZVSMS-2000", logs.text  # it works
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()  # RFC 6749's client authentication
    assert httpx.post(token_url(server), data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                      headers={"Authorization": f"Basic {basic}"}).status_code == 200


def test_self_client_refusals_on_the_command_line(db: Database, server: Server, user: User, other: User) -> None:
    zoom_scope = pigeon(server, "self-client", "--user", user.email, "--scopes", f"{CREATE} {ZOOM_READ}")
    assert zoom_scope.returncode == 1 and zoom_scope.stdout == ""
    assert zoom_scope.stderr.startswith("Error: A self-client holds only Zoho's scopes"), zoom_scope.stderr
    nobody = pigeon(server, "self-client", "--user", "nobody@example.com", "--scopes", CREATE)
    assert nobody.returncode == 1 and "no user nobody@example.com" in nobody.stderr
    assert pigeon(server, "self-client", "--user", user.email).returncode == 2  # no scopes, no client
    theirs = self_client(db, other)
    foreign = pigeon(server, "self-client", "--user", user.email, "--client", theirs.id)
    assert foreign.returncode == 1 and f"no self-client {theirs.id}" in foreign.stderr
    mine = self_client(db, user, CREATE)
    lacking = pigeon(server, "self-client", "--user", user.email, "--client", mine.id, "--scopes", READ)
    assert lacking.returncode == 1 and "does not hold ZohoVoice.sms.READ" in lacking.stderr
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(OAuthGrantCode)
                              .where(OAuthGrantCode.client_id.in_([theirs.id, mine.id]))) == 0


def test_token_refusals_in_oauths_format(db: Database, server: Server, user: User) -> None:
    new = self_client(db, user)
    code = code_for(db, new.id)
    expired = code_for(db, new.id, now=utcnow() - dt.timedelta(hours=1))
    url = token_url(server)
    grant = {"grant_type": "authorization_code", "client_id": new.id, "client_secret": new.secret}
    with db.write() as session:
        zoom = service.create_client(session, new.account_id, [ZOOM_READ])
    cases = [
        (httpx.post(url, data={**grant, "code": code, "client_secret": "wrong"}, headers=own_address()), 401,
         "invalid_client"),
        (httpx.post(url, data={**grant, "code": code, "client_id": "nobody"}, headers=own_address()), 401,
         "invalid_client"),
        (httpx.post(url, data={"grant_type": "authorization_code", "code": code}, headers=own_address()), 401,
         "invalid_client"),
        (httpx.post(url, data={**grant, "code": code, "client_id": zoom.id, "client_secret": zoom.secret}), 400,
         "invalid_code"),  # another client's code
        (httpx.post(url, data={**grant, "code": expired}), 400, "invalid_code"),
        (httpx.post(url, data={**grant, "code": code + "x"}), 400, "invalid_code"),
        (httpx.post(url, data={**grant, "grant_type": "refresh_token", "refresh_token": code}), 400, "invalid_code"),
        (httpx.post(url, data=grant), 400, "invalid_request"),  # no code
        (httpx.post(url, data={**grant, "code": code, "grant_type": "client_credentials"}), 400,
         "unsupported_grant_type"),
        (httpx.post(url, data={**grant, "code": code, "grant_type": ""}), 400, "invalid_request"),
        (httpx.get(url, params={**grant, "code": code}), 405, "invalid_request"),
        (httpx.post(url, content=b"grant_type=authorization_code&code=%ff",
                    headers={"content-type": "application/x-www-form-urlencoded"}), 400, "invalid_request"),
        (httpx.post(url, content=b"grant_type=authorization_code&code=\xff",
                    headers={"content-type": "application/x-www-form-urlencoded"}), 400, "invalid_request"),
        (httpx.post(url + "?code=%C0", data={**grant}), 400, "invalid_request"),
    ]
    for number, (answer, status, error) in enumerate(cases):
        assert answer.status_code == status, (number, answer.text)
        assert answer.json()["error"] == error and answer.json()["error_description"], (number, answer.text)
    assert cases[0][0].headers["www-authenticate"].startswith("Basic")
    with db.read() as session:  # nothing refused was granted, and the good code is still there
        assert session.scalar(select(func.count()).select_from(OAuthToken).where(OAuthToken.client_id == new.id)) == 0
        assert session.scalar(select(func.count()).select_from(OAuthRefreshToken)
                              .where(OAuthRefreshToken.client_id == new.id)) == 0
    assert httpx.post(url, data={**grant, "code": code}).status_code == 200


def test_a_revoked_clients_refresh_token_is_refused(db: Database, server: Server, user: User) -> None:
    new = self_client(db, user)
    exchanged = httpx.post(token_url(server), data={"grant_type": "authorization_code", "client_id": new.id,
                                                    "client_secret": new.secret, "code": code_for(db, new.id)})
    assert exchanged.status_code == 200, exchanged.text
    refresh = {"grant_type": "refresh_token", "client_id": new.id, "client_secret": new.secret,
               "refresh_token": exchanged.json()["refresh_token"]}
    assert httpx.post(token_url(server), data=refresh).status_code == 200
    revoked = pigeon(server, "client", "revoke", new.id)
    assert revoked.returncode == 0, revoked.stderr
    refused = httpx.post(token_url(server), data=refresh, headers=own_address())
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client", refused.text
    with db.read() as session:
        assert service.authenticate(session, exchanged.json()["access_token"], utcnow()) is None


def test_failed_clients_are_throttled(db: Database, server: Server, user: User) -> None:
    new = self_client(db, user)
    form = {"grant_type": "refresh_token", "client_id": new.id, "client_secret": "wrong", "refresh_token": "r"}
    answers = [httpx.post(token_url(server), data=form, headers=own_address())
               for _ in range(11)]  # ten failures for one client (signin.email_failures), from eleven addresses
    assert [a.status_code for a in answers] == [401] * 10 + [429]
    assert answers[-1].json()["error"] == "too_many_requests" and int(answers[-1].headers["retry-after"]) >= 1
    right = httpx.post(token_url(server), headers=own_address(), data={
        "grant_type": "authorization_code", "client_id": new.id, "client_secret": new.secret,
        "code": code_for(db, new.id, CREATE)})
    assert right.status_code == 200, right.text  # its owner is never locked out by others' wrong secrets


def test_a_zoom_token_acts_as_no_user_and_a_self_client_gets_none(db: Database, server: Server, user: User) -> None:
    account = account_of(db, user)
    with db.write() as session:
        zoom = service.create_client(session, account, [ZOOM_READ])
    basic = {"Authorization": "Basic " + base64.b64encode(f"{zoom.id}:{zoom.secret}".encode()).decode()}
    answer = httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials",
                                                            "account_id": str(account)}, headers=basic)
    assert answer.status_code == 200, answer.text
    with db.read() as session:
        grant = service.authenticate(session, answer.json()["access_token"], utcnow())
        assert grant is not None and grant.account_id == account and grant.user_id is None
        assert session.scalar(select(OAuthToken.user_id).where(OAuthToken.client_id == zoom.id)) is None
    nobody = httpx.get(f"{server.url}{LOGS}", headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
    assert nobody.status_code == 401, nobody.text  # on Zoho's API, it acts as nobody
    mine = self_client(db, user)
    basic = {"Authorization": "Basic " + base64.b64encode(f"{mine.id}:{mine.secret}".encode()).decode()}
    refused = httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials",
                                                             "account_id": str(account)}, headers=basic)
    assert refused.status_code == 400 and "self-client" in refused.json()["reason"], refused.text


def test_api_domain_is_the_configured_one(db: Database, server: Server, user: User,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    """``zoho.api_domain``, else ``public_url``, else the request's base URL (the shared server's)."""
    configured = Server(server.database_url, tmp_path_factory.mktemp("zoho-domain"),
                        extra_env={"PIGEON_ZOHO__API_DOMAIN": "https://api.example.com/",
                                   "PIGEON_PUBLIC_URL": "https://pigeon.example.com"}).start()
    public = Server(server.database_url, tmp_path_factory.mktemp("zoho-public"),
                    extra_env={"PIGEON_PUBLIC_URL": "https://pigeon.example.com/"}).start()
    try:
        new = self_client(db, user)
        for srv, expected in [(configured, "https://api.example.com"), (public, "https://pigeon.example.com")]:
            answer = httpx.post(token_url(srv), data={"grant_type": "authorization_code", "client_id": new.id,
                                                      "client_secret": new.secret, "code": code_for(db, new.id)})
            assert answer.status_code == 200, answer.text
            assert answer.json()["api_domain"] == expected
    finally:
        configured.stop()
        public.stop()
