"""/account/user, /account/transfer, /account/statistics: a team's users as sub-accounts,
credits moved between them atomically, and the statistics report; teams kept apart."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from zoomconnect_sdk.client import Client

from conftest import API, Server, User
from pigeon.accounts import service as accounts
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.security import password_matches
from pigeon.db import Database, utcnow
from pigeon.errors import InsufficientCredits
from pigeon.ids import new_id
from pigeon.messages.models import Message

PASSWORD = "correct horse battery"


def new_email(prefix: str = "sub") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def create(admin: User, **fields: object) -> httpx.Response:
    body = {"firstName": "Sam", "lastName": "Sub", "emailAddress": new_email(), "contactNumber": "+27821234567",
            "password": PASSWORD, **fields}
    return admin.http.put(f"{API}/account/user", json=body)


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response, status: int, code: int) -> str:
    """The developer message of a RestErrorDTO with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body["developerMessage"]


def transfer(caller: User, source: str, target: str, credits: object) -> httpx.Response:
    return caller.http.post(f"{API}/account/transfer", json={
        "transferFromEmailAddress": source, "transferToEmailAddress": target, "numberOfCreditsToTransfer": credits,
    })


def search(caller: User, text: str) -> list[str]:
    return [u["emailAddress"] for u in ok(caller.http.get(f"{API}/account/user", params={"searchEmail": text}))
            ["webServiceUserList"]]


def stats(caller: User, **params: object) -> dict:
    return ok(caller.http.get(f"{API}/account/statistics", params=params))


@pytest.fixture
def subs(db: Database, server: Server, user: User) -> Iterator[Callable[..., User]]:
    """Makes sub-accounts of ``user``'s team through PUT /account/user, each with its own token."""
    made: list[User] = []

    def make(credits: float = 0) -> User:
        body = ok(create(user, creditBalance=credits))
        with db.write() as session:
            tokens = accounts.rotate_tokens(session, body["emailAddress"])
        assert tokens is not None
        http = httpx.Client(base_url=server.url, timeout=10,
                            headers={"email": body["emailAddress"], "token": tokens.token})
        made.append(User(body["emailAddress"], tokens.token, tokens.url_token, body["userId"], http))
        return made[-1]

    yield make
    for sub in made:
        sub.http.close()


def stored(db: Database, user_id: int) -> UserRow:
    with db.read() as session:
        found = session.get(UserRow, user_id)
        assert found is not None
        return found


# -- users ---------------------------------------------------------------------------------

def test_create_get_update_and_search(user: User, db: Database) -> None:
    email = new_email("Mixed.Case")
    created = ok(create(user, emailAddress=email, contactNumber="0821234567", company="Acme", creditBalance=25))
    assert created == {
        "userId": created["userId"], "emailAddress": email.lower(), "firstName": "Sam", "lastName": "Sub",
        "contactNumber": "+27821234567", "company": "Acme", "creditBalance": 25.0, "password": None,
    }
    assert user.balance() == 75.0  # moved from the administrator, not made from nothing
    row = stored(db, created["userId"])
    assert not row.is_admin and row.password_hash.startswith("scrypt$") and PASSWORD not in row.password_hash
    assert password_matches(PASSWORD, row.password_hash)
    assert ok(user.http.get(f"{API}/account/user/{created['userId']}")) == created

    updated = ok(user.http.post(f"{API}/account/user/{created['userId']}", json={
        "firstName": "Sally", "lastName": None, "contactNumber": "+27 82 765 4321", "password": "a new one",
        "company": "Beta", "emailAddress": "changed@example.com", "creditBalance": 1000, "userId": 1,
    }))
    assert updated == {**created, "firstName": "Sally", "contactNumber": "+27827654321", "company": "Beta"}
    assert password_matches("a new one", stored(db, created["userId"]).password_hash)
    assert ok(user.http.post(f"{API}/account/user/{created['userId']}", json={"lastName": "  "})) == updated
    assert ok(user.http.get(f"{API}/account/user/{created['userId']}")) == updated

    assert search(user, email.split("@")[0].upper()) == [email.lower()]
    assert search(user, "@EXAMPLE.com") == [user.email, email.lower()]
    assert search(user, "%") == [] and search(user, "_") == []
    error(user.http.get(f"{API}/account/user"), 400, 1)
    error(user.http.get(f"{API}/account/user", params={"searchEmail": " "}), 400, 1)


