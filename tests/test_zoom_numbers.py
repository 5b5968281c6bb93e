"""The Zoom Number Management API's phone numbers, over real HTTP with bearer tokens, on both
databases: the PyPI client ``zoomus`` pointed at Pigeon (``base_uri``, ``oauth_uri``); paging
with sealed tokens (a walk, a forged, a stale and a borrowed token); filters; get, update and
delete, all or none; scopes, the token's own account, and tenancy."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

import httpx
import pytest
from sqlalchemy import select
from zoomus import ZoomClient

from conftest import Server, User
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import token_key
from pigeon.api.zoomnumbers import pages
from pigeon.db import Database, utcnow
from pigeon.errors import NotFound
from pigeon.numbers import service as numbers
from pigeon.numbers.models import Kind, Source, State
from pigeon.oauth import service as oauth

READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"
BASE = "/v2/accounts/me/number_management"


def account_of(db: Database, user: User) -> int:
    with db.read() as session:
        return session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))


def fresh() -> str:
    return "+1415" + str(2_000_000 + uuid.uuid4().int % 7_000_000)


def token_for(server: Server, db: Database, account: int, *scopes: str) -> str:
    with db.write() as session:
        client = oauth.create_client(session, account, scopes or (READ, WRITE))
    answer = httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials", "account_id": account},
                        headers={"Authorization": "Basic " + base64.b64encode(f"{client.id}:{client.secret}".encode()).decode()})
    return answer.json()["access_token"]


@pytest.fixture
def stocked(db: Database, user: User) -> tuple[int, list[str]]:
    """The user's account with five numbers of several kinds; (account, their ids in order)."""
    account = account_of(db, user)
    with db.write() as session:
        made = [numbers.add(session, numbers.Spec(fresh(), kind), "ZA", account_id=account)
                for kind in (Kind.LOCAL, Kind.MOBILE, Kind.MOBILE, Kind.TOLL_FREE, Kind.LOCAL)]
        made[4].state = State.PENDING.value
        made[3].source = Source.PORTED.value
        made.sort(key=lambda row: row.number)
        return account, [row.id for row in made]


def zoomus_for(db: Database, server: Server, account: int) -> ZoomClient:
    """Zoom's PyPI client, pointed at Pigeon, with a client of the account holding both scopes."""
    with db.write() as session:
        client = oauth.create_client(session, account, [READ, WRITE])
    return ZoomClient(client.id, client.secret, str(account), base_uri=f"{server.url}/v2",
                      oauth_uri=f"{server.url}/oauth/token")


