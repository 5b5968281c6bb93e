"""What a review of the console found, kept found: a burst of sign-ins past the throttle, the
console's failures locking the APIs out, a master account under another taking over the
operator, odd parameters answered 500, formulas in the CSV export, guesses at the current
password, and redirects after signing in."""

from __future__ import annotations

import concurrent.futures
import csv
import io
import re
import uuid
from pathlib import Path

import httpx
import pytest
from console_client import PASSWORD, Console, signed_in, with_password
from sqlalchemy import select

from conftest import API, Server, make_user, own_database, url_of
from pigeon.accounts import policy
from pigeon.accounts.service import create_account
from pigeon.audit.models import AuditEntry
from pigeon.db import Database
from pigeon.errors import Invalid

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _email() -> str:
    return f"sec-{uuid.uuid4().hex[:10]}@example.com"


def test_a_burst_of_sign_ins_gets_no_more_checks_than_the_limit(database_url: str, tmp_path: Path) -> None:
    with own_database(database_url, tmp_path) as db:
        server = Server(url_of(db), tmp_path, extra_env={"PIGEON_SIGNIN__EMAIL_FAILURES": "5",
                                                          "PIGEON_SIGNIN__WINDOW": "60"}).start()
        try:
            user = make_user(db, server)
            with_password(db, user.user_id)
            forms = []
            for _ in range(30):  # each attempt with its own form, as a browser (or a script) would
                client = httpx.Client(base_url=server.url, timeout=30)
                forms.append((client, CSRF.search(client.get("/console/sign-in").text).group(1)))

            def attempt(form: tuple[httpx.Client, str]) -> int:
                client, token = form
                return client.post("/console/sign-in", data={"email": user.email, "password": "wrong guess",
                                                             "csrf": token}).status_code

            with concurrent.futures.ThreadPoolExecutor(30) as pool:
                answers = list(pool.map(attempt, forms))
            assert answers.count(401) == 5 and answers.count(429) == 25, answers  # counted before checking
            with db.read() as session:  # only checked guesses are logged: a flood writes the limit's worth
                logged = session.scalars(select(AuditEntry.action).where(AuditEntry.subject == user.email)).all()
            assert logged == ["signin.failed"] * 5
            # the console's failures are its own: the user's API integration still signs in
            assert user.http.get(f"{API}/account/balance").status_code == 200
            for client, _ in forms:
                client.close()
        finally:
            server.stop()


def test_a_master_account_under_another_is_no_operator(db: Database) -> None:
    with db.write() as session:
        reseller = create_account(session, _email())
        with pytest.raises(Invalid):
            create_account(session, _email(), master=True, parent_id=reseller.user.account_id)
        victim = create_account(session, _email())
        odd = create_account(session, _email(), parent_id=reseller.user.account_id)
        odd_account = session.get_one(_account_model(), odd.user.account_id)
        odd_account.is_master = True  # as an old `pigeon account create --master --parent` made it
        session.flush()
        assert not policy.reaches_account(session, odd.user.account_id, victim.user.account_id)
        assert not policy.is_operator(session, odd.user.account_id)


def _account_model():  # type: ignore[no-untyped-def]
    from pigeon.accounts.models import Account

    return Account


ODD = ["²", "9999999999", "99999999999999999999999", "-1", "0", "1.5", "a\x00b", "x" * 300]
ROUTES = ["/messages", "/messages/rows", "/messages.csv", "/dashboard", "/dashboard/data.json", "/numbers",
          "/numbers/rows", "/team", "/team/rows", "/team/oauth", "/webhooks", "/opt-outs", "/campaigns",
          "/conversations", "/contacts", "/send"]


def test_odd_parameters_get_a_refusal_never_a_500(db: Database, server: Server) -> None:
    with db.write() as session:
        operator = create_account(session, _email(), master=True)
    console = signed_in(db, server.url, operator.user.email, operator.user.id)
    for route in ROUTES:
        for value in ODD:
            for name in ("account", "after", "before", "q", "text", "user", "campaign", "number"):
                answer = console.get(route, params={name: value})
                assert answer.status_code < 500, (route, name, value, answer.status_code)
    for route in ("/audit", "/audit/rows"):
        for value in ODD + ["2024-01-01~99999999999999999999"]:
            for name in ("account", "before", "after", "action"):
                assert console.get(route, params={name: value}).status_code < 500, (route, name, value)
    nul = console.post("/team/transfer", {"from": "a\x00", "to": "b", "amount": "1"})
    assert nul.status_code == 400
    form = console.http.get("/console/sign-in")
    assert form.status_code in (200, 303)
    fresh = httpx.Client(base_url=server.url)
    token = CSRF.search(fresh.get("/console/sign-in").text).group(1)
    assert fresh.post("/console/sign-in", data={"email": "a\x00@x.test", "password": "p", "csrf": token}
                      ).status_code == 401
    fresh.close()
    console.close()


def test_the_export_writes_no_formula_in_any_cell(db: Database, server: Server) -> None:
    user = make_user(db, server)
    sent = user.send("+27821239988", "=1+1", campaign='=HYPERLINK("http://evil")')
    assert sent.status_code == 200
    console = signed_in(db, server.url, user.email, user.user_id)
    rows = list(csv.DictReader(io.StringIO(console.get("/messages.csv").text)))
    assert rows[0]["campaign"].startswith("'=") and rows[0]["body"] == "'=1+1"
    assert rows[0]["to"] == "+27821239988"  # a number stays a number
    assert console.get("/messages.csv?after=garbage").status_code == 400  # refused, not a download cut short
    console.close()


def test_guesses_at_the_current_password_are_throttled(database_url: str, tmp_path: Path) -> None:
    with own_database(database_url, tmp_path) as db:
        server = Server(url_of(db), tmp_path, extra_env={"PIGEON_SIGNIN__EMAIL_FAILURES": "3"}).start()
        try:
            user = make_user(db, server)
            console = signed_in(db, server.url, user.email, user.user_id)
            codes = [console.post("/account/password", {"current": f"guess {i}", "new": "a new password!",
                                                        "again": "a new password!"}).status_code for i in range(5)]
            assert codes[:2] == [400, 400] and codes[-1] == 429, codes  # the sign-in counted one
            console.close()
        finally:
            server.stop()


def test_after_signing_in_one_stays_in_the_console(db: Database, server: Server) -> None:
    user = make_user(db, server)
    with_password(db, user.user_id)
    for target, lands in [("/console/messages?status=SENT", "/console/messages?status=SENT"),
                          ("/console/..//evil.example", "/console/"), ("/console/%2e%2e/docs", "/console/"),
                          ("https://evil.example/console/", "/console/")]:
        client = Console(server.url, user.email)
        token = CSRF.search(client.http.get("/console/sign-in").text).group(1)
        answer = client.http.post("/console/sign-in", data={"email": user.email, "password": PASSWORD,
                                                             "csrf": token, "next": target})
        assert answer.status_code == 303 and answer.headers["location"] == lands, target
        client.close()
    # a lapsed session met by an htmx poll returns, after signing in, to the page, not the fragment
    away = httpx.get(f"{server.url}/console/messages/x/status",
                     headers={"HX-Request": "true", "HX-Current-URL": f"{server.url}/console/messages/x"})
    assert away.status_code == 204
    assert away.headers["hx-redirect"] == "/console/sign-in?next=%2Fconsole%2Fmessages%2Fx"