def test_xml_create(user: User) -> None:
    email = new_email()
    xml = (f"<webServiceUser><firstName>Xavier</firstName><lastName>Ml</lastName><emailAddress>{email}"
           "</emailAddress><contactNumber>27821234567</contactNumber><password>p</password>"
           "<creditBalance>2.5</creditBalance></webServiceUser>")
    response = user.http.put(f"{API}/account/user.xml", content=xml, headers={"content-type": "application/xml"})
    assert response.status_code == 200, response.text
    assert f"<emailAddress>{email}</emailAddress>" in response.text
    assert "<creditBalance>2.5</creditBalance>" in response.text and "<password />" in response.text
    assert user.balance() == 97.5


@pytest.mark.parametrize("field", ["firstName", "lastName", "emailAddress", "contactNumber", "password"])
def test_create_names_a_missing_field(user: User, field: str) -> None:
    assert field in error(create(user, **{field: None}), 400, 1)
    assert field in error(create(user, **{field: "  "}), 400, 1)


@pytest.mark.parametrize(("fields", "status", "code"), [
    ({"contactNumber": "12345"}, 400, 2),
    ({"contactNumber": "not a number"}, 400, 2),
    ({"emailAddress": "not-an-email"}, 400, 1),
    ({"firstName": "x" * 256}, 400, 1),
    ({"firstName": {"nested": 1}}, 400, 1),
    ({"creditBalance": -1}, 400, 1),
    ({"creditBalance": "lots"}, 400, 1),
    ({"creditBalance": True}, 400, 1),
    ({"creditBalance": 1.0005}, 400, 1),
    ({"creditBalance": 2**31}, 400, 1),
    ({"creditBalance": 100.5}, 402, 5),
])
def test_create_refuses_bad_input(user: User, fields: dict, status: int, code: int) -> None:
    email = new_email()
    error(create(user, **{"emailAddress": email, **fields}), status, code)
    assert search(user, email) == [] and user.balance() == 100.0


def test_create_refuses_bad_bodies(user: User) -> None:
    assert "firstName" in error(user.http.put(f"{API}/account/user", content="null",
                                              headers={"content-type": "application/json"}), 400, 1)
    error(user.http.put(f"{API}/account/user", json=[1, 2]), 400, 1)
    error(user.http.put(f"{API}/account/user", content="{not json", headers={"content-type": "application/json"}),
          400, 1)


def test_email_taken_anywhere_is_409(user: User, other: User) -> None:
    error(create(user, emailAddress=other.email), 409, 12)  # another team's user
    error(create(user, emailAddress=user.email.upper()), 409, 12)
    email = ok(create(user, creditBalance=1))["emailAddress"]
    error(create(user, emailAddress=email, creditBalance=1), 409, 12)
    assert user.balance() == 99.0


# -- who reaches whom ----------------------------------------------------------------------

@pytest.mark.parametrize("user_id", ["abc", "1.5", "-1", "0", "99999999999999999999", "9" * 5000, "１"])
def test_bad_user_ids_are_404(user: User, user_id: str) -> None:
    error(user.http.get(f"{API}/account/user/{user_id}"), 404, 7)
    error(user.http.post(f"{API}/account/user/{user_id}", json={"firstName": "X"}), 404, 7)


