"""Signing in over real HTTP: credentials checked before any body is read, failed sign-ins
throttled per client address and per email across processes, the same work whether or not an
email exists, and tokens stored under a keyed hash (old plain SHA-256 rows upgraded)."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, select, update

from conftest import API, Server, User, fresh_postgres, make_user
from pigeon.accounts import security
from pigeon.accounts import service as accounts
from pigeon.accounts.models import User as UserRow
from pigeon.db import Database
from pigeon.migrations import upgrade

# -- credentials before the body -----------------------------------------------------------


def test_an_unauthenticated_xml_body_is_never_parsed(server: Server, user: User) -> None:
    malformed = b"<webServiceSendSmsRequest><message>" + b"<a>" * 50_000  # invalid, and costly to parse
    for headers in ({}, {"email": user.email, "token": "wrong"}, {"email": "nobody@example.com", "token": user.token}):
        response = httpx.post(f"{server.url}{API}/sms/send", content=malformed,
                              headers={"content-type": "application/xml", **headers})
        assert response.status_code == 401, response.text
        assert response.json()["code"] == 8
    signed_in = httpx.post(f"{server.url}{API}/sms/send", content=malformed,
                           headers={"content-type": "application/xml", "email": user.email, "token": user.token})
    assert signed_in.status_code == 400 and "Invalid XML" in signed_in.json()["developerMessage"]


def test_a_401_comes_before_the_body_does(server: Server, user: User) -> None:
    """The server answers a request without credentials while its body has not even been sent:
    it never waits to read it."""
    for extra in (b"", f"email: {user.email}\r\ntoken: wrong\r\n".encode()):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(f"POST {API}/sms/send.xml HTTP/1.1\r\nhost: x\r\ncontent-type: application/xml\r\n"
                         "content-length: 200000\r\n".encode() + extra + b"\r\n<webServiceSendSmsRequest>")
            answer = b""
            while b"</restErrorDTO>" not in answer:  # a socket.timeout if the server waits for the body
                chunk = sock.recv(65536)
                assert chunk, answer
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 401 ") and b"<code>8</code>" in answer, answer[:300]


# -- throttling failed sign-ins, across two processes on one database ----------------------

LIMIT_EMAIL, LIMIT_ADDRESS, WINDOW = 3, 5, 8  # a window wide enough for a loaded machine (16 requests in 3 s failed at load 9)


@dataclass
class Pair:
    """Two `pigeon serve` processes on one fresh database, with tight sign-in limits."""

    a: Server
    b: Server
    db: Database

    def user(self) -> User:
        return make_user(self.db, self.a)


@pytest.fixture(scope="module")
def pair(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    workdir = tmp_path_factory.mktemp("signin")
    with fresh_database(database_url, workdir) as url:
        env = {"PIGEON_SIGNIN__EMAIL_FAILURES": str(LIMIT_EMAIL), "PIGEON_SIGNIN__ADDRESS_FAILURES": str(LIMIT_ADDRESS),
               "PIGEON_SIGNIN__WINDOW": str(WINDOW)}
        a = Server(url, workdir, extra_env=env).start()
        b = Server(url, workdir, extra_env=env).start()
        db = Database(url)
        try:
            yield Pair(a, b, db)
        finally:
            a.stop()
            b.stop()
            db.dispose()


class fresh_database:
    """An empty database of the same backend as ``database_url``."""

    def __init__(self, database_url: str, workdir: Path):
        self.postgres = None if database_url.startswith("sqlite") else fresh_postgres()
        self.sqlite = f"sqlite:///{workdir / f'{uuid.uuid4().hex[:8]}.db'}"

    def __enter__(self) -> str:
        return self.postgres.__enter__() if self.postgres else self.sqlite

    def __exit__(self, *exc: object) -> None:
        if self.postgres:
            self.postgres.__exit__(*exc)


def address() -> str:
    """A client address of its own: uvicorn takes X-Forwarded-For from a loopback proxy."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


def balance(srv: Server, email: str, token: str, ip: str, **kw: object) -> httpx.Response:
    return httpx.get(f"{srv.url}{API}/account/balance", headers={"email": email, "token": token, "x-forwarded-for": ip},
                     **kw)  # type: ignore[arg-type]


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == 14 and body["status"] == "TOO_MANY_REQUESTS" and body["message"] == "Too many requests"
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW


