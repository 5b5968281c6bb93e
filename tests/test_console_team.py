"""The console's Team screen over real HTTP, on SQLite and PostgreSQL: an administrator creates a
user (who then signs in), sets passwords and makes API tokens, moves credits, and makes and
revokes OAuth clients; a plain user sees only themselves and none of the administrators'
actions; another account's records do not exist; the operator acts on any account; every
change is in the audit log."""

from __future__ import annotations

import base64
import re
import uuid

import httpx
from browser import Watch
from console_client import PASSWORD, Console, signed_in, with_password
from playwright.sync_api import Page, expect
from sqlalchemy import select

from conftest import API, Server, User, make_user
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import create_account, create_user
from pigeon.audit.models import AuditEntry
from pigeon.db import Database

READ = "number_management_numbers:read:master"
WRITE = "number_management:write:numbers"


def _email() -> str:
    return f"team-{uuid.uuid4().hex[:10]}@example.com"


def _shown(html: str, element_id: str) -> str:
    """The value of a read-only field a page shows once (a password, a token, a secret)."""
    found = re.search(rf'id="{element_id}" type="text" readonly value="([^"]+)"', html)
    assert found, f"no {element_id} on the page"
    return found.group(1)


def _account_of(db: Database, user_id: int) -> int:
    with db.read() as session:
        return session.get_one(UserRow, user_id).account_id


def _balances(db: Database, *user_ids: int) -> list[float]:
    with db.read() as session:
        return [session.get_one(UserRow, user_id).credit_balance / 1000 for user_id in user_ids]


def _member(db: Database, admin: User, credits: float = 0) -> UserRow:
    """A plain user of the admin's team, made directly (with its API token on ``.token``)."""
    with db.write() as session:
        made = create_user(session, _account_of(db, admin.user_id), _email(), credits=credits)
    made.user.token = made.token  # type: ignore[attr-defined]
    return made.user


def _actions(db: Database, actor_id: int) -> list[tuple[str, str | None, int | None]]:
    with db.read() as session:
        return [tuple(row) for row in session.execute(
            select(AuditEntry.action, AuditEntry.subject, AuditEntry.account_id)
            .where(AuditEntry.actor_id == actor_id, AuditEntry.action.not_like("sign%")).order_by(AuditEntry.id))]


def _api_balance(server: Server, email: str, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}{API}/account/balance", headers={"email": email, "token": token})


def _new_user_form(email: str, **extra: str) -> dict[str, str]:
    return {"email": email, "first_name": "Nomsa", "last_name": "Dlamini", "contact_number": "+27821234567", **extra}


def test_an_administrator_creates_a_user_who_then_signs_in(db: Database, server: Server) -> None:
    admin = make_user(db, server, credits=50)
    account = _account_of(db, admin.user_id)
    console = signed_in(db, server.url, admin.email, admin.user_id)
    email = _email()
    made = console.post("/team/users", _new_user_form(email, credits="12.5", company="Acme"))
    assert made.status_code == 200, made.text
    password, token = _shown(made.text, "made-password"), _shown(made.text, "new-token")
    with db.read() as session:
        new = session.scalar(select(UserRow).where(UserRow.email == email))
    assert new is not None and new.account_id == account and not new.is_admin and new.company == "Acme"
    assert _balances(db, admin.user_id, new.id) == [37.5, 12.5]  # the opening balance came from the admin's
    assert email in console.get("/team").text
    assert Console(server.url, email).sign_in(password).status_code == 303
    assert _api_balance(server, email, token).json()["creditBalance"] == 12.5

    typed_email = _email()
    typed = console.post("/team/users", _new_user_form(typed_email, password="a typed password"))
    assert typed.status_code == 200 and 'id="made-password"' not in typed.text
    assert Console(server.url, typed_email).sign_in("a typed password").status_code == 303

    refusals = [
        (_new_user_form(_email(), credits="1000"), 400, "Insufficient credits"),  # more than the admin has
        (_new_user_form("not an email"), 400, "not an email address"),
        ({**_new_user_form(_email()), "contact_number": ""}, 400, "contactNumber"),
        (_new_user_form(_email(), contact_number="not a number"), 400, ""),
        (_new_user_form(_email(), credits="ten"), 400, "must be a number"),
        (_new_user_form(_email(), password="short"), 400, "at least 10"),
        (_new_user_form(email), 409, "already exists"),
    ]
    for form, status, words in refusals:
        answer = console.post("/team/users", form)
        assert answer.status_code == status and words in answer.text, (form, answer.text)
    assert console.http.post("/console/team/users", data=_new_user_form(_email())).status_code == 403  # no CSRF
    assert _balances(db, admin.user_id) == [37.5]
    with db.read() as session:
        team = session.scalars(select(UserRow.email).where(UserRow.account_id == account)).all()
    assert sorted(team) == sorted([admin.email, email, typed_email])  # nothing refused was written
    assert _actions(db, admin.user_id) == [("user.create", email, account), ("user.create", typed_email, account)]
    console.close()