def test_other_teams_are_unreachable(user: User, other: User, subs: Callable[..., User]) -> None:
    sub = subs(credits=10)
    for target in (sub.user_id, user.user_id):
        error(other.http.get(f"{API}/account/user/{target}"), 404, 7)
        error(other.http.post(f"{API}/account/user/{target}", json={"firstName": "Hacked"}), 404, 7)
    error(user.http.get(f"{API}/account/user/{other.user_id}"), 404, 7)
    assert search(other, "@example.com") == [other.email]
    assert sub.email in error(transfer(other, sub.email, other.email, 5), 404, 7)
    assert sub.email in error(transfer(other, other.email, sub.email, 5), 404, 7)
    assert other.email in error(transfer(user, other.email, user.email, 5), 404, 7)
    error(other.http.get(f"{API}/account/statistics", params={"userEmailAddress": user.email}), 404, 7)
    error(user.http.get(f"{API}/account/statistics", params={"userEmailAddress": other.email}), 404, 7)
    assert (other.balance(), sub.balance(), user.balance()) == (100.0, 10.0, 90.0)
    assert ok(user.http.get(f"{API}/account/user/{sub.user_id}"))["firstName"] == "Sam"


def test_non_admin_restrictions(user: User, subs: Callable[..., User]) -> None:
    first, second = subs(credits=20), subs()
    error(create(first), 403, 13)
    error(first.http.get(f"{API}/account/user/{second.user_id}"), 403, 13)
    error(first.http.get(f"{API}/account/user/{user.user_id}"), 403, 13)
    error(first.http.post(f"{API}/account/user/{second.user_id}", json={"firstName": "X"}), 403, 13)
    assert ok(first.http.get(f"{API}/account/user/{first.user_id}"))["emailAddress"] == first.email
    assert ok(first.http.post(f"{API}/account/user/{first.user_id}", json={"firstName": "Me"}))["firstName"] == "Me"
    assert search(first, "@example.com") == [first.email]

    error(transfer(first, user.email, first.email, 5), 403, 13)
    error(transfer(first, second.email, first.email, 5), 403, 13)
    given = ok(transfer(first, first.email, second.email, 5))  # its own record: not the team-mate's
    assert (given["emailAddress"], given["creditBalance"]) == (first.email, 15.0)
    assert second.balance() == 5.0
    assert (first.balance(), user.balance()) == (15.0, 80.0)

    error(first.http.get(f"{API}/account/statistics", params={"userEmailAddress": user.email}), 403, 13)
    assert [u["user"]["userId"] for u in stats(first)["users"]] == [first.user_id]
    assert [u["user"]["userId"] for u in stats(first, userEmailAddress=first.email.upper())["users"]] == [
        first.user_id]
    assert [u["user"]["userId"] for u in stats(user)["users"]] == [user.user_id, first.user_id, second.user_id]


# -- transfers -----------------------------------------------------------------------------

def test_transfer_answers_with_the_receiver_the_caller_may_see(user: User, subs: Callable[..., User]) -> None:
    sub, mate = subs(), subs()
    received = ok(transfer(user, user.email, sub.email, 30))
    assert (received["userId"], received["creditBalance"], received["password"]) == (sub.user_id, 30.0, None)
    back = ok(transfer(user, sub.email.upper(), user.email, "10"))  # an admin moves anyone's; XML sends text
    assert (back["userId"], back["creditBalance"]) == (user.user_id, 80.0)
    assert sub.balance() == 20.0
    # a member giving to the admin or a team-mate sees its own record, never theirs
    given = ok(transfer(sub, sub.email, user.email, 15.0))
    assert (given["userId"], given["creditBalance"]) == (sub.user_id, 5.0)
    given = ok(transfer(sub, sub.email, mate.email, 5))
    assert (given["userId"], given["creditBalance"]) == (sub.user_id, 0.0)
    assert (user.balance(), mate.balance()) == (95.0, 5.0)


@pytest.mark.parametrize("credits", [0, -5, 1.5, "1.5", "abc", "", True, None, [10], 2**31, "NaN", "Infinity"])
def test_transfer_refuses_bad_amounts(user: User, subs: Callable[..., User], credits: object) -> None:
    sub = subs()
    assert "numberOfCreditsToTransfer" in error(transfer(user, user.email, sub.email, credits), 400, 1)
    assert (user.balance(), sub.balance()) == (100.0, 0.0)