def test_failures_for_one_email_are_throttled_across_processes_and_addresses(pair: Pair) -> None:
    victim, bystander = pair.user(), pair.user()
    for srv in (pair.a, pair.b, pair.a):  # a failure on each process, from a new address each time
        assert balance(srv, victim.email, "wrong", address()).status_code == 401
    started = time.monotonic()
    assert_throttled(balance(pair.a, victim.email.upper(), "wrong", address()))
    wrong_basic = httpx.get(f"{pair.a.url}{API}/account/balance", auth=(victim.email, "wrong"),
                            headers={"x-forwarded-for": address()})
    assert_throttled(wrong_basic)
    # the right token still passes: anyone may send wrong ones for an email, and a random token
    # cannot be guessed, so the throttle never locks an integration out
    assert balance(pair.b, victim.email, victim.token, address()).status_code == 200
    basic = httpx.get(f"{pair.a.url}{API}/account/balance", auth=(victim.email, victim.token),
                      headers={"x-forwarded-for": address()})
    assert basic.status_code == 200
    here = address()
    assert balance(pair.b, bystander.email, bystander.token, here).status_code == 200  # same address, other email
    time.sleep(max(0.0, WINDOW + 0.2 - (time.monotonic() - started)))
    assert balance(pair.a, victim.email, "wrong", here).status_code == 401  # the window closed: counted afresh


def test_failures_from_one_address_are_throttled_across_processes(pair: Pair) -> None:
    user, ip = pair.user(), address()
    for i in range(LIMIT_ADDRESS - 1):  # unknown emails, each failing once
        srv = (pair.a, pair.b)[i % 2]
        assert balance(srv, f"nobody-{uuid.uuid4().hex[:6]}@example.com", "guess", ip).status_code == 401
    assert balance(pair.a, user.email, user.token, ip).status_code == 200  # below the limit: signs in
    for _ in range(10):  # successes are not counted
        assert balance(pair.b, user.email, user.token, ip).status_code == 200
    basic = httpx.get(f"{pair.b.url}{API}/account/balance", auth=(user.email, "wrong"), headers={"x-forwarded-for": ip})
    assert basic.status_code == 401  # the fifth failure
    assert_throttled(balance(pair.a, user.email, "wrong again", ip))
    assert_throttled(httpx.get(f"{pair.b.url}{API}/sms/send-url/not-{user.url_token}", headers={"x-forwarded-for": ip},
                               params={"recipientNumber": "+27821234567", "message": "x"}))
    assert balance(pair.a, user.email, user.token, ip).status_code == 200  # a right token is never refused
    assert balance(pair.b, user.email, "wrong", address()).status_code == 401  # another address: its own count


def test_bad_url_tokens_are_throttled_per_address(pair: Pair) -> None:
    user, ip = pair.user(), address()
    params = {"recipientNumber": "+27821234567", "message": "by url"}
    ok = httpx.get(f"{pair.a.url}{API}/sms/send-url/{user.url_token}", params=params, headers={"x-forwarded-for": ip})
    assert ok.status_code == 200
    for i in range(LIMIT_ADDRESS):
        guess = httpx.post(f"{(pair.a, pair.b)[i % 2].url}{API}/sms/send-url/{uuid.uuid4().hex}.xml", params=params,
                           headers={"x-forwarded-for": ip})
        assert guess.status_code == 401 and b"<code>8</code>" in guess.content
    assert_throttled(httpx.get(f"{pair.b.url}{API}/sms/send-url/{uuid.uuid4().hex}", params=params,
                               headers={"x-forwarded-for": ip}))  # past the limit, a guess is answered 429
    assert httpx.get(f"{pair.b.url}{API}/sms/send-url/{uuid.uuid4().hex}", params=params,
                     headers={"x-forwarded-for": address()}).status_code == 401  # another address: its own count
    assert httpx.get(f"{pair.b.url}{API}/sms/send-url/{user.url_token}", params=params,
                     headers={"x-forwarded-for": ip}).status_code == 200  # the right token is never refused


def burst(requests: list) -> list[httpx.Response]:  # type: ignore[type-arg]
    """Send every request at once (threads released together), and the answers in order."""
    gate = threading.Barrier(len(requests))

    def send(request) -> httpx.Response:  # type: ignore[no-untyped-def]
        gate.wait()
        return request()

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def test_a_burst_of_wrong_tokens_is_answered_within_the_limit_across_processes(pair: Pair) -> None:
    """24 wrong tokens for one email at once, half on each process, each from its own address:
    the count is the database's upsert, so exactly the limit are 401 and the rest 429."""
    victim = pair.user()
    answers = burst([lambda srv=(pair.a, pair.b)[i % 2]: balance(srv, victim.email, f"wrong-{uuid.uuid4().hex}",
                                                                 address(), timeout=30) for i in range(24)])
    codes = sorted(a.status_code for a in answers)
    assert codes == [401] * LIMIT_EMAIL + [429] * (24 - LIMIT_EMAIL), codes
    for answer in answers:
        if answer.status_code == 429:
            assert_throttled(answer)
    assert balance(pair.a, victim.email, victim.token, address()).status_code == 200  # the owner is not locked out