def test_an_administrator_sets_passwords_and_makes_tokens(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    member = _member(db, admin)
    account = _account_of(db, admin.user_id)
    console = signed_in(db, server.url, admin.email, admin.user_id)
    assert _api_balance(server, member.email, member.token).status_code == 200

    page = console.post(f"/team/users/{member.id}/token")
    assert page.status_code == 200
    token = _shown(page.text, "new-token")
    assert _api_balance(server, member.email, member.token).status_code == 401  # the old one stopped working
    assert _api_balance(server, member.email, token).status_code == 200

    there = signed_in(db, server.url, member.email, member.id)
    made = console.post(f"/team/users/{member.id}/password", {"password": ""})
    assert made.status_code == 200 and "sessions ended" in made.text
    password = _shown(made.text, "made-password")
    assert there.get("/team").status_code == 303  # their session ended
    assert Console(server.url, member.email).sign_in(password).status_code == 303
    short = console.post(f"/team/users/{member.id}/password", {"password": "too short"})
    assert short.status_code == 400 and "at least 10" in short.text
    typed = console.post(f"/team/users/{member.id}/password", {"password": "chosen by the admin"})
    assert typed.status_code == 200 and 'id="made-password"' not in typed.text
    assert Console(server.url, member.email).sign_in("chosen by the admin").status_code == 303
    assert Console(server.url, member.email).sign_in(password).status_code == 401
    assert console.get("/team").status_code == 200  # the administrator's own session goes on
    assert _actions(db, admin.user_id) == [("user.token", member.email, account)] + [
        ("user.password", member.email, account)] * 2
    console.close()
    there.close()


def test_credits_move_between_users_of_the_team(db: Database, server: Server) -> None:
    admin = make_user(db, server, credits=50)
    member = _member(db, admin, credits=20)
    mate = _member(db, admin)
    account = _account_of(db, admin.user_id)
    console = signed_in(db, server.url, admin.email, admin.user_id)
    moved = console.post("/team/transfer", {"from": admin.email, "to": member.email, "credits": "15"})
    assert moved.status_code == 303 and moved.headers["location"] == f"/console/team?account={account}&done=transfer"
    assert "credits were moved" in console.get(moved.headers["location"].removeprefix("/console")).text
    assert _balances(db, admin.user_id, member.id) == [35, 35]
    assert console.post("/team/transfer", {"from": member.email, "to": mate.email, "credits": "5"}).status_code == 303
    assert _balances(db, admin.user_id, member.id, mate.id) == [35, 30, 5]

    refusals = [
        ({"from": mate.email, "to": admin.email, "credits": "6"}, 400, "Insufficient credits"),
        ({"from": admin.email, "to": member.email, "credits": "1.5"}, 400, "whole number"),
        ({"from": admin.email, "to": member.email, "credits": "-3"}, 400, "whole number"),
        ({"from": admin.email, "to": admin.email, "credits": "1"}, 400, "same user"),
        ({"from": admin.email, "to": "nobody@example.com", "credits": "1"}, 404, "No user"),
        ({"from": admin.email, "to": "", "credits": "1"}, 400, "Name the user"),
    ]
    for form, status, words in refusals:
        answer = console.post("/team/transfer", form)
        assert answer.status_code == status and words in answer.text, (form, answer.text)
    assert _balances(db, admin.user_id, member.id, mate.id) == [35, 30, 5]

    plain = signed_in(db, server.url, member.email, member.id)
    theirs = plain.post("/team/transfer", {"from": admin.email, "to": member.email, "credits": "1"})
    assert theirs.status_code == 403 and "administrator" in theirs.text
    assert plain.post("/team/transfer", {"from": member.email, "to": mate.email, "credits": "10"}).status_code == 303
    assert _balances(db, admin.user_id, member.id, mate.id) == [35, 20, 15]
    outsider = make_user(db, server)
    assert plain.post("/team/transfer", {"from": member.email, "to": outsider.email, "credits": "1"}).status_code == 404
    assert _balances(db, member.id, outsider.user_id) == [20, 100]
    assert [a[0] for a in _actions(db, admin.user_id)] == ["credits.transfer"] * 2
    assert _actions(db, member.id) == [("credits.transfer", f"{member.email} to {mate.email}", account)]
    console.close()
    plain.close()


def _basic(client_id: str, secret: str) -> dict[str, str]:
    own = uuid.uuid4().int  # an address of its own: the token endpoint's failures counted here touch no other test
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode(),
            "x-forwarded-for": f"10.{own % 250}.{own // 250 % 250}.{own // 62500 % 250 + 1}"}