def api(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_zoomus_gets_a_token_and_lists_gets_and_updates_numbers(db: Database, server: Server, user: User,
                                                                 stocked: tuple[int, list[str]]) -> None:
    account, ids = stocked
    zoom = zoomus_for(db, server, account)
    listed = zoom.get_request("/accounts/me/number_management/numbers", params={"page_size": 10})
    assert listed.status_code == 200, listed.text
    assert [n["id"] for n in listed.json()["numbers"]] == ids and listed.json()["next_page_token"] == ""
    one = zoom.get_request(f"/accounts/{account}/number_management/numbers/{ids[0]}")
    assert one.status_code == 200 and one.json()["id"] == ids[0] and one.json()["capability"] == ["Messaging"]
    changed = zoom.patch_request(f"/accounts/me/number_management/numbers/{ids[0]}",
                                 data={"display_name": "Front desk", "capability": {"incoming": True}})
    assert changed.status_code == 204, changed.text
    again = zoom.get_request(f"/accounts/me/number_management/numbers/{ids[0]}").json()
    assert again["display_name"] == "Front desk" and again["capability"] == ["Incoming", "Outgoing", "Messaging"]


def test_a_walk_with_sealed_page_tokens(db: Database, server: Server, user: User,
                                        stocked: tuple[int, list[str]]) -> None:
    account, ids = stocked
    http = api(server, token_for(server, db, account))
    seen, token = [], None
    while True:
        page = http.get(f"{BASE}/numbers", params={"page_size": 2, **({"next_page_token": token} if token else {})})
        assert page.status_code == 200 and page.json()["page_size"] == 2, page.text
        seen += [n["id"] for n in page.json()["numbers"]]
        token = page.json()["next_page_token"]
        if not token:
            break
        with db.write() as session:  # a number added at the top while walking is not seen twice
            numbers.add(session, numbers.Spec("+1201" + str(2_000_000 + uuid.uuid4().int % 7_000_000)), "ZA",
                        account_id=account)
    assert seen[:5] == ids and len(seen) == len(set(seen))
    first = http.get(f"{BASE}/numbers", params={"page_size": 1}).json()["next_page_token"]
    with db.read() as session:
        key = token_key(session)
    stale = pages.seal(key, f"numbers:{account}:{numbers.Filter()}", "+1", utcnow() - dt.timedelta(minutes=16))
    borrowed = http.get(f"{BASE}/numbers", params={"page_size": 1, "number_type": "Mobile"}).json()["next_page_token"]
    for bad in (first[:-2] + ("AA" if not first.endswith("AA") else "BB"), "not-a-token", stale, borrowed):
        answer = http.get(f"{BASE}/numbers", params={"page_size": 1, "next_page_token": bad})
        assert answer.status_code == 400 and answer.json()["code"] == 1003100, (bad, answer.text)


def test_filters(db: Database, server: Server, user: User, stocked: tuple[int, list[str]]) -> None:
    account, ids = stocked
    http = api(server, token_for(server, db, account, READ))

    def listed(**params: str) -> list[str]:
        answer = http.get(f"{BASE}/numbers", params={"page_size": 100, **params})
        assert answer.status_code == 200, answer.text
        return [n["number_type"] + "/" + n["source"] + "/" + n["status"] for n in answer.json()["numbers"]]

    assert sorted(listed(number_type="Mobile")) == ["Mobile/Zoom/Normal"] * 2
    assert listed(number_source="ZoomPorted") == ["TollFree/ZoomPorted/Normal"]
    assert listed(number_status="Pending") == ["Toll/Zoom/Pending"]
    assert listed(number_type="ITFS") == []
    with db.read() as session:
        some = numbers.get(session, ids[2]).number
    assert len(listed(keyword=some[-6:])) == 1
    for bad in ({"number_type": "Landline"}, {"number_status": "Gone"}, {"page_size": "0"}, {"page_size": "101"},
                {"allocated_product": "ZOOM_RADIO"}):
        answer = http.get(f"{BASE}/numbers", params=bad)
        assert answer.status_code == 400 and answer.json()["code"] in (999, 300), (bad, answer.text)


def test_get_update_delete_and_their_refusals(db: Database, server: Server, user: User, other: User,
                                              stocked: tuple[int, list[str]]) -> None:
    account, ids = stocked
    http = api(server, token_for(server, db, account))
    with db.write() as session:
        theirs = numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=account_of(db, other)).id
    for missing in (theirs, "no-such-number", "a%00b"):
        answer = http.get(f"{BASE}/numbers/{missing}")
        assert answer.status_code == 404 and answer.json()["code"] == 100002, answer.text
    too_long = http.patch(f"{BASE}/numbers/{ids[0]}", json={"display_name": "x" * 33})
    assert too_long.status_code == 400 and too_long.json()["code"] == 999
    assert http.patch(f"{BASE}/numbers/{theirs}", json={"display_name": "mine now"}).status_code == 404
    partly = http.delete(f"{BASE}/numbers", params=[("numbers", ids[0]), ("numbers", theirs)])
    assert partly.status_code == 400 and partly.json()["code"] == 100002  # nothing deleted: all or none
    assert theirs in partly.json()["message"] and ids[0] not in partly.json()["message"]
    assert http.get(f"{BASE}/numbers/{ids[0]}").status_code == 200
    assert http.delete(f"{BASE}/numbers").json()["code"] == 999
    assert http.delete(f"{BASE}/numbers", params=[("numbers", f"n{i}") for i in range(11)]).status_code == 400
    gone = http.delete(f"{BASE}/numbers", params=[("numbers", ids[0]), ("numbers", ids[1])])
    assert gone.status_code == 204, gone.text
    assert [n["id"] for n in http.get(f"{BASE}/numbers").json()["numbers"]] == ids[2:]
    with db.read() as session:
        assert numbers.get(session, theirs) is not None


