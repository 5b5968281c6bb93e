"""Peering numbers (a provider exchange partner's, Zoom's "Cloud Peering"), over real HTTP on
both databases, against a server of their own with two SMPP carriers, each a ``pigeon smsc``:
``other`` (code 8802) takes the general traffic, ``peer`` (code 8801) only its own numbers'.

The carrier's OAuth client lives on the operator's master account and speaks for ``peer``; it
adds, lists, updates and removes numbers in a customer's account (zoomus too), all or nothing
with Zoom's code 1000 and the list of refused items; 1001 without a carrier; 1002, 1003 on the
count; scopes and tenancy; paging. Then a peering number's messages go through its carrier,
both ways, and removing it leaves its messages be.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from test_smpp_e2e import SmscProcess, inject
from test_zoom_numbers import account_of, api, fresh
from zoomus import ZoomClient

from conftest import API, Server, User, make_user, own_database, url_of
from pigeon.accounts.models import Account
from pigeon.accounts.service import create_account
from pigeon.db import Database
from pigeon.numbers import service as numbers
from pigeon.numbers.models import PhoneNumber, Source, State
from pigeon.oauth import service as oauth
from pigeon.oauth.models import OAuthClient

READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"
PEER, OTHER = 8801, 8802


@pytest.fixture(scope="module")
def smscs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SmscProcess, SmscProcess]]:
    """The SMSCs of ``other`` and of ``peer``."""
    made = [SmscProcess(tmp_path_factory.mktemp("smsc")).start() for _ in range(2)]
    yield made[0], made[1]
    for smsc in made:
        smsc.stop()


@pytest.fixture(scope="module")
def peer_db(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with own_database(database_url, tmp_path_factory.mktemp("db")) as database:
        yield database


@pytest.fixture(scope="module")
def peer_server(smscs: tuple[SmscProcess, SmscProcess], peer_db: Database,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    other, peer = smscs
    carriers = [  # the peering carrier matches no sender: it carries its own numbers' messages only
        {"name": "other", "url": other.url + "?reconnect_min=0.1", "code": OTHER},
        {"name": "peer", "url": peer.url + "?reconnect_min=0.1", "code": PEER, "senders": ["(?!)"]},
    ]
    srv = Server(url_of(peer_db), tmp_path_factory.mktemp("server"),
                 extra_env={"PIGEON_CARRIERS": json.dumps(carriers)}).start()
    other.wait_bound()
    peer.wait_bound()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def master(peer_db: Database, peer_server: Server) -> int:
    """The operator's master account, where the carriers' clients live."""
    with peer_db.write() as session:
        return create_account(session, f"op-{uuid.uuid4().hex[:8]}@example.com", master=True).user.account_id


@pytest.fixture
def customer(peer_db: Database, peer_server: Server) -> Iterator[User]:
    u = make_user(peer_db, peer_server)
    yield u
    u.http.close()


def token(server: Server, db: Database, account: int, *scopes: str, carrier: str | None = None) -> str:
    with db.write() as session:
        client = oauth.create_client(session, account, scopes or (READ, WRITE), carrier=carrier)
    basic = base64.b64encode(f"{client.id}:{client.secret}".encode()).decode()
    answer = httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials", "account_id": account},
                        headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def path(account: int | str) -> str:
    return f"/v2/accounts/{account}/number_management/peering_numbers"


def item(number: str, **extra: object) -> dict:
    return {"phone_number": number, "sip_trunk_name": "peer-trunk-1", "status": True, **extra}


def refused_items(answer: httpx.Response) -> list[dict]:
    assert answer.status_code == 400 and answer.json()["code"] == 1000, answer.text
    return json.loads(answer.json()["message"])


def rows(db: Database, *wanted: str) -> dict[str, PhoneNumber]:
    with db.read() as session:
        found = {n: numbers.find(session, n) for n in wanted}
        for row in found.values():
            if row is not None:
                session.expunge(row)
        return {n: row for n, row in found.items() if row is not None}


def test_a_carrier_adds_lists_updates_and_removes_its_numbers(peer_db: Database, peer_server: Server, master: int,
                                                             customer: User) -> None:
    account = account_of(peer_db, customer)
    with peer_db.write() as session:
        client = oauth.create_client(session, master, [READ, WRITE], carrier="peer")
    zoom = ZoomClient(client.id, client.secret, str(master), base_uri=f"{peer_server.url}/v2",
                      oauth_uri=f"{peer_server.url}/oauth/token")
    first, second, third = sorted(fresh() for _ in range(3))
    added = zoom.post_request(f"/accounts/{account}/number_management/peering_numbers", data={
        "allocated_product": "UNALLOCATED", "phone_numbers": [
            item(first, billing_ref_id="B" * 36, service_info="Inbound only number"),
            item(second, number_type="Mobile", status=False), item(third)]})
    assert added.status_code == 201, added.text
    listed = zoom.get_request(f"/accounts/{account}/number_management/peering_numbers").json()
    assert listed["total_records"] == 3 and listed["next_page_token"] == ""
    assert listed["numbers"][0] == {"phone_number": first, "allocated_product": "UNALLOCATED", "assigned": True,
                                    "sip_trunk_name": "peer-trunk-1", "status": True, "billing_ref_id": "B" * 36,
                                    "service_info": "Inbound only number"}
    assert [n["status"] for n in listed["numbers"]] == [True, False, True]
    stored = rows(peer_db, first, second, third)
    assert {(r.source, r.carrier, r.account_id) for r in stored.values()} == {(Source.PEERING, "peer", account)}
    assert (stored[second].kind, stored[second].state, stored[first].kind) == ("mobile", State.PENDING, "local")
    general = api(peer_server, token(peer_server, peer_db, account)).get(
        "/v2/accounts/me/number_management/numbers").json()["numbers"]
    assert {(n["number"], n["source"]) for n in general} == {(n, "ThirdPartyNumber") for n in (first, second, third)}

    http = api(peer_server, zoom.config["token"])
    changed = http.patch(path(account), json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [
        {"phone_number": second, "status": True, "sip_trunk_name": "peer-trunk-2"},
        {"phone_number": first, "billing_ref_id": "", "service_info": "Metered charges apply"}]})
    assert changed.status_code == 204, changed.text
    stored = rows(peer_db, first, second, third)
    assert (stored[second].state, stored[second].sip_trunk_name, stored[second].product) == (
        State.ACTIVE, "peer-trunk-2", "ZOOM_PHONE")
    assert (stored[first].billing_ref_id, stored[first].service_info) == (None, "Metered charges apply")
    assert stored[third].product == "UNALLOCATED"  # only the numbers listed change
    again = http.patch(path(account), json={"allocated_product": "ZOOM_CONTACT_CENTER",
                                            "phone_numbers": [{"phone_number": second}, {"phone_number": third}]})
    assert refused_items(again) == [{"phoneNumber": second, "reason": "allocated_product is ZOOM_PHONE: it can be "
                                                                      "changed only from UNALLOCATED"}]
    assert rows(peer_db, third)[third].product == "UNALLOCATED"  # all or nothing
    same = http.patch(path(account), json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [{"phone_number": second}]})
    assert same.status_code == 204  # the product it has already is no change

    provider = zoom.get_request("/accounts/me/number_management/carrier/peering_numbers",
                                params={"phone_number": second}).json()
    assert provider["numbers"] == [{"phone_number": second, "assigned": True, "sip_trunk_name": "peer-trunk-2",
                                    "status": True, "customer_account_name": customer.email,
                                    "customer_account_number": str(account)}]
    removed = zoom.delete_request(f"/accounts/{account}/number_management/peering_numbers",
                                  params={"phone_numbers": [first, third]})
    assert removed.status_code == 200, removed.text
    assert set(rows(peer_db, first, second, third)) == {second}
    assert [n["phone_number"] for n in http.get(path(account)).json()["numbers"]] == [second]


def test_every_refused_item_is_listed_and_nothing_is_written(peer_db: Database, peer_server: Server, master: int,
                                                             customer: User, other: User) -> None:
    account = account_of(peer_db, customer)
    carrier = api(peer_server, token(peer_server, peer_db, master, carrier="peer"))
    operator = api(peer_server, token(peer_server, peer_db, master))  # no carrier of its own: names one by code
    good, theirs, mine = fresh(), fresh(), fresh()
    with peer_db.write() as session:
        numbers.add(session, numbers.Spec(theirs), "US")
    answer = carrier.post(path(account), json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [
        item(good), item("12345"), item(theirs), item(fresh(), billing_ref_id="x" * 37),
        {"phone_number": mine, "status": True}, item(good), item(fresh(), status="yes"), "+14155550100",
        item(fresh(), number_type="Landline"), item(fresh(), service_info="s" * 256)]})
    failures = refused_items(answer)
    assert [f["reason"] for f in failures] == [
        "Invalid number", "billing_ref_id is text of at most 36 characters", "Invalid Sip Trunk",
        "Phone number given twice", "status is required, true or false", "Not a phone number's details",
        "number_type is Mobile or not given", "service_info is text of at most 255 characters",
        "Phone Number already exists"]
    assert failures[0]["phoneNumber"] == "12345" and failures[2]["phoneNumber"] == mine
    assert failures[-1]["phoneNumber"] == theirs
    assert rows(peer_db, good, mine) == {}  # all or nothing
    for body, code in (({"allocated_product": "ZOOM_PHONE", "phone_numbers": []}, 1002),
                       ({"allocated_product": "ZOOM_PHONE", "phone_numbers": [item(fresh()) for _ in range(201)]}, 1003),
                       ({"phone_numbers": [item(fresh())]}, 999),
                       ({"allocated_product": "ZOOM_RADIO", "phone_numbers": [item(fresh())]}, 999),
                       ({"allocated_product": "ZOOM_PHONE", "phone_numbers": "+14155550100"}, 999)):
        refused = carrier.post(path(account), json=body)
        assert refused.status_code == 400 and refused.json()["code"] == code, (body, refused.text)

    assert carrier.post(path(account), json={"allocated_product": "UNALLOCATED", "phone_numbers": [
        item(good), item(mine)]}).status_code == 201
    elsewhere, others = fresh(), fresh()
    assert carrier.post(path(account_of(peer_db, other)), json={"allocated_product": "UNALLOCATED", "phone_numbers": [
        item(elsewhere)]}).status_code == 201
    assert operator.post(path(account), json={"carrier_code": OTHER, "allocated_product": "UNALLOCATED",
                                              "phone_numbers": [item(others)]}).status_code == 201
    update = carrier.patch(path(account), json={"phone_numbers": [
        {"phone_number": good, "status": False}, {"phone_number": elsewhere, "status": False},
        {"phone_number": others, "status": False}, {"phone_number": theirs}, {"phone_number": "+1"},
        {"phone_number": mine, "sip_trunk_name": ""}, {"phone_number": mine, "billing_ref_id": 7}]})
    assert [(f["phoneNumber"], f["reason"]) for f in refused_items(update)] == [
        ("+1", "Invalid number"), (mine, "Invalid Sip Trunk"), (mine, "Phone number given twice"),
        (elsewhere, "Phone number does not exist"), (others, "Phone number does not exist"),
        (theirs, "Phone number does not exist")]
    assert rows(peer_db, good)[good].state == State.ACTIVE  # nothing changed
    assert carrier.patch(path(account), json={"phone_numbers": []}).json()["code"] == 1002
    removing = carrier.delete(path(account), params=[("phone_numbers", n) for n in (good, elsewhere, others, "nope")])
    assert [(f["phoneNumber"], f["reason"]) for f in refused_items(removing)] == [
        ("nope", "Invalid number"), (elsewhere, "Phone number does not exist"), (others, "Phone number does not exist")]
    assert set(rows(peer_db, good, elsewhere, others)) == {good, elsewhere, others}
    assert carrier.delete(path(account)).json()["code"] == 1002
    assert carrier.delete(path(account), params=[("phone_numbers", fresh()) for _ in range(201)]).json()["code"] == 1003
    assert carrier.delete(path(account), params={"phone_numbers": f"{good},{mine}"}).status_code == 200
    assert rows(peer_db, good, mine) == {}


@pytest.fixture
def other(peer_db: Database, peer_server: Server) -> Iterator[User]:
    u = make_user(peer_db, peer_server)
    yield u
    u.http.close()


def test_who_speaks_for_which_carrier(peer_db: Database, peer_server: Server, master: int, customer: User,
                                      other: User) -> None:
    account = account_of(peer_db, customer)
    body = {"allocated_product": "UNALLOCATED", "phone_numbers": [item(fresh())]}
    operator = api(peer_server, token(peer_server, peer_db, master))
    for answer in (operator.post(path(account), json=body),
                   operator.post(path(account), json={**body, "carrier_code": 1234}),
                   operator.patch(path(account), json={"phone_numbers": [item(fresh())]}),
                   operator.delete(path(account), params={"phone_numbers": fresh()}),
                   operator.get(path(account), params={"carrier_code": 1234}),
                   operator.get("/v2/accounts/me/number_management/carrier/peering_numbers")):
        assert answer.status_code == 400 and answer.json()["code"] == 1001, answer.text
    assert operator.post(path(account), json={**body, "carrier_code": PEER}).status_code == 201
    carrier = api(peer_server, token(peer_server, peer_db, master, carrier="peer"))
    wrong = carrier.post(path(account), json={**body, "carrier_code": OTHER})
    assert wrong.status_code == 403 and wrong.json()["code"] == 200
    assert carrier.get(path(account), params={"carrier_code": OTHER}).status_code == 403
    assert carrier.get(path(account), params={"carrier_code": PEER}).json()["total_records"] == 1

    reader = api(peer_server, token(peer_server, peer_db, master, READ, carrier="peer"))
    assert reader.get(path(account)).status_code == 200
    scoped = reader.post(path(account), json={"allocated_product": "UNALLOCATED", "phone_numbers": [item(fresh())]})
    assert scoped.status_code == 403 and "does not contain scopes" in scoped.json()["message"]
    granular = api(peer_server, token(peer_server, peer_db, master, "number_management:write:peering_number:master",
                                      carrier="peer"))
    assert granular.post(path(account), json={"allocated_product": "UNALLOCATED",
                                              "phone_numbers": [item(fresh())]}).status_code == 201
    assert granular.get(path(account)).status_code == 403
    not_above = api(peer_server, token_made_before_the_rule(peer_server, peer_db, account_of(peer_db, other), READ,
                                                            WRITE))
    beyond = not_above.post(path(account), json={"allocated_product": "UNALLOCATED", "phone_numbers": [item(fresh())]})
    assert beyond.status_code == 403 and beyond.json()["code"] == 200  # a carrier reaches only the accounts below it
    assert not_above.get(path(account)).status_code == 403

    own = api(peer_server, token(peer_server, peer_db, account))  # the customer sees every carrier's, its own only
    assert own.get(path("me")).json()["total_records"] == 2
    assert own.get(path("me"), params={"carrier_code": PEER}).json()["total_records"] == 2
    assert own.get(path("me"), params={"carrier_code": OTHER}).json()["total_records"] == 0
    by_code = own.post(path("me"), json={**body, "carrier_code": PEER})  # a code alone: the operator's only
    assert by_code.status_code == 403 and by_code.json()["code"] == 200
    assert api(peer_server, token(peer_server, peer_db, account_of(peer_db, other))).get(
        path("me")).json()["total_records"] == 0
    for headers in ({}, {"Authorization": "Bearer nope"}):
        assert httpx.get(f"{peer_server.url}{path(account)}", headers=headers).json()["code"] == 124


def token_made_before_the_rule(server: Server, db: Database, account: int, *scopes: str) -> str:
    """A token of a client that speaks for ``peer`` on ``account``, as ``pigeon oauth client
    create --carrier`` made them before only the master account could have one."""
    with db.write() as session:
        client = oauth.create_client(session, account, scopes)
        session.get(OAuthClient, client.id).carrier = "peer"  # type: ignore[union-attr]
    basic = base64.b64encode(f"{client.id}:{client.secret}".encode()).decode()
    answer = httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials", "account_id": account},
                        headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def test_a_carrier_speaks_only_from_the_operators_master_account(peer_db: Database, peer_server: Server, master: int,
                                                                 customer: User, other: User) -> None:
    """The operator's trial: a carrier client on a customer account (made before create_client
    refused it) listed every tenant's peering numbers and added the carrier's numbers to its own
    account. At use, a grant's carrier counts only when its account is the master account: 403,
    code 200, for such a client, and for the master account's client once its account is not
    the master any more; nothing is shown or written."""
    account, elsewhere = account_of(peer_db, customer), account_of(peer_db, other)
    theirs = fresh()
    operator = api(peer_server, token(peer_server, peer_db, master, carrier="peer"))
    assert operator.post(path(elsewhere), json={"allocated_product": "ZOOM_PHONE",
                                                "phone_numbers": [item(theirs)]}).status_code == 201
    provider_view = "/v2/accounts/me/number_management/carrier/peering_numbers"
    mine = fresh()
    with peer_db.write() as session:
        demoted = create_account(session, f"op-{uuid.uuid4().hex[:8]}@example.com", master=True).user.account_id
    was_master = api(peer_server, token(peer_server, peer_db, demoted, carrier="peer"))
    assert was_master.get(provider_view, params={"phone_number": theirs}).json()["numbers"][0]["phone_number"] == theirs
    with peer_db.write() as session:
        session.get(Account, demoted).is_master = False  # type: ignore[union-attr]
    for http, target in ((api(peer_server, token_made_before_the_rule(
            peer_server, peer_db, account, "number_management_numbers:read", "number_management_numbers:write")), "me"),
                         (api(peer_server, token_made_before_the_rule(peer_server, peer_db, account, READ, WRITE)),
                          "me"),
                         (was_master, "me")):
        listed = http.get(provider_view)
        assert listed.status_code == 403 and listed.json()["code"] == 200, listed.text
        assert theirs not in listed.text and "customer_account_name" not in listed.text
        assert "only the operator's master account's clients" in listed.json()["message"]
        for answer in (http.post(path(target), json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [item(mine)]}),
                       http.patch(path(target), json={"phone_numbers": [{"phone_number": theirs, "status": False}]}),
                       http.delete(path(target), params={"phone_numbers": theirs}),
                       http.get(path(target))):
            assert answer.status_code == 403 and answer.json()["code"] == 200, answer.text
    assert set(rows(peer_db, mine, theirs)) == {theirs}
    assert rows(peer_db, theirs)[theirs].state == State.ACTIVE and rows(peer_db, theirs)[theirs].account_id == elsewhere
    assert operator.get(provider_view, params={"phone_number": theirs}).json()["numbers"][0][
        "customer_account_number"] == str(elsewhere)  # the master account's own client still speaks


def test_paging_an_account_and_the_provider_view(peer_db: Database, peer_server: Server, master: int,
                                                 customer: User, other: User) -> None:
    carrier = api(peer_server, token(peer_server, peer_db, master, carrier="peer"))
    account, elsewhere = account_of(peer_db, customer), account_of(peer_db, other)
    mine, theirs = sorted(fresh() for _ in range(5)), sorted(fresh() for _ in range(2))
    for target, wanted in ((account, mine), (elsewhere, theirs)):
        made = carrier.post(path(target), json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [
            item(n) for n in wanted]})
        assert made.status_code == 201, made.text

    def walk(url: str, **params: object) -> tuple[list[str], int]:
        seen, next_token, total = [], "", 0
        while True:
            page = carrier.get(url, params={"page_size": 2, **params, **({"next_page_token": next_token} if next_token
                                                                          else {})})
            assert page.status_code == 200, page.text
            assert len(page.json()["numbers"]) <= 2
            seen += [n["phone_number"] for n in page.json()["numbers"]]
            next_token, total = page.json()["next_page_token"], page.json()["total_records"]
            if not next_token:
                return seen, total

    assert walk(path(account)) == (mine, 5)
    provided, total = walk("/v2/accounts/me/number_management/carrier/peering_numbers")
    assert set(mine + theirs) <= set(provided) and total == len(provided) and provided == sorted(provided)
    assert carrier.get(path(account), params={"phone_number": mine[2]}).json()["numbers"][0]["phone_number"] == mine[2]
    assert carrier.get(path(account), params={"phone_number": theirs[0]}).json()["numbers"] == []  # another account's
    with peer_db.write() as session:  # back in the operator's pool: in no account, so not assigned
        numbers.allocate(session, [numbers.find(session, theirs[1]).id], None)
    pooled = carrier.get("/v2/accounts/me/number_management/carrier/peering_numbers",
                         params={"phone_number": theirs[1]}).json()["numbers"]
    assert pooled == [{"phone_number": theirs[1], "assigned": False, "sip_trunk_name": "peer-trunk-1", "status": True}]
    first = carrier.get(path(account), params={"page_size": 2}).json()["next_page_token"]
    for params in ({"page_size": 2, "next_page_token": first[:-2] + ("AA" if not first.endswith("AA") else "BB")},
                   {"page_size": 2, "next_page_token": "not-a-token"}):
        assert carrier.get(path(account), params=params).json()["code"] == 1003100
    borrowed = carrier.get("/v2/accounts/me/number_management/carrier/peering_numbers",
                           params={"page_size": 2, "next_page_token": first})
    assert borrowed.status_code == 400 and borrowed.json()["code"] == 1003100  # another list's token
    for params in ({"page_size": 301}, {"page_size": 0}, {"phone_number": "12345"}, {"carrier_code": "x"}):
        answer = carrier.get(path(account), params=params)
        assert answer.status_code == 400 and answer.json()["code"] in (999, 300), (params, answer.text)
    assert len(carrier.get(path(account), params={"page_size": 300}).json()["numbers"]) == 5


def wait(found, seconds: float = 15):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        value = found()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_a_peering_number_is_routed_through_its_carrier_both_ways(
        peer_db: Database, peer_server: Server, master: int, customer: User,
        smscs: tuple[SmscProcess, SmscProcess]) -> None:
    other_smsc, peer_smsc = smscs
    account = account_of(peer_db, customer)
    carrier = api(peer_server, token(peer_server, peer_db, master, carrier="peer"))
    peering_number, own_number = fresh(), fresh()
    assert carrier.post(path(account), json={"allocated_product": "UNALLOCATED",
                                             "phone_numbers": [item(peering_number)]}).status_code == 201
    with peer_db.write() as session:  # the account's sender when a send names none
        numbers.make_default(session, numbers.find(session, peering_number))

    def reached(smsc: SmscProcess, to: str) -> list[dict]:
        return [m for m in smsc.messages() if m["destination"] == to.removeprefix("+")]

    to = "+2782" + f"{uuid.uuid4().int % 10**6:06d}1"
    sent = customer.http.post(f"{API}/sms/send.json", json={"recipientNumber": to, "message": "via the peer"})
    assert sent.status_code == 200, sent.text
    customer.wait_status(sent.json()["messageId"], "DELIVERED")
    assert [m["text"] for m in reached(peer_smsc, to)] == ["via the peer"] and reached(other_smsc, to) == []
    assert customer.message(sent.json()["messageId"])["fromNumber"] == peering_number

    with peer_db.write() as session:  # another sender of the same account: the general route
        numbers.make_default(session, numbers.add(session, numbers.Spec(own_number), "US", account_id=account))
    to_too = "+2782" + f"{uuid.uuid4().int % 10**6:06d}1"
    again = customer.http.post(f"{API}/sms/send.json", json={"recipientNumber": to_too, "message": "via the other"})
    customer.wait_status(again.json()["messageId"], "DELIVERED")
    assert [m["text"] for m in reached(other_smsc, to_too)] == ["via the other"] and reached(peer_smsc, to_too) == []

    inject(peer_smsc, "+27825550123", peering_number, "a reply over the peer")

    def inbound() -> list[dict]:
        return [m for m in customer.http.get(f"{API}/messages/all", params={"type": "INBOUND"}).json()[
            "webServiceMessages"] if m["message"] == "a reply over the peer"]

    (reply,) = wait(inbound)
    assert reply["fromNumber"] == "+27825550123" and reply["toNumber"] == peering_number

    removed = carrier.delete(path(account), params={"phone_numbers": peering_number})  # it has messages: they stay
    assert removed.status_code == 200, removed.text
    assert rows(peer_db, peering_number) == {}
    assert customer.message(sent.json()["messageId"])["messageStatus"] == "DELIVERED"
    assert len(inbound()) == 1