def test_oauth_clients_are_made_and_revoked(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    account = _account_of(db, admin.user_id)
    console = signed_in(db, server.url, admin.email, admin.user_id)
    assert console.get("/team/oauth").status_code == 200
    made = console.post("/team/oauth", {"name": "crm", "scopes": [READ, WRITE]})
    assert made.status_code == 200, made.text
    client_id, secret = _shown(made.text, "client-id"), _shown(made.text, "client-secret")
    listed = console.get("/team/oauth").text
    assert client_id in listed and "crm" in listed and secret not in listed and "active" in listed

    def token() -> httpx.Response:
        return httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials",
                                                               "account_id": account},
                          headers=_basic(client_id, secret))

    granted = token()
    assert granted.status_code == 200 and granted.json()["scope"] == f"{WRITE} {READ}"
    for form, words in [({"scopes": ["everything"]}, "Unknown scope"), ({"name": "none"}, "at least one scope"),
                        ({"scopes": ["ZohoVoice.sms.ALL"]}, "self-client"), ({"scopes": [READ], "name": "x" * 256},
                                                                           "255")]:
        answer = console.post("/team/oauth", form)
        assert answer.status_code == 400 and words in answer.text, answer.text

    outsider = make_user(db, server)
    other = signed_in(db, server.url, outsider.email, outsider.user_id)
    assert other.post(f"/team/oauth/{client_id}/revoke").status_code == 404  # another account's client
    assert client_id not in other.get("/team/oauth").text
    assert other.get(f"/team/oauth?account={account}").status_code == 404
    assert token().status_code == 200

    revoked = console.post(f"/team/oauth/{client_id}/revoke")
    assert revoked.status_code == 303 and "done=revoke" in revoked.headers["location"]
    assert token().status_code == 401
    assert "revoked" in console.get("/team/oauth").text
    assert console.post("/team/oauth/no-such-client/revoke").status_code == 404
    assert _actions(db, admin.user_id) == [("oauth_client.create", client_id, account),
                                           ("oauth_client.revoke", client_id, account)]
    console.close()
    other.close()