def test_tokens_scopes_and_accounts(db: Database, server: Server, user: User, other: User,
                                    stocked: tuple[int, list[str]]) -> None:
    account, ids = stocked
    reader = api(server, token_for(server, db, account, "number_management_numbers:read"))  # own account only
    assert reader.get(f"{BASE}/numbers").status_code == 200
    assert reader.get(f"/v2/accounts/{account}/number_management/numbers").status_code == 200
    cannot = reader.patch(f"{BASE}/numbers/{ids[0]}", json={"display_name": "x"})
    assert cannot.status_code == 403 and "does not contain scopes" in cannot.json()["message"], cannot.text
    elsewhere = api(server, token_for(server, db, account)).get(
        f"/v2/accounts/{account_of(db, other)}/number_management/numbers")
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == 200
    for odd in ("%C2%B3", "%D9%A3", "0x1", "-1", "99999999999"):  # digits that are not ASCII (the fuzzer's find)
        assert reader.get(f"/v2/accounts/{odd}/number_management/numbers").status_code == 403, odd
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        answer = httpx.get(f"{server.url}{BASE}/numbers", headers=headers)
        assert answer.status_code == 401 and answer.json() == {"code": 124, "message": "Invalid access token."}
    outside = httpx.get(f"{server.url}/v2/no/such/path")
    assert outside.status_code == 404 and set(outside.json()) == {"code", "message"}


def test_rate_limits_hold_across_processes(db: Database, database_url: str, tmp_path, user: User,  # type: ignore[no-untyped-def]
                                           other: User, stocked: tuple[int, list[str]]) -> None:
    """Two API processes on one database, LIGHT at 4 requests per window per account (a window
    of 3 s, so that a loaded machine still fits six requests in it): the fifth request is
    refused whichever process takes it, with Zoom's headers; the next window admits again;
    another account has its own count."""
    import time

    account, ids = stocked
    env = {"PIGEON_RATE_LIMITS__LIGHT": "4", "PIGEON_RATE_LIMITS__MEDIUM": "2", "PIGEON_RATE_LIMITS__WINDOW": "3"}
    servers = [Server(database_url, tmp_path, extra_env=env).start() for _ in range(2)]
    try:
        token = token_for(servers[0], db, account)
        clients = [api(server, token) for server in servers]
        answers = [clients[i % 2].get(f"{BASE}/numbers/{ids[0]}") for i in range(6)]
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == 4 and statuses[-1] == 429, statuses
        refused = answers[-1]
        assert refused.json()["code"] == 429 and "rate limit" in refused.json()["message"]
        headers = refused.headers
        assert headers["x-ratelimit-category"] == "Light" and headers["x-ratelimit-type"] == "QPS"
        assert headers["x-ratelimit-limit"] == "4" and 1 <= int(headers["retry-after"]) <= 3
        theirs = api(servers[1], token_for(servers[1], db, account_of(db, other)))
        assert theirs.get(f"{BASE}/numbers").status_code == 200  # another account, another count
        time.sleep(int(headers["retry-after"]) + 0.1)
        assert clients[1].get(f"{BASE}/numbers/{ids[0]}").status_code == 200
        deleting = [clients[i % 2].delete(f"{BASE}/numbers", params={"numbers": "none"}) for i in range(3)]
        assert [d.status_code for d in deleting][-1] == 429  # MEDIUM counts apart from LIGHT
    finally:
        for server in servers:
            server.stop()