def test_a_clients_burst_of_right_new_credentials_is_never_throttled(pair: Pair) -> None:
    """A client starting 24 connections at once, none known yet: right tokens are not counted,
    however many arrive before the first is answered."""
    user = pair.user()
    answers = burst([lambda srv=(pair.a, pair.b)[i % 2]: balance(srv, user.email, user.token, address(), timeout=30)
                     for i in range(24)])
    assert [a.status_code for a in answers] == [200] * 24, [a.text for a in answers if a.status_code != 200]
    assert balance(pair.b, user.email, "wrong", address()).status_code == 401  # nothing was counted before


def test_a_burst_of_wrong_client_secrets_is_answered_within_the_limit(pair: Pair) -> None:
    """Both OAuth token endpoints (Zoom's account_credentials, Zoho's refresh_token): 24 wrong
    secrets for one client at once are the limit's 401s and 429s; 24 right requests at once all
    get a token."""
    from test_oauth import account_of, basic, make_client
    from test_zoho_oauth import self_client

    user = pair.user()
    zoom = make_client(pair.db, account_of(pair.db, user), "number_management_numbers:read:master")
    zoho = self_client(pair.db, user)
    zoom_form = {"grant_type": "account_credentials", "account_id": str(account_of(pair.db, user))}

    def zoom_token(srv: Server, secret: str) -> httpx.Response:
        return httpx.post(f"{srv.url}/oauth/token", data=zoom_form,
                          headers={**basic(zoom.id, secret), "x-forwarded-for": address()}, timeout=30)

    def zoho_token(srv: Server, secret: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "client_id": zoho.id, "client_secret": secret, "refresh_token": "r"}
        return httpx.post(f"{srv.url}/oauth/v2/token", data=form, headers={"x-forwarded-for": address()}, timeout=30)

    for token, secret in ((zoom_token, zoom.secret), (zoho_token, zoho.secret)):
        right = burst([lambda srv=(pair.a, pair.b)[i % 2], ask=token, key=secret: ask(srv, key) for i in range(24)])
        if token is zoom_token:
            assert [a.status_code for a in right] == [200] * 24, [a.text for a in right if a.status_code != 200]
        else:  # a right secret with an unknown refresh token: refused for the token, not counted against the client
            assert {a.status_code for a in right} == {400}, {a.text for a in right}
        wrong = burst([lambda srv=(pair.a, pair.b)[i % 2], ask=token: ask(srv, "wrong") for i in range(24)])
        codes = sorted(a.status_code for a in wrong)
        assert codes == [401] * LIMIT_EMAIL + [429] * (24 - LIMIT_EMAIL), (token.__name__, codes)
        assert all(a.json()["error"] == ("invalid_client" if a.status_code == 401 else "too_many_requests")
                   for a in wrong)


def test_a_sign_in_remembered_by_the_cache_is_not_throttled(database_url: str, tmp_path: Path) -> None:
    """With the credential cache on (as in production), a client already signed in keeps
    working while someone else's failures lock its email: the cache answers before the throttle."""
    with fresh_database(database_url, tmp_path) as url:
        srv = Server(url, tmp_path, extra_env={"PIGEON_AUTH_CACHE_SECONDS": "60",
                                               "PIGEON_SIGNIN__EMAIL_FAILURES": "2"}).start()
        db = Database(url)
        try:
            user = make_user(db, srv)
            ip = address()
            assert balance(srv, user.email, user.token, ip).status_code == 200
            for _ in range(2):
                assert balance(srv, user.email, "wrong", address()).status_code == 401
            assert balance(srv, user.email, "wrong", address()).status_code == 429
            assert balance(srv, user.email, user.token, ip).status_code == 200
        finally:
            srv.stop()
            db.dispose()