def test_transfer_refuses_bad_requests(user: User, subs: Callable[..., User]) -> None:
    sub = subs(credits=20)
    error(transfer(user, user.email, user.email.upper(), 5), 400, 1)
    assert "transferFromEmailAddress" in error(transfer(user, None, sub.email, 5), 400, 1)
    assert "transferToEmailAddress" in error(transfer(user, user.email, " ", 5), 400, 1)
    error(user.http.post(f"{API}/account/transfer", json="text"), 400, 1)
    assert "nobody@example.com" in error(transfer(user, "nobody@example.com", sub.email, 5), 404, 7)
    error(transfer(user, sub.email, user.email, 21), 402, 5)
    error(transfer(sub, sub.email, user.email, 21), 402, 5)
    assert (user.balance(), sub.balance()) == (80.0, 20.0)  # nothing written


def test_failed_debit_writes_nothing_even_if_the_caller_commits(db: Database, user: User,
                                                                subs: Callable[..., User]) -> None:
    sub = subs(credits=5)  # its id is above the admin's: the admin's row, the credit, comes first
    with db.write() as session:
        with pytest.raises(InsufficientCredits):
            accounts.transfer_credits(session, sub.user_id, user.user_id, 6000)
    assert (user.balance(), sub.balance()) == (95.0, 5.0)


def _run_transfers(server: Server, admin: User, moves: list[tuple[str, str]]) -> list[httpx.Response]:
    """Each (from, to) move of 10 credits on its own connection, all released at once."""
    start = threading.Barrier(len(moves))

    def move(pair: tuple[str, str]) -> httpx.Response:
        with httpx.Client(base_url=server.url, headers={"email": admin.email, "token": admin.token},
                          timeout=60) as http:
            start.wait()
            return http.post(f"{API}/account/transfer", json={
                "transferFromEmailAddress": pair[0], "transferToEmailAddress": pair[1],
                "numberOfCreditsToTransfer": 10})

    with ThreadPoolExecutor(len(moves)) as pool:
        return list(pool.map(move, moves))


def test_concurrent_transfers(server: Server, db: Database, user: User, subs: Callable[..., User]) -> None:
    a, b = user, subs()
    responses = _run_transfers(server, a, [(a.email, b.email)] * 20)  # 20 x 10 out of 100
    assert sorted(r.status_code for r in responses) == [200] * 10 + [402] * 10
    assert all(r.json()["code"] == 5 for r in responses if r.status_code == 402)
    assert (a.balance(), b.balance()) == (0.0, 100.0)

    moves = [(a.email, b.email), (b.email, a.email)] * 10  # opposite directions at once
    responses = _run_transfers(server, a, moves)
    assert {r.status_code for r in responses} <= {200, 402}
    succeeded = [move for move, r in zip(moves, responses) if r.status_code == 200]
    assert all(r.json()["creditBalance"] >= 0 for r in responses if r.status_code == 200)
    a_to_b = succeeded.count((a.email, b.email))
    b_to_a = succeeded.count((b.email, a.email))
    assert b_to_a >= 1  # b had 100: its first moves cannot fail
    final_a, final_b = a.balance(), b.balance()
    assert final_a >= 0 and final_b >= 0 and final_a + final_b == 100.0
    assert final_a == 10.0 * (b_to_a - a_to_b)
    assert stored(db, a.user_id).credit_balance + stored(db, b.user_id).credit_balance == 100_000


# -- statistics ----------------------------------------------------------------------------

ZERO = {"delivered": 0.0, "failed": 0.0, "failedOptout": 0.0, "failedRefunded": 0.0, "sent": 0.0, "total": 0.0}


def figures(**values: float) -> dict:
    return {**ZERO, **{k: float(v) for k, v in values.items()}}


def insert(db: Database, owner: User, status: str, campaign: str | None, *, cost: int = 2000,
           age: dt.timedelta = dt.timedelta(minutes=1), direction: str = "OUTBOUND") -> None:
    """A message written straight to the database: statuses and ages the simulator never makes."""
    with db.write() as session:
        account_id = session.get(UserRow, owner.user_id).account_id  # type: ignore[union-attr]
        session.add(Message(
            id=new_id(), account_id=account_id, user_id=owner.user_id, direction=direction, status=status,
            to_number="+27821230001", body="inserted", encoding="GSM7", parts=1, credit_cost=cost,
            campaign=campaign, created_at=utcnow() - age,
        ))