POLICY = {
    "consent_name": "Shop", "description": "Offers from the shop", "status": True,
    "in_out_bound": {
        "opt_in_message": {"prompt": "Text START for offers", "keywords": ["START", "Offers"],
                           "confirmation_message": "You're subscribed!"},
        "opt_out_message": {"message": "No more offers.", "keywords": ["Stop", "Arret"]},
        "help_message": {"message": "Call 0800 SHOP.", "keywords": ["HELP"]},
        "disclaimer": {"message": "Msg rates may apply.", "enable": False},
    },
}


def test_consent_policies_through_zoomus_and_http(db: Database, server: Server, user: User, other: User,
                                                  stocked: tuple[int, list[str]]) -> None:
    account, ids = stocked
    zoom = zoomus_for(db, server, account)
    made = zoom.post_request("/accounts/me/number_management/sms_consent", data=POLICY)
    assert made.status_code == 201, made.text
    policy = made.json()
    assert policy["consent_name"] == "Shop" and policy["in_out_bound"]["opt_out_message"]["keywords"] == ["STOP", "ARRET"]
    assert policy["status"] is True and policy["used_number"] == 0 and policy["account_id"] == str(account)
    second = zoom.post_request("/accounts/me/number_management/sms_consent", data={**POLICY, "consent_name": "Other"})
    listed = zoom.get_request("/accounts/me/number_management/sms_consent", params={"page_size": 1}).json()
    assert listed["total_records"] == 2 and len(listed["sms_consent"]) == 1 and listed["next_page_token"]
    rest = zoom.get_request("/accounts/me/number_management/sms_consent",
                            params={"page_size": 1, "next_page_token": listed["next_page_token"]}).json()
    assert {listed["sms_consent"][0]["consent_id"], rest["sms_consent"][0]["consent_id"]} == {
        policy["consent_id"], second.json()["consent_id"]} and rest["next_page_token"] == ""
    base = f"/accounts/me/number_management/sms_consent/{policy['consent_id']}"
    changed = zoom.patch_request(base, data={"consent_name": "Shop offers", "status": False,
                                             "in_out_bound": {"help_message": {"message": "Call us."}}})
    assert changed.status_code == 204, changed.text
    got = zoom.get_request(base).json()
    assert (got["consent_name"], got["status"], got["in_out_bound"]["help_message"]["message"]) == (
        "Shop offers", False, "Call us.")
    http = api(server, zoom.config["token"])
    assert http.post(f"/v2{base}/phone_numbers", json={"phone_number_ids": ids[:2]}).status_code == 201
    numbers_listed = http.get(f"/v2{base}/phone_numbers").json()
    assert numbers_listed["total_records"] == 2 and {n["phone_number_id"] for n in numbers_listed["sms_consent_number"]} == set(ids[:2])
    assert http.get(f"/v2{base}").json()["used_number"] == 2
    with db.write() as session:
        theirs = numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=account_of(db, other)).id
    refused = http.post(f"/v2{base}/phone_numbers", json={"phone_number_ids": [ids[2], theirs]})
    assert refused.status_code == 400 and refused.json()["code"] == 100002 and theirs in refused.json()["message"]
    assert http.get(f"/v2{base}").json()["used_number"] == 2  # all or none
    assert http.request("DELETE", f"/v2{base}/phone_numbers", json={"phone_number_ids": [ids[0]]}).status_code == 204
    assert http.get(f"/v2{base}").json()["used_number"] == 1
    bad = http.request("DELETE", "/v2/accounts/me/number_management/sms_consent",
                       json={"consent_ids": [policy["consent_id"], "C-nope"]})
    assert bad.status_code == 400 and bad.json()["code"] == 999
    assert http.post("/v2/accounts/me/number_management/sms_consent", json={"consent_name": "x"}).json()["code"] == 999
    gone = http.request("DELETE", "/v2/accounts/me/number_management/sms_consent",
                        json={"consent_ids": [policy["consent_id"]]})
    assert gone.status_code == 204
    missing = http.get(f"/v2{base}")
    assert missing.status_code == 404 and missing.json()["code"] == 1002013
    with db.read() as session:
        assert numbers.get(session, ids[1]).consent_policy_id is None
    theirs_token = api(server, token_for(server, db, account_of(db, other)))
    hidden = theirs_token.get(f"/v2/accounts/me/number_management/sms_consent/{second.json()['consent_id']}")
    assert hidden.status_code == 404 and hidden.json()["code"] == 1002013  # tenants never see each other's


