"""Numbers administration in the Number Management API, over real HTTP on both databases:
allocation (products switched, the operator's pool taken from and returned to, all or nothing),
the number plan, SIP trunks and groups from the configuration, BYOC numbers, and port-in orders
made on the command line and read through the API."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from test_smpp_e2e import SmscProcess
from test_zoom_numbers import account_of, api, fresh, token_for

from conftest import Server, User, free_port, make_user, own_database, url_of
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import create_account
from pigeon.db import Database
from pigeon.numbers import porting
from pigeon.numbers import service as numbers
from pigeon.numbers.models import Kind, PhoneNumber, PortOrder, Source, State

READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"
BASE = "/v2/accounts/me/number_management"


def new_account(db: Database, **kw: object) -> int:
    with db.write() as session:
        return create_account(session, f"a-{uuid.uuid4().hex[:10]}@example.com", **kw).user.account_id  # type: ignore[arg-type]


def add(db: Database, account: int | None, *, kind: Kind = Kind.LOCAL, **columns: object) -> str:
    with db.write() as session:
        row = numbers.add(session, numbers.Spec(fresh(), kind), "US", account_id=account)
        for name, value in columns.items():
            setattr(row, name, value)
        return row.id


def row_of(db: Database, number_id: str) -> PhoneNumber | None:
    with db.read() as session:
        row = numbers.get(session, number_id)
        if row is not None:
            session.expunge(row)
        return row


def allocate(http: httpx.Client, account: int | str, ids: list[str], product: str | None) -> httpx.Response:
    body: dict[str, object] = {"numbers": ids}
    if product is not None:
        body["allocated_product"] = product
    return http.patch(f"/v2/accounts/{account}/number_management/allocation", json=body)


# --- allocation ---------------------------------------------------------------------------------------------------


def test_an_account_switches_its_own_numbers_products(db: Database, server: Server, user: User, other: User) -> None:
    account = account_of(db, user)
    mine, pooled = add(db, account), add(db, None)
    theirs = add(db, account_of(db, other))
    http = api(server, token_for(server, db, account))
    assert row_of(db, mine).product == "UNALLOCATED"  # type: ignore[union-attr]
    switched = allocate(http, "me", [mine], "ZOOM_CONTACT_CENTER")
    assert switched.status_code == 204, switched.text
    got = http.get(f"{BASE}/numbers/{mine}").json()
    assert got["allocated_product"] == "ZOOM_CONTACT_CENTER"
    assert allocate(http, account, [mine, mine], "ZOOM_PHONE").status_code == 204
    assert http.get(f"{BASE}/numbers/{mine}").json()["allocated_product"] == "ZOOM_PHONE"
    for ids in ([mine, pooled], [mine, theirs], [mine, "no-such-number"], [mine, "a\x00b"]):
        refused = allocate(http, "me", ids, "ZOOM_CONTACT_CENTER")  # a non-master account never takes from the pool
        assert refused.status_code == 400 and refused.json()["code"] == 100002, refused.text
        assert ids[1].replace("\x00", "") in refused.json()["message"].replace("\x00", "") and mine not in refused.json()["message"]
        assert row_of(db, mine).product == "ZOOM_PHONE"  # type: ignore[union-attr]  # all or nothing
    assert row_of(db, pooled).account_id is None and row_of(db, theirs).product == "UNALLOCATED"  # type: ignore[union-attr]
    back = allocate(http, "me", [mine], "UNALLOCATED")
    assert back.status_code == 403 and back.json()["code"] == 200  # only the operator returns numbers to the pool
    assert row_of(db, mine).account_id == account  # type: ignore[union-attr]
    for body in ({"numbers": [], "allocated_product": "ZOOM_PHONE"}, {"numbers": [mine]},
                 {"numbers": [mine], "allocated_product": "ZOOM_RADIO"}, {"numbers": [mine], "allocated_product": ""},
                 {"numbers": [f"n{i}" for i in range(11)], "allocated_product": "ZOOM_PHONE"},
                 {"numbers": "x", "allocated_product": "ZOOM_PHONE"}, {"numbers": [3], "allocated_product": "ZOOM_PHONE"}):
        answer = http.patch(f"{BASE}/allocation", json=body)
        assert answer.status_code == 400 and answer.json()["code"] == 999, (body, answer.text)
    assert http.patch(f"{BASE}/allocation").status_code == 400
    assert allocate(http, account_of(db, other), [theirs], "ZOOM_PHONE").json()["code"] == 200  # another account
    reader = api(server, token_for(server, db, account, READ))
    assert allocate(reader, "me", [mine], "ZOOM_PHONE").status_code == 403
    granular = api(server, token_for(server, db, account, "number_management:write:numbers"))  # own-account form
    assert allocate(granular, "me", [mine], "ZOOM_CONTACT_CENTER").status_code == 204


def test_the_operator_takes_from_the_pool_and_returns_to_it(db: Database, server: Server) -> None:
    master, reseller = new_account(db, master=True), new_account(db)
    customer, stranger = new_account(db, parent_id=reseller), new_account(db)
    pool = [add(db, None), add(db, None), add(db, None)]
    with db.read() as session:
        user_id = session.scalar(select(UserRow.id).where(UserRow.account_id == customer))
    owned = add(db, customer, user_id=user_id, is_default=True, consent_policy_id="CP-1", campaign_id="CMP-1",
                product="ZOOM_PHONE")
    strangers = add(db, stranger)
    operator = api(server, token_for(server, db, master))
    taken = allocate(operator, customer, pool[:2], "ZOOM_CONTACT_CENTER")
    assert taken.status_code == 204, taken.text
    listed = api(server, token_for(server, db, customer)).get(f"{BASE}/numbers").json()["numbers"]
    assert {n["id"]: n["allocated_product"] for n in listed} == {
        pool[0]: "ZOOM_CONTACT_CENTER", pool[1]: "ZOOM_CONTACT_CENTER", owned: "ZOOM_PHONE"}
    customers = api(server, token_for(server, db, customer))
    for product, expected in (("ZOOM_CONTACT_CENTER", {pool[0], pool[1]}), ("ZOOM_PHONE", {owned}), ("UNALLOCATED", set())):
        shown = customers.get(f"{BASE}/numbers", params={"allocated_product": product}).json()["numbers"]
        assert {n["id"] for n in shown} == expected, product  # listPhoneNumbers' filter
    partly = allocate(operator, customer, [pool[2], strangers], "ZOOM_PHONE")
    assert partly.status_code == 400 and partly.json()["code"] == 100002 and strangers in partly.json()["message"]
    assert row_of(db, pool[2]).account_id is None  # type: ignore[union-attr]
    not_theirs = allocate(operator, customer, [owned, pool[2]], "UNALLOCATED")  # the pool's is not the customer's
    assert not_theirs.status_code == 400 and not_theirs.json()["code"] == 100002
    assert row_of(db, owned).account_id == customer  # type: ignore[union-attr]
    # a reseller (not the operator) reaches its customer, but never the pool
    from_reseller = allocate(api(server, token_for(server, db, reseller)), customer, [pool[2]], "ZOOM_PHONE")
    assert from_reseller.status_code == 400 and from_reseller.json()["code"] == 100002
    assert allocate(api(server, token_for(server, db, reseller)), customer, [owned], "UNALLOCATED").status_code == 403
    returned = allocate(operator, customer, [owned, pool[0]], "UNALLOCATED")
    assert returned.status_code == 204, returned.text
    for number_id in (owned, pool[0]):
        row = row_of(db, number_id)
        assert row is not None and row.account_id is None and row.product == "UNALLOCATED"
        assert (row.user_id, row.is_default, row.consent_policy_id, row.campaign_id) == (None, False, None, None)
    pending = add(db, customer, state=State.PENDING.value, source=Source.PORTED.value)
    stuck = allocate(operator, customer, [pending], "UNALLOCATED")
    assert stuck.status_code == 400 and stuck.json()["code"] == 200002, stuck.text
    granular = api(server, token_for(server, db, master, "number_management:write:numbers:master"))
    assert allocate(granular, customer, [pool[2]], "ZOOM_PHONE").status_code == 204
    assert row_of(db, pool[2]).account_id == customer  # type: ignore[union-attr]
    own_only = api(server, token_for(server, db, master, "number_management_numbers:write"))
    assert allocate(own_only, customer, [pool[1]], "ZOOM_PHONE").status_code == 403  # another account: :master only


def numbers_cli(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pigeon", "numbers", *args], env=server.env,
                          cwd=server.workdir, capture_output=True, text=True, timeout=60)


def refused_line(done: subprocess.CompletedProcess, *words: str) -> None:
    """The command failed with one ``Error:`` line holding ``words``, and no traceback."""
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert all(word in lines[0] for word in words), (words, done.stderr)


def number_of(db: Database, number_id: str) -> str:
    found = row_of(db, number_id)
    assert found is not None
    return found.number


def test_the_command_line_moves_numbers_under_allocations_rules(db: Database, server: Server) -> None:
    """The operator's trial: ``pigeon numbers allocate`` moved a pending ported number to another
    account (its order then reported success with none active), and a peering number to the pool
    and on to another account. The operator moves numbers between any accounts, but a pending,
    peering or BYOC number stays in its account; nothing changes when refused."""
    first, second = new_account(db), new_account(db)
    ordered = numbers_cli(server, "port", "create", "--account", str(first), "--numbers", fresh())
    assert ordered.returncode == 0, ordered.stderr
    order_id = ordered.stdout.strip()
    with db.read() as session:
        order = session.get(PortOrder, order_id)
        ported = json.loads(order.numbers)[0]  # type: ignore[union-attr]
        ported_id = numbers.find(session, ported).id  # type: ignore[union-attr]
    refused_line(numbers_cli(server, "allocate", ported, "--account", str(second)), ported, "pending (being ported)",
                 f"account {first}")
    refused_line(numbers_cli(server, "allocate", ported), ported, "pending")
    still = row_of(db, ported_id)
    assert still is not None and (still.account_id, still.state) == (first, State.PENDING.value)
    same = numbers_cli(server, "allocate", ported, "--account", str(first), "--product", "ZOOM_CONTACT_CENTER")
    assert same.returncode == 0, same.stderr  # its product, in its own account, may change
    done = numbers_cli(server, "port", "status", order_id, "Successfully")
    assert done.returncode == 0 and done.stdout.strip() == f"{order_id}: Successfully, 1 number(s) active", done.stdout
    moved = numbers_cli(server, "allocate", ported, "--account", str(second))  # active now: the operator's to move
    assert moved.returncode == 0, moved.stderr
    assert row_of(db, ported_id).account_id == second  # type: ignore[union-attr]

    peering = add(db, first, source=Source.PEERING.value, carrier="peer", product="ZOOM_PHONE")
    for args in ((), ("--account", str(second))):
        refused_line(numbers_cli(server, "allocate", number_of(db, peering), *args), "peering number",
                     "its carrier put it in", f"account {first}")
    kept = row_of(db, peering)
    assert kept is not None and (kept.account_id, kept.product) == (first, "ZOOM_PHONE")
    operator = api(server, token_for(server, db, new_account(db, master=True)))
    for state, source in ((State.PENDING.value, Source.PORTED.value), (State.ACTIVE.value, Source.PEERING.value)):
        astray = add(db, None, state=state, source=source)  # in the pool, as the command line left them before
        stuck = allocate(operator, second, [astray], "ZOOM_PHONE")
        assert stuck.status_code == 400 and stuck.json()["code"] == 200002, stuck.text
        assert row_of(db, astray).account_id is None  # type: ignore[union-attr]
        refused_line(numbers_cli(server, "allocate", number_of(db, astray), "--account", str(second)), "the pool")

    plain = add(db, first, user_id=None)
    across = numbers_cli(server, "allocate", number_of(db, plain), "--account", str(second), "--product", "ZOOM_PHONE")
    assert across.returncode == 0, across.stderr  # any other number goes anywhere
    assert (row_of(db, plain).account_id, row_of(db, plain).product) == (second, "ZOOM_PHONE")  # type: ignore[union-attr]
    pooled = numbers_cli(server, "allocate", number_of(db, plain))
    assert pooled.returncode == 0 and row_of(db, plain).account_id is None  # type: ignore[union-attr]
    refused_line(numbers_cli(server, "allocate", number_of(db, plain), "--account", "999999999"), "No account 999999999")


# --- the plan -----------------------------------------------------------------------------------------------------


def test_the_number_plan(db: Database, server: Server, user: User) -> None:
    account = account_of(db, user)
    user_id = user.user_id
    for kind, product, assigned in ((Kind.LOCAL, "ZOOM_PHONE", True), (Kind.LOCAL, "ZOOM_PHONE", False),
                                    (Kind.LOCAL, "ZOOM_PHONE", False), (Kind.TOLL_FREE, "ZOOM_PHONE", True),
                                    (Kind.MOBILE, "ZOOM_PHONE", False), (Kind.LOCAL, "ZOOM_CONTACT_CENTER", False),
                                    (Kind.LOCAL, "UNALLOCATED", False)):
        add(db, account, kind=kind, product=product, user_id=user_id if assigned else None)
    http = api(server, token_for(server, db, account, READ))
    plans, token = [], None
    while True:
        page = http.get(f"{BASE}/plan", params={"product": "ZOOM_PHONE", "page_size": 2,
                                                **({"next_page_token": token} if token else {})})
        assert page.status_code == 200 and page.json()["page_size"] == 2, page.text
        plans += page.json()["plans"]
        token = page.json()["next_page_token"]
        if not token:
            break
    assert sorted(plans, key=lambda p: p["name"]) == [
        {"name": "Local numbers", "subscribed": 3, "assigned": 1, "available": 2, "is_unlimited": False},
        {"name": "Mobile numbers", "subscribed": 1, "assigned": 0, "available": 1, "is_unlimited": False},
        {"name": "Toll-free numbers", "subscribed": 1, "assigned": 1, "available": 0, "is_unlimited": False}]
    contact = http.get(f"{BASE}/plan", params={"product": "ZOOM_CONTACT_CENTER"}).json()
    assert contact["plans"] == [{"name": "Local numbers", "subscribed": 1, "assigned": 0, "available": 1,
                                 "is_unlimited": False}] and contact["next_page_token"] == ""
    for params, code in (({}, 1002006), ({"product": ""}, 1002006), ({"product": "UNALLOCATED"}, 999),
                         ({"product": "ZOOM_PHONE", "next_page_token": "forged"}, 1003100),
                         ({"product": "ZOOM_PHONE", "page_size": 201}, None)):
        answer = http.get(f"{BASE}/plan", params=params)
        assert answer.status_code == 400 and (code is None or answer.json()["code"] == code), (params, answer.text)
    borrowed = http.get(f"{BASE}/plan", params={"product": "ZOOM_PHONE", "page_size": 1}).json()["next_page_token"]
    wrong_list = http.get(f"{BASE}/plan", params={"product": "ZOOM_CONTACT_CENTER", "next_page_token": borrowed})
    assert wrong_list.status_code == 400 and wrong_list.json()["code"] == 1003100
    granular = api(server, token_for(server, db, account, "number_management:read:numbers_plan"))
    assert granular.get(f"{BASE}/plan", params={"product": "ZOOM_PHONE"}).status_code == 200
    writer_only = api(server, token_for(server, db, account, "number_management:write:numbers"))
    assert writer_only.get(f"{BASE}/plan", params={"product": "ZOOM_PHONE"}).status_code == 403
    other = new_account(db)
    elsewhere = api(server, token_for(server, db, account)).get(
        f"/v2/accounts/{other}/number_management/plan", params={"product": "ZOOM_PHONE"})
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == 200


# --- SIP trunks and groups, BYOC numbers ------------------------------------------------------------------------

SIP_CONFIG = """
[[carriers]]
name = "byoc-carrier"
url = "smpp://byoc:secret@127.0.0.1:{port}"