@pytest.fixture
def traffic(db: Database, user: User, subs: Callable[..., User]) -> User:
    """The admin's and a sub-account's messages in every status; returns the sub-account."""
    sub = subs(credits=10)
    sent = [
        (user, "+27821234567", "alpha", "DELIVERED"),
        (user, "+12125551234", "alpha", "DELIVERED"),  # half a credit
        (user, "+27821234666", "alpha", "FAILED_REFUNDED"),  # failed receipt
        (user, "+27821234568", "beta", "DELIVERED"),
        (user, "+27821234569", None, "DELIVERED"),
        (user, "+27821234000", None, "FAILED_REFUNDED"),  # rejected
        (sub, "+27821234570", "alpha", "DELIVERED"),
    ]
    for sender, number, campaign, status in sent:
        response = sender.send(number, "stats", **({"campaign": campaign} if campaign else {}))
        sender.wait_status(ok(response)["messageId"], status)
    for status in ("SCHEDULED", "FAILED", "FAILED_OPTOUT", "SENT", "UNKNOWN"):
        insert(db, user, status, "gamma")
    insert(db, user, "DELIVERED", "old", age=dt.timedelta(days=40))
    insert(db, user, "DELIVERED", "gamma", direction="INBOUND")
    return sub


def by_campaign(entry: dict) -> dict:
    return {c["campaign"]: c["statistics"] for c in entry["campaigns"]}


def test_statistics_counts(user: User, traffic: User) -> None:
    report = stats(user)
    assert report["showingCreditValue"] is False
    admin, sub = report["users"]
    assert admin["user"]["userId"] == user.user_id and admin["user"]["password"] is None
    assert [c["campaign"] for c in admin["campaigns"]] == [None, "alpha", "beta", "gamma"]
    assert by_campaign(admin) == {
        None: figures(delivered=1, total=1),  # the rejected one is refunded: left out
        "alpha": figures(delivered=2, total=2),
        "beta": figures(delivered=1, total=1),
        "gamma": figures(failed=1, sent=2, total=4),  # SCHEDULED only in total; SENT and UNKNOWN are sent
    }
    assert admin["total"] == figures(delivered=4, failed=1, sent=2, total=8)
    assert sub["user"]["userId"] == traffic.user_id and by_campaign(sub) == {"alpha": figures(delivered=1, total=1)}
    assert report["grandTotal"] == figures(delivered=5, failed=1, sent=2, total=9)

    everything = stats(user, includeRefundedAndOptout="true")
    admin = everything["users"][0]
    assert by_campaign(admin)[None] == figures(delivered=1, failedRefunded=1, total=2)
    assert by_campaign(admin)["alpha"] == figures(delivered=2, failedRefunded=1, total=3)
    assert by_campaign(admin)["gamma"] == figures(failed=1, failedOptout=1, sent=2, total=5)
    assert everything["grandTotal"] == figures(delivered=5, failed=1, failedOptout=1, failedRefunded=2, sent=2,
                                               total=12)


def test_statistics_credit_value(user: User, traffic: User) -> None:
    report = stats(user, calculateCreditValue="true")
    assert report["showingCreditValue"] is True
    admin = report["users"][0]
    assert by_campaign(admin)["alpha"] == figures(delivered=1.5, total=1.5)
    assert by_campaign(admin)["gamma"] == figures(failed=2, sent=4, total=8)
    assert report["grandTotal"] == figures(delivered=4.5, failed=2, sent=4, total=12.5)
    both = stats(user, calculateCreditValue="true", includeRefundedAndOptout="true")
    assert by_campaign(both["users"][0])["alpha"] == figures(delivered=1.5, failedRefunded=1, total=2.5)
    assert both["grandTotal"]["failedOptout"] == 2.0 and both["grandTotal"]["total"] == 16.5