def test_a_plain_user_sees_only_themselves_and_no_administrators_actions(db: Database, server: Server) -> None:
    admin = make_user(db, server, credits=30)
    member = _member(db, admin, credits=7)
    mate = _member(db, admin)
    plain = signed_in(db, server.url, member.email, member.id)
    page = plain.get("/team")
    listed = page.text.split('id="team-rows"')[1].split("</tbody>")[0]  # (the account is named after its admin)
    assert page.status_code == 200 and member.email in listed and ">7<" in listed
    assert admin.email not in listed and mate.email not in page.text and "New user" not in page.text
    assert plain.get(f"/team/users/{member.id}").status_code == 200
    assert plain.get(f"/team/users/{mate.id}").status_code == 403  # a team-mate they may not reach
    for path, form in [("/team/users", _new_user_form(_email())), (f"/team/users/{mate.id}/token", {}),
                       (f"/team/users/{mate.id}/password", {"password": "taken over, surely"}),
                       (f"/team/users/{member.id}/token", {}), ("/team/oauth", {"scopes": [READ]})]:
        assert plain.post(path, form).status_code == 403, path
    assert plain.get("/team/oauth").status_code == 403
    assert _api_balance(server, mate.email, mate.token).status_code == 200  # nothing changed
    assert _actions(db, member.id) == []

    outsider = make_user(db, server)
    other = signed_in(db, server.url, outsider.email, outsider.user_id)
    assert other.get(f"/team/users/{member.id}").status_code == 404
    assert other.post(f"/team/users/{member.id}/token").status_code == 404
    assert other.post(f"/team/users/{member.id}/password", {"password": ""}).status_code == 404
    assert other.get(f"/team?account={_account_of(db, admin.user_id)}").status_code == 404
    assert other.get("/team/users/not-a-number").status_code == 404
    assert other.get("/team/users/99999999999").status_code == 404
    assert _api_balance(server, member.email, member.token).status_code == 200
    plain.close()
    other.close()


def test_the_operator_acts_on_any_account_and_lists_page_by_key(db: Database, server: Server) -> None:
    customer = make_user(db, server, credits=40)
    account = _account_of(db, customer.user_id)
    with db.write() as session:
        operator = create_account(session, _email(), master=True)
        extra = [create_user(session, account, f"{i:02d}-{_email()}").user.email for i in range(55)]
    console = signed_in(db, server.url, operator.user.email, operator.user.id)
    first = console.get(f"/team?account={account}")
    assert first.status_code == 200 and customer.email in first.text
    more = re.search(r'hx-get="(/console/team/rows\?[^"]+)"', first.text)
    assert more, "a second page"
    second = console.http.get(more.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and "hx-get" not in second.text
    seen = re.findall(r'href="/console/team/users/\d+">([^<]+)<', first.text + second.text)
    assert sorted(seen) == sorted([customer.email, *extra])  # each user once, over two pages
    assert re.findall(r'users/\d+">([^<]+)<', console.get(f"/team?account={account}&q=07-").text) == [extra[7]]

    email = _email()
    made = console.post("/team/users", _new_user_form(email, credits="10", account=str(account)))
    assert made.status_code == 200, made.text
    with db.read() as session:
        new = session.scalar(select(UserRow).where(UserRow.email == email))
    assert new.account_id == account
    assert _balances(db, customer.user_id, new.id) == [30, 10]  # from the account's administrator
    moved = console.post("/team/transfer", {"from": new.email, "to": customer.email, "credits": "4",
                                            "account": str(account)})
    assert moved.status_code == 303
    assert _balances(db, customer.user_id, new.id) == [34, 6]
    assert console.get("/team?account=999999999").status_code == 404
    assert console.get(f"/team/users/{customer.user_id}").status_code == 200
    assert _actions(db, operator.user.id) == [("user.create", email, account),
                                              ("credits.transfer", f"{email} to {customer.email}", account)]
    console.close()


def test_creating_a_user_and_moving_credits_in_the_browser(db: Database, server: Server, page: Page,
                                                           watch: Watch) -> None:
    admin = make_user(db, server, credits=20)
    with_password(db, admin.user_id)
    page.goto(f"{server.url}/console/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Team").click()
    email = _email()
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("First name").fill("Sipho")
    page.get_by_label("Last name").fill("Nkosi")
    page.get_by_label("Contact number").fill("+27821234567")
    page.get_by_label("Opening credits", exact=False).fill("5")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", name=f"{email} was created")).to_be_visible()
    password = page.get_by_label("Their console password").input_value()
    assert len(password) >= 10
    page.get_by_label("From (email)").fill(email)
    page.get_by_label("To (email", exact=False).fill(admin.email)
    page.get_by_label("Credits (a whole number)").fill("2")
    page.get_by_role("button", name="Transfer").click()
    expect(page.get_by_role("status")).to_contain_text("credits were moved")
    with db.read() as session:
        new = session.scalar(select(UserRow).where(UserRow.email == email))
    assert _balances(db, admin.user_id, new.id) == [17, 3]
    page.set_viewport_size({"width": 390, "height": 844})  # a phone's width: the forms still fit
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    watch.assert_clean()