[[sip_trunks]]
id = "trunk-common"
name = "Common trunk"
carrier = "byoc-carrier"
carrier_account = "ACME-1"
region = "us-east"
sbc_label = "sbc1"

[[sip_trunks]]
id = "trunk-phone"
name = "Phone trunk"
source_system = "ZOOM_PHONE"

[[sip_trunks]]
id = "trunk-private"
name = "Private trunk"
accounts = [{private}]

[[sip_groups]]
id = "group-a"
display_name = "Group A"
description = "The common group"
trunk = "trunk-common"

[[sip_groups]]
id = "group-b"
display_name = "Group B"
trunk = "trunk-phone"
source_system = "ZOOM_PHONE"
send_sip_group_name = true

[[sip_groups]]
id = "group-c"
display_name = "Group C"
trunk = "trunk-common"
source_system = "ZOOM_CONTACT_CENTER"

[[sip_groups]]
id = "group-private"
display_name = "Private group"
trunk = "trunk-private"
"""


@pytest.fixture(scope="module")
def sip_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Database, int]]:
    """A server with SIP trunks and groups configured, on a database of its own (its carrier is
    down: it must claim no other test's messages); (it, its database, the account only the
    private trunk serves)."""
    tmp_path = tmp_path_factory.mktemp("sip")
    with own_database(database_url, tmp_path) as db:
        private = new_account(db)
        (tmp_path / "pigeon.toml").write_text(SIP_CONFIG.format(port=free_port(), private=private))
        srv = Server(url_of(db), tmp_path, extra_env={"PIGEON_CONFIG": str(tmp_path / "pigeon.toml")}).start()
        try:
            yield srv, db, private
        finally:
            srv.stop()


def test_sip_trunks_and_groups_an_account_may_use(sip_server: tuple[Server, Database, int]) -> None:
    server, db, private = sip_server
    user = make_user(db, server)
    http = api(server, token_for(server, db, account_of(db, user), READ))

    def walk(path: str, product: str, key: str, size: int = 1) -> list[dict]:
        seen, token, total = [], None, None
        while True:
            page = http.get(f"{BASE}/{path}", params={"allocated_product": product, "page_size": size,
                                                      **({"next_page_token": token} if token else {})})
            assert page.status_code == 200, page.text
            seen += page.json()[key]
            total = page.json()["total_records"]
            token = page.json()["next_page_token"]
            if not token:
                assert total == len(seen)
                return seen

    trunks = walk("sip_trunks", "ZOOM_PHONE", "byoc_sip_trunk")
    assert trunks == [{"sip_trunk_id": "trunk-common", "name": "Common trunk", "source_system": "COMMON",
                       "carrier": "byoc-carrier", "carrier_account": "ACME-1", "region": "us-east", "sbc_label": "sbc1"},
                      {"sip_trunk_id": "trunk-phone", "name": "Phone trunk", "source_system": "ZOOM_PHONE"}]
    assert [t["sip_trunk_id"] for t in walk("sip_trunks", "ZOOM_CONTACT_CENTER", "byoc_sip_trunk")] == ["trunk-common"]
    groups = walk("sip_groups", "ZOOM_PHONE", "sip_groups")
    assert [g["sip_group_id"] for g in groups] == ["group-a", "group-b"]
    assert groups[0] == {"sip_group_id": "group-a", "display_name": "Group A", "description": "The common group",
                         "send_sip_group_name": False, "source_system": "COMMON",
                         "sip_trunk": {"sip_trunk_id": "trunk-common", "name": "Common trunk", "type": "BYOC"}}
    assert [g["sip_group_id"] for g in walk("sip_groups", "ZOOM_CONTACT_CENTER", "sip_groups", 5)] == [
        "group-a", "group-c"]
    theirs = api(server, token_for(server, db, private, READ))
    assert [g["sip_group_id"] for g in theirs.get(f"{BASE}/sip_groups", params={
        "allocated_product": "ZOOM_PHONE"}).json()["sip_groups"]] == ["group-a", "group-b", "group-private"]
    for path in ("sip_groups", "sip_trunks"):
        for params, code in (({}, 1002006), ({"allocated_product": ""}, 1002006),
                             ({"allocated_product": "COMMON"}, 999), ({"allocated_product": "ZOOM_PHONE",
                                                                      "next_page_token": "nope"}, 1003100)):
            answer = http.get(f"{BASE}/{path}", params=params)
            assert answer.status_code == 400 and answer.json()["code"] == code, (path, params, answer.text)
        granular = api(server, token_for(server, db, account_of(db, user), f"number_management:read:list_{path}"))
        assert granular.get(f"{BASE}/{path}", params={"allocated_product": "ZOOM_PHONE"}).status_code == 200
        assert api(server, token_for(server, db, account_of(db, user), "number_management:read:numbers")).get(
            f"{BASE}/{path}", params={"allocated_product": "ZOOM_PHONE"}).status_code == 403
    token = http.get(f"{BASE}/sip_groups", params={"allocated_product": "ZOOM_PHONE", "page_size": 1}).json()[
        "next_page_token"]
    borrowed = http.get(f"{BASE}/sip_trunks", params={"allocated_product": "ZOOM_PHONE", "next_page_token": token})
    assert borrowed.status_code == 400 and borrowed.json()["code"] == 1003100


def test_byoc_numbers_all_or_nothing(sip_server: tuple[Server, Database, int]) -> None:
    server, db, private = sip_server
    user, other = make_user(db, server), make_user(db, server)
    account = account_of(db, user)
    http = api(server, token_for(server, db, account))
    path = f"{BASE}/byoc_numbers"
    e164, local = fresh(), fresh()
    made = http.post(path, json={"allocated_product": "ZOOM_CONTACT_CENTER", "phone_numbers": [e164, local[2:], e164],
                                 "country_iso": "us", "sip_group_id": "group-a", "site_id": "ignored"})
    assert made.status_code == 201, made.text
    listed = {n["number"]: n for n in http.get(f"{BASE}/numbers").json()["numbers"]}
    assert set(listed) == {e164, local}
    assert listed[e164]["source"] == "BYOCCloud" and listed[e164]["allocated_product"] == "ZOOM_CONTACT_CENTER"
    assert listed[e164]["sip_group"] == {"id": "group-a", "name": "Group A"}
    assert http.get(f"{BASE}/numbers/{listed[local]['id']}").json()["sip_group"]["name"] == "Group A"
    with db.read() as session:
        row = numbers.find(session, e164)
        assert (row.carrier, row.sip_group_id, row.account_id, row.source, row.state) == (  # type: ignore[union-attr]
            "byoc-carrier", "group-a", account, "byoc", "active")
    # a phone number without a group: no carrier of its own (the router decides)
    bare = fresh()
    assert http.post(path, json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [bare]}).status_code == 201
    with db.read() as session:
        row = numbers.find(session, bare)
        assert row is not None and row.carrier is None and row.sip_group_id is None and row.product == "ZOOM_PHONE"
    # all or nothing: one 400, code 1000, listing each refused number and why
    theirs, new = fresh(), fresh()
    add_theirs = api(server, token_for(server, db, account_of(db, other))).post(
        path, json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [theirs], "sip_group_id": "group-b"})
    assert add_theirs.status_code == 201
    failed = http.post(path, json={"allocated_product": "ZOOM_PHONE", "sip_group_id": "group-b",
                                   "phone_numbers": [new, "+1999", theirs, "4155550100"]})
    assert failed.status_code == 400 and failed.json()["code"] == 1000, failed.text
    items = json.loads(failed.json()["message"])
    assert {i["phoneNumber"]: i["reason"].split(":")[0] for i in items} == {
        "+1999": "Phone Number format invalid", theirs: "Phone Number already exists",
        "4155550100": "Phone Number format invalid"}  # a local number needs country_iso
    with db.read() as session:
        assert numbers.find(session, new) is None
    for body, code in (
        ({"allocated_product": "ZOOM_PHONE", "phone_numbers": [new], "sip_group_id": "group-c"}, 100001),  # other product
        ({"allocated_product": "ZOOM_PHONE", "phone_numbers": [new], "sip_group_id": "group-private"}, 100001),
        ({"allocated_product": "ZOOM_PHONE", "phone_numbers": [new], "sip_group_id": "nope"}, 100001),
        ({"allocated_product": "ZOOM_CONTACT_CENTER", "phone_numbers": [new]}, 999),  # its group is required
        ({"allocated_product": "ZOOM_PHONE", "phone_numbers": [new], "enable_pci_pal": True}, 200005),
        ({"allocated_product": "ZOOM_PHONE", "phone_numbers": [fresh() for _ in range(101)]}, 1003001),
        ({"allocated_product": "ZOOM_PHONE", "phone_numbers": []}, 999),
        ({"phone_numbers": [new]}, 999), ({"allocated_product": "UNALLOCATED", "phone_numbers": [new]}, 999),
        ({"allocated_product": "ZOOM_PHONE", "phone_numbers": [new], "country_iso": "XX"}, 999),
        ({"allocated_product": "ZOOM_PHONE", "phone_numbers": [7]}, 999),
    ):
        answer = http.post(path, json=body)
        assert answer.status_code == 400 and answer.json()["code"] == code, (body, answer.text)
    with db.read() as session:
        assert numbers.find(session, new) is None
    # a BYOC number switches only to a product its group serves
    phone_only = fresh()
    assert http.post(path, json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [phone_only],
                                 "sip_group_id": "group-b"}).status_code == 201
    ids = {n["number"]: n["id"] for n in http.get(f"{BASE}/numbers", params={"page_size": 100}).json()["numbers"]}
    assert allocate(http, "me", [ids[e164]], "ZOOM_PHONE").status_code == 204  # group-a serves both
    stuck = allocate(http, "me", [ids[e164], ids[phone_only]], "ZOOM_CONTACT_CENTER")
    assert stuck.status_code == 400 and stuck.json()["code"] == 200002 and phone_only in stuck.json()["message"]
    assert http.get(f"{BASE}/numbers/{ids[e164]}").json()["allocated_product"] == "ZOOM_PHONE"
    master = api(server, token_for(server, db, new_account(db, master=True)))
    kept = allocate(master, account, [ids[e164]], "UNALLOCATED")  # its account's own carrier's: never pooled
    assert kept.status_code == 400 and kept.json()["code"] == 200002
    private_http = api(server, token_for(server, db, private))
    assert private_http.post(path, json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [new],
                                         "sip_group_id": "group-private"}).status_code == 201
    reader = api(server, token_for(server, db, account, READ))
    assert reader.post(path, json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [fresh()]}).status_code == 403
    granular = api(server, token_for(server, db, account, "number_management:write:byoc_numbers"))
    assert granular.post(path, json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [fresh()]}).status_code == 201
    elsewhere = http.post(f"/v2/accounts/{account_of(db, other)}/number_management/byoc_numbers",
                          json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [fresh()]})
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == 200


def test_a_byoc_number_on_the_command_line(sip_server: tuple[Server, Database, int]) -> None:
    """The operator's trial: a BYOC number whose group serves only ZOOM_CONTACT_CENTER was switched
    to ZOOM_PHONE and moved on the command line (AllocateNumber answers 200002 for this). It
    stays in its account, and switches only to a product its group serves."""
    server, db, private = sip_server
    owner, elsewhere = new_account(db), new_account(db)
    http = api(server, token_for(server, db, owner))
    contact_only, common = fresh(), fresh()
    for number, group in ((contact_only, "group-c"), (common, "group-a")):
        made = http.post(f"{BASE}/byoc_numbers", json={"allocated_product": "ZOOM_CONTACT_CENTER",
                                                       "phone_numbers": [number], "sip_group_id": group})
        assert made.status_code == 201, made.text
    refused_line(numbers_cli(server, "allocate", contact_only, "--account", str(owner), "--product", "ZOOM_PHONE"),
                 contact_only, "SIP group", "does not serve ZOOM_PHONE")
    for args in (("--account", str(elsewhere), "--product", "ZOOM_PHONE"),
                 ("--account", str(elsewhere), "--product", "ZOOM_CONTACT_CENTER"), ()):
        refused_line(numbers_cli(server, "allocate", contact_only, *args), "BYOC number", f"account {owner}")
    with db.read() as session:
        row = numbers.find(session, contact_only)
        assert row is not None and (row.account_id, row.product, row.sip_group_id) == (
            owner, "ZOOM_CONTACT_CENTER", "group-c")
    assert numbers_cli(server, "allocate", contact_only, "--account", str(owner)).returncode == 0  # no change asked
    switched = numbers_cli(server, "allocate", common, "--account", str(owner), "--product", "ZOOM_PHONE")
    assert switched.returncode == 0, switched.stderr  # group-a serves both
    with db.read() as session:
        assert numbers.find(session, common).product == "ZOOM_PHONE"  # type: ignore[union-attr]
    assert allocate(http, "me", [numbers_id(db, contact_only)], "ZOOM_PHONE").json()["code"] == 200002  # the same rule


def numbers_id(db: Database, number: str) -> str:
    with db.read() as session:
        return numbers.find(session, number).id  # type: ignore[union-attr]


def test_byoc_is_not_enabled_without_sip_groups(db: Database, server: Server, user: User) -> None:
    http = api(server, token_for(server, db, account_of(db, user)))
    answer = http.post(f"{BASE}/byoc_numbers", json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [fresh()]})
    assert answer.status_code == 400 and answer.json()["code"] == 1004
    listed = http.get(f"{BASE}/sip_groups", params={"allocated_product": "ZOOM_PHONE"}).json()
    assert listed == {"next_page_token": "", "total_records": 0, "sip_groups": []}


# --- port-in orders -----------------------------------------------------------------------------------------------


def pigeon(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pigeon", "numbers", "port", *args], env=server.env,
                          cwd=server.workdir, capture_output=True, text=True, timeout=60)


def test_port_orders_on_the_command_line_and_through_the_api(db: Database, server: Server, user: User,
                                                             other: User) -> None:
    account = account_of(db, user)
    temporary = add(db, account, user_id=user.user_id, is_default=True, consent_policy_id="CP-9")
    with db.read() as session:
        temporary_number = numbers.get(session, temporary).number  # type: ignore[union-attr]
    first, second, third = fresh(), fresh(), fresh()
    made = pigeon(server, "create", "--account", str(account), "--numbers", f"{first}, {second}",
                  "--replace", f"{first}={temporary_number}", "--contact-emails", "it@example.com",
                  "--contact-number", "2058945753", "--isp", "Old Telco", "--printed-name", "Jiang",
                  "--billing", "company=zm", "--billing", "address.city=San Jose", "--billing", "pin=1234")
    assert made.returncode == 0, made.stderr
    order_id = made.stdout.strip()
    assert order_id.isdigit() and len(order_id) == 19
    http = api(server, token_for(server, db, account, READ))
    listed = {n["number"]: n for n in http.get(f"{BASE}/numbers").json()["numbers"]}
    assert listed[first]["status"] == "Pending" and listed[first]["source"] == "ZoomPorted"
    assert listed[first]["allocated_product"] == "ZOOM_PHONE"
    with db.read() as session:
        senders = numbers.senders(session, account, {first})
        assert first not in senders.usable  # pending: it does not send
        assert numbers.owner_of(session, first, "US") is None  # nor receive
    got = http.get(f"{BASE}/ported_numbers/orders/{order_id}")
    assert got.status_code == 200, got.text
    assert got.json() == {
        "order_id": order_id, "numbers": [first, second], "status": "Not_Submitted",
        "replacing_numbers": [{"source_number": first, "target_number": temporary_number}],
        "contact_emails": "it@example.com", "contact_number": "2058945753", "isp": "Old Telco", "printed_name": "Jiang",
        "original_billing_info": {"company": "zm", "pin": "1234", "address": {"city": "San Jose"}}}
    # refusals on the command line: a number Pigeon has, a replaced number not the account's, bad details
    theirs_number = fresh()
    with db.write() as session:
        numbers.add(session, numbers.Spec(theirs_number), "US", account_id=account_of(db, other))
    for args in (["--numbers", first], ["--numbers", theirs_number], ["--numbers", third, "--replace",
                                                                      f"{third}={theirs_number}"],
                 ["--numbers", third, "--replace", f"{fresh()}={temporary_number}"],
                 ["--numbers", third, "--billing", "shoe_size=9"], ["--numbers", "12"],
                 ["--numbers", third, "--replace", "nonsense"]):
        refused = pigeon(server, "create", "--account", str(account), *args)
        assert refused.returncode in (1, 2) and "Error" in refused.stderr and "Traceback" not in refused.stderr, (
            args, refused.stderr)
    with db.read() as session:
        assert numbers.find(session, third) is None
    assert pigeon(server, "create", "--account", "999999999", "--numbers", third).returncode == 1
    # a second order, canceled: its numbers go
    other_order = pigeon(server, "create", "--account", str(account), "--numbers", third).stdout.strip()
    walked, token = [], None
    while True:
        page = http.get(f"{BASE}/ported_numbers/orders", params={"page_size": 1, **(
            {"next_page_token": token} if token else {})})
        assert page.status_code == 200 and page.json()["total_records"] == 2, page.text
        walked += page.json()["ported_numbers"]
        token = page.json()["next_page_token"]
        if not token:
            break
    assert [o["order_id"] for o in walked] == sorted([order_id, other_order])
    assert walked[0]["numbers"] and "isp" not in walked[0] and "submission_date_time" not in walked[0]
    canceled = pigeon(server, "status", other_order, "canceled")
    assert canceled.returncode == 0 and "1 number(s) removed" in canceled.stdout, canceled.stderr
    with db.read() as session:
        assert numbers.find(session, third) is None
    assert pigeon(server, "status", other_order, "Waiting").returncode == 1  # final
    # the first succeeds: its numbers become active, and the first takes the temporary number's place
    assert pigeon(server, "status", order_id, "Waiting").returncode == 0
    waiting = http.get(f"{BASE}/ported_numbers/orders/{order_id}").json()
    assert waiting["status"] == "Waiting" and waiting["submission_date_time"].endswith("Z")
    done = pigeon(server, "status", order_id, "Successfully")
    assert done.returncode == 0 and "2 number(s) active" in done.stdout, done.stderr
    with db.read() as session:
        ported, old = numbers.find(session, first), numbers.get(session, temporary)
        assert ported is not None and old is not None
        assert (ported.state, ported.user_id, ported.is_default, ported.consent_policy_id) == (
            "active", user.user_id, True, "CP-9")
        assert (old.user_id, old.is_default, old.consent_policy_id) == (None, False, None)
        assert numbers.owner_of(session, second, "US") is not None
        assert numbers.senders(session, account, {first}).default == first
    listed_cli = pigeon(server, "list", "--account", str(account))
    assert order_id in listed_cli.stdout and "Successfully" in listed_cli.stdout and "Canceled" in listed_cli.stdout
    assert pigeon(server, "status", "no-such-order", "Waiting").returncode == 1
    assert pigeon(server, "status", order_id, "Exploded").returncode == 2
    # tenancy, scopes, unknown orders
    theirs = api(server, token_for(server, db, account_of(db, other), READ))
    for missing in (order_id, "1234", "a%00b"):
        hidden = theirs.get(f"{BASE}/ported_numbers/orders/{missing}")
        assert hidden.status_code == 400 and hidden.json() == {"code": 400, "message": "Port in order does not exist"}
    assert theirs.get(f"{BASE}/ported_numbers/orders").json()["ported_numbers"] == []
    assert api(server, token_for(server, db, account, "number_management:read:ported_number")).get(
        f"{BASE}/ported_numbers/orders/{order_id}").status_code == 200
    assert api(server, token_for(server, db, account, "number_management:read:list_ported_numbers")).get(
        f"{BASE}/ported_numbers/orders").status_code == 200
    assert api(server, token_for(server, db, account, "number_management:read:list_ported_numbers")).get(
        f"{BASE}/ported_numbers/orders/{order_id}").status_code == 403
    assert http.get(f"/v2/accounts/{account_of(db, other)}/number_management/ported_numbers/orders").status_code == 403
    assert http.get(f"{BASE}/ported_numbers/orders", params={"next_page_token": "x"}).json()["code"] == 1003100
    with db.read() as session:
        assert session.get(PortOrder, order_id).status == "Successfully"  # type: ignore[union-attr]
        assert [o.id for o in porting.orders(session, account)] == sorted([order_id, other_order])


def test_a_port_order_whose_numbers_left_it(db: Database, server: Server) -> None:
    """The operator's trial: a pending number deleted through ``DELETE numbers`` (or moved before
    pending numbers stayed put) left its order, which still went to Successfully. Successfully
    activates the numbers still pending in the order's account and names the others; it is
    refused while none is left, or while one it names is pending in another account."""
    account, elsewhere = new_account(db), new_account(db)
    http = api(server, token_for(server, db, account))
    kept, deleted = fresh(), fresh()
    order_id = pigeon(server, "create", "--account", str(account), "--numbers", f"{kept},{deleted}").stdout.strip()
    gone = http.delete(f"{BASE}/numbers", params={"numbers": numbers_id(db, deleted)})
    assert gone.status_code == 204, gone.text
    again = pigeon(server, "create", "--account", str(elsewhere), "--numbers", deleted)  # its open order names it
    refused_line(again, "Open port orders name these numbers already", deleted)
    waiting = pigeon(server, "status", order_id, "Waiting")
    assert waiting.stdout.strip() == f"{order_id}: Waiting; no longer in the order: {deleted} (deleted)", waiting
    done = pigeon(server, "status", order_id, "Successfully")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"{order_id}: Successfully, 1 number(s) active; no longer in the order: "
                                   f"{deleted} (deleted)")
    with db.read() as session:
        assert numbers.find(session, kept).state == State.ACTIVE.value  # type: ignore[union-attr]
        assert numbers.find(session, deleted) is None

    # every number deleted: it cannot succeed; canceled, it says so
    lone = fresh()
    empty = pigeon(server, "create", "--account", str(account), "--numbers", lone).stdout.strip()
    assert http.delete(f"{BASE}/numbers", params={"numbers": numbers_id(db, lone)}).status_code == 204
    refused_line(pigeon(server, "status", empty, "Successfully"), "cannot be Successfully", "none of its numbers",
                 f"{lone} (deleted)", "cancel it")
    with db.read() as session:
        assert session.get(PortOrder, empty).status == "Not_Submitted"  # type: ignore[union-attr]
    canceled = pigeon(server, "status", empty, "Canceled")
    assert canceled.stdout.strip() == f"{empty}: Canceled, 0 number(s) removed; no longer in the order: {lone} (deleted)"
    assert pigeon(server, "create", "--account", str(elsewhere), "--numbers", lone).returncode == 0  # final now

    # a number moved to another account while pending (before the rule): no success while it stays pending there
    home, astray = fresh(), fresh()
    moved = pigeon(server, "create", "--account", str(account), "--numbers", f"{home},{astray}").stdout.strip()
    with db.write() as session:
        numbers.allocate(session, [numbers.find(session, astray).id], elsewhere)  # type: ignore[union-attr]
    refused_line(pigeon(server, "status", moved, "Successfully"), "cannot be Successfully",
                 f"{astray} (pending in account {elsewhere})", "would stay pending", "pigeon numbers remove")
    with db.read() as session:
        assert session.get(PortOrder, moved).status == "Not_Submitted"  # type: ignore[union-attr]
        assert {numbers.find(session, n).state for n in (home, astray)} == {State.PENDING.value}  # type: ignore[union-attr]
    assert numbers_cli(server, "remove", astray).returncode == 0
    done = pigeon(server, "status", moved, "Successfully")
    assert done.stdout.strip() == (f"{moved}: Successfully, 1 number(s) active; no longer in the order: "
                                   f"{astray} (deleted)"), done.stderr
    with db.read() as session:
        assert numbers.find(session, home).state == State.ACTIVE.value  # type: ignore[union-attr]

    # Rejected removes only the numbers still pending in the order's account
    ours, theirs = fresh(), fresh()
    rejected = pigeon(server, "create", "--account", str(account), "--numbers", f"{ours},{theirs}").stdout.strip()
    with db.write() as session:
        numbers.allocate(session, [numbers.find(session, theirs).id], elsewhere)  # type: ignore[union-attr]
    out = pigeon(server, "status", rejected, "Rejected")
    assert out.stdout.strip() == (f"{rejected}: Rejected, 1 number(s) removed; no longer in the order: "
                                  f"{theirs} (pending in account {elsewhere})"), out.stderr
    with db.read() as session:
        assert numbers.find(session, ours) is None and numbers.find(session, theirs).account_id == elsewhere  # type: ignore[union-attr]


def test_a_byoc_numbers_messages_go_through_its_trunks_carrier(database_url: str, tmp_path: Path) -> None:
    """Two carriers that match every message: a message from a BYOC number goes through its
    trunk's carrier (the second one), any other through the first. On a database of its own:
    the shared server's simulator must not deliver them."""
    with own_database(database_url, tmp_path) as db:
        main, byoc = SmscProcess(tmp_path).start(), SmscProcess(tmp_path).start()
        (tmp_path / "pigeon.toml").write_text(
            f'[[carriers]]\nname = "main"\nurl = "{main.url}?reconnect_min=0.1"\n'
            f'[[carriers]]\nname = "trunk-carrier"\nurl = "{byoc.url}?reconnect_min=0.1"\n'
            '[[sip_trunks]]\nid = "t1"\nname = "Trunk"\ncarrier = "trunk-carrier"\n'
            '[[sip_groups]]\nid = "g1"\ndisplay_name = "Group"\ntrunk = "t1"\n')
        server = Server(url_of(db), tmp_path, extra_env={"PIGEON_CONFIG": str(tmp_path / "pigeon.toml")}).start()
        try:
            main.wait_bound()
            byoc.wait_bound()
            customer = make_user(db, server)
            account, own = account_of(db, customer), fresh()
            http = api(server, token_for(server, db, account))
            assert http.post(f"{BASE}/byoc_numbers", json={"allocated_product": "ZOOM_PHONE", "phone_numbers": [own],
                                                           "sip_group_id": "g1"}).status_code == 201
            with db.write() as session:
                numbers.make_default(session, numbers.find(session, own))  # type: ignore[arg-type]
            to_byoc, to_main = "+2782" + str(uuid.uuid4().int % 10**7).zfill(7), "+2783" + str(uuid.uuid4().int % 10**7).zfill(7)
            sent = customer.send(to_byoc, "over my own trunk").json()["messageId"]
            assert customer.wait_status(sent, "DELIVERED")["fromNumber"] == own
            plain = make_user(db, server)
            assert plain.wait_status(plain.send(to_main, "over the main carrier").json()["messageId"], "DELIVERED")
            assert [m["destination"] for m in byoc.messages()] == [to_byoc.removeprefix("+")]
            assert [m["destination"] for m in main.messages()] == [to_main.removeprefix("+")]
            customer.http.close()
            plain.http.close()
        finally:
            server.stop()
            main.stop()
            byoc.stop()