def test_statistics_filters(user: User, traffic: User) -> None:
    alpha = stats(user, campaign="alpha")
    assert [by_campaign(u) for u in alpha["users"]] == [
        {"alpha": figures(delivered=2, total=2)}, {"alpha": figures(delivered=1, total=1)}]
    only_sub = stats(user, userEmailAddress=traffic.email)
    assert [u["user"]["emailAddress"] for u in only_sub["users"]] == [traffic.email]
    assert only_sub["grandTotal"] == figures(delivered=1, total=1)

    today = dt.datetime.now(dt.UTC).date()
    day = lambda offset: (today + dt.timedelta(days=offset)).strftime("%Y%m%d")  # noqa: E731
    old = stats(user, **{"from": day(-45), "to": day(-35)})
    assert old["from"] == f"{(today - dt.timedelta(days=45)).isoformat()}T00:00:00Z"
    assert old["to"] == f"{(today - dt.timedelta(days=34)).isoformat()}T00:00:00Z"  # 'to' is inclusive
    assert [by_campaign(u) for u in old["users"]] == [{"old": figures(delivered=1, total=1)}, {}]
    assert old["users"][1]["total"] == ZERO
    since = stats(user, **{"from": day(-45)})
    assert since["grandTotal"]["total"] == 10.0  # the 30-day default left the old one out
    recent = stats(user, **{"from": day(-1), "to": day(1)})
    assert recent["grandTotal"] == figures(delivered=5, failed=1, sent=2, total=9)
    swagger_style = (today - dt.timedelta(days=45)).strftime("%d-%m-%Y")
    assert stats(user, **{"from": swagger_style, "to": day(-35)})["grandTotal"] == old["grandTotal"]
    assert stats(user, **{"from": day(1), "to": day(2)})["grandTotal"] == ZERO


@pytest.mark.parametrize("params", [{"from": "2024-13-01"}, {"from": "yesterday"}, {"to": "2024011"},
                                    {"from": "20240132"}, {"from": "20240201", "to": "20240131"}])
def test_statistics_bad_dates_are_code_6(user: User, params: dict) -> None:
    error(user.http.get(f"{API}/account/statistics", params=params), 400, 6)


def test_statistics_bad_flags_and_xml(user: User) -> None:
    error(user.http.get(f"{API}/account/statistics", params={"includeRefundedAndOptout": "maybe"}), 400, 1)
    error(user.http.get(f"{API}/account/statistics", params={"userEmailAddress": "nobody@example.com"}), 404, 7)
    user.send("+27821234567", "no campaign")
    response = user.http.get(f"{API}/account/statistics.xml")
    assert response.status_code == 200 and "<webServiceAccountStatistics>" in response.text
    assert "<campaign />" in response.text


# -- the zoomconnect-sdk client ------------------------------------------------------------

def test_sdk_account_methods(server: Server, user: User, other: User) -> None:
    client = Client(base_url=f"{server.url}/app/", api_token=user.token, account_email=user.email)
    email = new_email("sdk")
    created = client.create_account_user("Sam", "Sdk", PASSWORD, email, "27821234567")
    assert (created["emailAddress"], created["company"], created["creditBalance"]) == (email, None, 0.0)
    funded = client.create_account_user("Fay", "Sdk", PASSWORD, new_email("sdk"), "0821234567", creditBalance=5)
    assert funded["creditBalance"] == 5.0 and funded["contactNumber"] == "+27821234567"
    assert client.get_account_user_by_userId(created["userId"]) == created
    updated = client.update_account_user(created["userId"], "Sally", "Sdk", "new password", "27827654321")
    assert updated == {**created, "firstName": "Sally", "contactNumber": "+27827654321"}
    assert client.get_account_user_by_email(email)["webServiceUserList"] == [updated]
    received = client.account_transfer(email, 10, user.email)
    assert (received["userId"], received["creditBalance"]) == (created["userId"], 10.0)
    report = client.get_account_statistics()
    assert report["showingCreditValue"] is False and len(report["users"]) == 3
    assert client.get_account_balance()["creditBalance"] == 85.0
    assert client.get_account_user_by_userId(other.user_id)["code"] == 7