def test_opt_outs_through_the_api_extension(db: Database, server: Server, user: User,
                                            stocked: tuple[int, list[str]]) -> None:
    account, ids = stocked
    http = api(server, token_for(server, db, account))
    path = "/v2/accounts/me/number_management/sms_consent_opt_outs"
    phones = ["+2782" + str(1_000_000 + uuid.uuid4().int % 8_000_000) for _ in range(3)]
    changed = http.patch(path, json={"opt_outs": [
        {"phone_number": phones[0], "status": "opted_out"},
        {"phone_number": phones[1], "status": "opted_out", "phone_number_id": ids[0]},
        {"phone_number": phones[2], "status": "opted_out"}]})
    assert changed.status_code == 204, changed.text
    first = http.get(path, params={"page_size": 2}).json()
    rest = http.get(path, params={"page_size": 2, "next_page_token": first["next_page_token"]}).json()
    listed = first["opt_outs"] + rest["opt_outs"]
    assert sorted(o["phone_number"] for o in listed) == sorted(phones) and rest["next_page_token"] == ""
    assert {"account": True} in [o["scope"] for o in listed] and any("phone_number" in o["scope"] for o in listed)
    assert http.patch(path, json={"opt_outs": [{"phone_number": phones[0], "status": "opted_in"}]}).status_code == 204
    assert len(http.get(path).json()["opt_outs"]) == 2
    for bad in ({"opt_outs": []}, {"opt_outs": [{"phone_number": "12", "status": "opted_out"}]},
                {"opt_outs": [{"phone_number": phones[0], "status": "maybe"}]},
                {"opt_outs": [{"phone_number": phones[0], "status": "opted_out", "phone_number_id": "nope"}]},
                {"opt_outs": [{"phone_number": phones[0], "status": "opted_out", "consent_id": "C-nope"}]}):
        answer = http.patch(path, json=bad)
        assert answer.status_code in (400, 404) and set(answer.json()) == {"code", "message"}, (bad, answer.text)
    assert len(http.get(path).json()["opt_outs"]) == 2  # nothing refused was written


def test_master_and_reseller_tokens_reach_the_accounts_below_them(db: Database, server: Server) -> None:
    from pigeon.accounts.service import create_account

    def account(**kw: object) -> int:
        with db.write() as session:
            return create_account(session, f"t-{uuid.uuid4().hex[:10]}@example.com", **kw).user.account_id

    master, reseller = account(master=True), account()
    customer, sibling = account(parent_id=reseller), account()
    grandchild = account(parent_id=customer)
    with db.write() as session:
        numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=customer)

    def reach(actor: int, target: int, *scopes: str) -> int:
        return api(server, token_for(server, db, actor, *scopes)).get(
            f"/v2/accounts/{target}/number_management/numbers").status_code

    assert reach(master, customer) == 200 and reach(master, sibling) == 200
    assert reach(reseller, customer) == 200 and reach(reseller, grandchild) == 200
    assert reach(reseller, sibling) == 403 and reach(customer, reseller) == 403 and reach(master, 2**31 - 1) == 403
    assert reach(reseller, customer, "number_management_numbers:read") == 403  # its own account only
    listed = api(server, token_for(server, db, reseller)).get(f"/v2/accounts/{customer}/number_management/numbers")
    assert len(listed.json()["numbers"]) == 1
    with pytest.raises(NotFound, match="No account"), db.write() as session:
        create_account(session, f"t-{uuid.uuid4().hex[:10]}@example.com", parent_id=2**31 - 1)