# -- the same work whether or not the email exists -----------------------------------------


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Calls to the hashing and comparing primitives of a token check."""
    calls = {"keyed": 0, "plain": 0, "compare": 0}

    def count(name: str, function):  # type: ignore[no-untyped-def]
        def counted(*args):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return function(*args)
        return counted

    monkeypatch.setattr(security, "keyed_hash", count("keyed", security.keyed_hash))
    monkeypatch.setattr(security, "plain_hash", count("plain", security.plain_hash))
    monkeypatch.setattr(security.hmac, "compare_digest", count("compare", security.hmac.compare_digest))
    return calls


def test_checking_a_token_does_the_same_work_whether_or_not_the_email_exists(
    db: Database, counting: dict[str, int]
) -> None:
    email = f"timing-{uuid.uuid4().hex[:8]}@example.com"
    with db.write() as session:
        token = accounts.create_account(session, email).token
    legacy_email = f"legacy-{uuid.uuid4().hex[:8]}@example.com"
    with db.write() as session:
        legacy_token = accounts.create_account(session, legacy_email).token
        session.execute(update(UserRow).where(UserRow.email == legacy_email)
                        .values(token_hash=hashlib.sha256(legacy_token.encode()).hexdigest()))
    statements: list[str] = []

    def executed(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    cases = {
        "right token": (email, token, True), "wrong token": (email, "x" * 43, False),
        "unknown email": ("nobody@example.com", token, False),
        "legacy, right token": (legacy_email, legacy_token, True), "legacy, wrong token": (legacy_email, token, False),
    }
    work = {}
    event.listen(db.engine, "before_cursor_execute", executed)
    try:
        for case, (who, what, good) in cases.items():
            counting.update(keyed=0, plain=0, compare=0)
            statements.clear()
            with db.read() as session:
                found, legacy = accounts.verify_token(session, who, what)
            assert (found is not None) == good and legacy == (good and case.startswith("legacy")), case
            work[case] = (dict(counting), len(statements))
    finally:
        event.remove(db.engine, "before_cursor_execute", executed)
    assert work["unknown email"][0] == {"keyed": 1, "plain": 1, "compare": 1}
    assert all(w == work["unknown email"] for w in work.values()), work


# -- keyed hashes ---------------------------------------------------------------------------


def stored(db: Database, email: str) -> tuple[str, str]:
    with db.read() as session:
        row = session.execute(select(UserRow.token_hash, UserRow.url_token_hash).where(UserRow.email == email)).one()
    return row.token_hash, row.url_token_hash


def test_tokens_are_stored_under_a_keyed_hash(db: Database, user: User) -> None:
    token_hash, url_hash = stored(db, user.email)
    for token, kept in ((user.token, token_hash), (user.url_token, url_hash)):
        assert kept.startswith("k1$") and len(kept) <= 64
        assert hashlib.sha256(token.encode()).hexdigest() not in kept
    assert token_hash != url_hash
    assert user.balance() == 100.0  # and the server signs the user in with it


def test_a_legacy_sha256_row_still_signs_in_and_is_upgraded(db: Database, server: Server) -> None:
    user = make_user(db, server)
    plain_token = hashlib.sha256(user.token.encode()).hexdigest()
    plain_url = hashlib.sha256(user.url_token.encode()).hexdigest()
    with db.write() as session:  # as rows written before keyed hashes were
        session.execute(update(UserRow).where(UserRow.id == user.user_id)
                        .values(token_hash=plain_token, url_token_hash=plain_url))
    assert httpx.get(f"{server.url}{API}/account/balance", headers={"email": user.email, "token": "wrong"}).status_code == 401
    assert stored(db, user.email) == (plain_token, plain_url)  # a failure upgrades nothing
    assert user.balance() == 100.0
    token_hash, url_hash = stored(db, user.email)
    assert token_hash.startswith("k1$") and url_hash == plain_url
    sent = httpx.get(f"{server.url}{API}/sms/send-url/{user.url_token}",
                     params={"recipientNumber": "+27821234567", "message": "legacy url token"})
    assert sent.status_code == 200, sent.text
    assert stored(db, user.email)[1].startswith("k1$")
    assert user.balance() == 99.0  # both still work, now keyed
    assert httpx.get(f"{server.url}{API}/sms/send-url/{user.url_token}",
                     params={"recipientNumber": "+27821234567", "message": "again"}).status_code == 200
    user.http.close()


def test_a_configured_token_key_is_used_instead_of_the_stored_one(database_url: str, tmp_path: Path) -> None:
    """PIGEON_TOKEN_KEY keeps the key away from the hashes; the server hashes with it."""
    with fresh_database(database_url, tmp_path) as url:
        db = Database(url)
        upgrade(db)
        srv = Server(url, tmp_path, extra_env={"PIGEON_TOKEN_KEY": "operator-secret"}).start()
        try:
            email, token = f"keyed-{uuid.uuid4().hex[:8]}@example.com", security.new_token()
            with db.write() as session:  # a row hashed as the configured server must hash it
                account = accounts.create_account(session, email)
                session.execute(update(UserRow).where(UserRow.id == account.user.id)
                                .values(token_hash=security.keyed_hash(b"operator-secret", token)))
            assert balance(srv, email, token, address()).status_code == 200
            assert balance(srv, email, account.token, address()).status_code == 401  # hashed with the stored key
        finally:
            srv.stop()
            db.dispose()
