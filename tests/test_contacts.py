"""/contacts and /groups, membership, and /sms/send-group; tenants kept apart, the SDK served."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree

import httpx
import pytest
from sqlalchemy import insert, select
from zoomconnect_sdk.client import Client

from conftest import API, Server, User, make_user
from pigeon.accounts.models import User as UserRow
from pigeon.contacts.models import Contact, GroupMember
from pigeon.db import Database, utcnow
from pigeon.db.races import lost_races
from pigeon.errors import Conflict, NotFound
from pigeon.ids import new_id


def create(user: User, number: str = "+27821234567", **fields: object) -> httpx.Response:
    return user.http.post(f"{API}/contacts/create", json={"contactNumber": number, **fields})


def contact_id(user: User, number: str = "+27821234567", **fields: object) -> str:
    response = create(user, number, **fields)
    assert response.status_code == 200, response.text
    return response.json()["contactId"]


def group_id(user: User, name: str) -> str:
    response = user.http.post(f"{API}/groups/create", json={"name": name})
    assert response.status_code == 200, response.text
    return response.json()["groupId"]


def members(user: User, group: str) -> list[str]:
    response = user.http.get(f"{API}/groups/{group}/contacts")
    assert response.status_code == 200, response.text
    return [c["contactNumber"] for c in response.json()["webServiceContacts"]]


def crowd(db: Database, user: User, name: str, size: int) -> str:
    """A group of ``size`` new contacts, written straight to the database (quicker than the API)."""
    gid = group_id(user, name)
    with db.write() as session:
        account_id = session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))
        ids, now = [new_id() for _ in range(size)], utcnow()
        session.execute(insert(Contact), [{"id": cid, "account_id": account_id, "user_id": user.user_id,
                                           "number": f"+2782{i:07d}", "created_at": now} for i, cid in enumerate(ids)])
        session.execute(insert(GroupMember), [{"group_id": gid, "contact_id": cid, "contact_created_at": now}
                                              for cid in ids])
    return gid


def error(response: httpx.Response, status: int, code: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert set(body) == {"code", "developerMessage", "message", "moreInfoUrl", "status"}
    return body


# -- contacts --------------------------------------------------------------------------------

def test_contact_lifecycle(user: User) -> None:
    made = create(user, "0821234567", firstName="Thandi", lastName="Nkosi", title="Dr", contactId="ignored",
                  links=None)
    assert made.status_code == 200, made.text
    contact = made.json()
    cid = contact["contactId"]
    assert cid != "ignored" and len(cid) == 24
    assert contact == {"contactId": cid, "title": "Dr", "firstName": "Thandi", "lastName": "Nkosi",
                       "contactNumber": "+27821234567", "links": []}
    assert user.http.get(f"{API}/contacts/{cid}").json() == contact

    updated = user.http.post(f"{API}/contacts/{cid}", json={"firstName": "Thandiwe", "lastName": None})
    assert updated.status_code == 200, updated.text
    assert updated.json() == {**contact, "firstName": "Thandiwe"}
    renumbered = user.http.post(f"{API}/contacts/{cid}", json={"contactNumber": "27821112222", "title": ""}).json()
    assert renumbered["contactNumber"] == "+27821112222" and renumbered["title"] is None
    assert user.http.post(f"{API}/contacts/{cid}", content=b"null",
                          headers={"Content-Type": "application/json"}).json() == renumbered

    deleted = user.http.delete(f"{API}/contacts/{cid}")
    assert deleted.status_code == 200 and deleted.content == b""
    error(user.http.get(f"{API}/contacts/{cid}"), 404, 7)
    error(user.http.delete(f"{API}/contacts/{cid}"), 404, 7)


@pytest.mark.parametrize("body", [{}, {"contactNumber": None}, {"contactNumber": ""}, {"contactNumber": "12"},
                                  {"contactNumber": "not a number"}, {"contactNumber": "+999123"}, None])
def test_a_missing_or_invalid_number_is_code_2(user: User, body: dict | None) -> None:
    error(user.http.post(f"{API}/contacts/create", json=body), 400, 2)
    assert user.http.get(f"{API}/contacts/all").json()["webServiceContacts"] == []


def test_bad_contact_input(user: User) -> None:
    cid = contact_id(user, "+27821234567")
    dup = error(create(user, "0821234567"), 409, 12)
    assert cid in dup["developerMessage"]
    other = contact_id(user, "+27821234568")
    error(user.http.post(f"{API}/contacts/{other}", json={"contactNumber": "27821234567"}), 409, 12)
    error(user.http.post(f"{API}/contacts/{other}", json={"contactNumber": "nope"}), 400, 2)
    error(create(user, "+27821234569", title="x" * 65), 400, 1)
    error(user.http.post(f"{API}/contacts/{other}", json={"firstName": "y" * 256}), 400, 1)
    error(user.http.post(f"{API}/contacts/create", json={"contactNumber": "+27821234569", "firstName": {"a": 1}}), 400, 1)
    error(user.http.post(f"{API}/contacts/create", content=b"{not json", headers={"Content-Type": "application/json"}),
          400, 1)
    assert user.http.get(f"{API}/contacts/{other}").json()["contactNumber"] == "+27821234568"
    for method in ("GET", "POST", "DELETE"):
        error(user.http.request(method, f"{API}/contacts/{'0' * 24}"), 404, 7)
    assert len(user.http.get(f"{API}/contacts/all").json()["webServiceContacts"]) == 2


def test_an_integrity_error_is_a_conflict_only_for_a_duplicate(db: Database, user: User) -> None:
    cid = contact_id(user, "+27821234567")
    with pytest.raises(NotFound) as gone, lost_races(), db.write() as session:  # the group deleted meanwhile
        session.execute(insert(GroupMember).values(group_id="0" * 24, contact_id=cid, contact_created_at=utcnow()))
    assert "no longer exists" in gone.value.detail
    with pytest.raises(Conflict) as taken, lost_races("taken"), db.write() as session:  # the number taken meanwhile
        account_id = session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))
        session.execute(insert(Contact).values(id=new_id(), account_id=account_id, user_id=user.user_id,
                                               number="+27821234567", created_at=utcnow()))
    assert taken.value.detail == "taken"


def test_nul_characters_are_refused(user: User) -> None:
    cid = contact_id(user, "+27821234567", firstName="Ann")
    gid = group_id(user, "Choir")
    for field in ("title", "firstName", "lastName"):
        said = error(create(user, "+27821234568", **{field: "A\x00B"}), 400, 1)["developerMessage"]
        assert field in said and "NUL" in said
        error(user.http.post(f"{API}/contacts/{cid}", json={field: "\x00"}), 400, 1)
    assert "NUL" in error(user.http.post(f"{API}/groups/create", json={"name": "a\x00"}), 400, 1)["developerMessage"]
    error(user.http.post(f"{API}/groups/{gid}", json={"name": "b\x00"}), 400, 1)
    user.http.get(f"{API}/groups/{gid}/addContact/{cid}")
    said = error(user.http.post(f"{API}/sms/send-group", json={"groupId": gid, "message": "hi\x00"}), 400, 1)
    assert "NUL" in said["developerMessage"]
    for path in ("contacts/a%00", "groups/a%00", "groups/a%00/contacts"):
        error(user.http.get(f"{API}/{path}"), 404, 7)
    assert [c["firstName"] for c in user.http.get(f"{API}/contacts/all").json()["webServiceContacts"]] == ["Ann"]
    assert [g["name"] for g in user.http.get(f"{API}/groups/all").json()["webServiceGroups"]] == ["Choir"]
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 0


def test_racing_creates_of_one_number_make_one_contact(user: User) -> None:
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: create(user, "+27825550000").status_code, range(8)))
    assert statuses.count(200) == 1 and statuses.count(409) == 7, statuses
    assert len(user.http.get(f"{API}/contacts/all").json()["webServiceContacts"]) == 1


def test_paging_and_links(user: User) -> None:
    numbers = [f"+2782123450{i}" for i in range(5)]
    for number in numbers:
        contact_id(user, number)

    def page(**params: object) -> dict:
        response = user.http.get(f"{API}/contacts/all", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    listed = [c["contactNumber"] for p in (1, 2, 3) for c in page(page=p, pageSize=2)["webServiceContacts"]]
    assert sorted(listed) == numbers and len(set(listed)) == 5
    first = {link["rel"]: link["href"] for link in page(pageSize=2)["links"]}
    assert set(first) == {"self", "next"}
    assert first["next"] == f"{str(user.http.base_url).rstrip('/')}{API}/contacts/all?page=2&pageSize=2"
    middle = {link["rel"]: httpx.URL(link["href"]) for link in page(page=2, pageSize=2)["links"]}
    assert set(middle) == {"self", "prev", "next"}
    assert middle["prev"].params["page"] == "1" and middle["next"].params["page"] == "3"
    assert middle["self"].path == f"{API}/contacts/all"
    last = page(page=3, pageSize=2)
    assert len(last["webServiceContacts"]) == 1 and {link["rel"] for link in last["links"]} == {"self", "prev"}
    assert page(page=9, pageSize=2)["webServiceContacts"] == []
    assert len(page()["webServiceContacts"]) == 5 and [link["rel"] for link in page()["links"]] == ["self"]
    for bad in ({"page": 0}, {"page": "x"}, {"pageSize": 0}, {"pageSize": 1001}):
        error(user.http.get(f"{API}/contacts/all", params=bad), 400, 1)


def test_a_huge_page_number_is_a_400_not_a_500(user: User) -> None:
    gid = group_id(user, "Choir")
    for path in ("contacts/all", "groups/all", f"groups/{gid}/contacts", "templates/all"):
        for page in (10**20, 2**63, 1_000_001):
            assert "page" in error(user.http.get(f"{API}/{path}", params={"page": page}), 400, 1)["developerMessage"]
        last = user.http.get(f"{API}/{path}", params={"page": 1_000_000, "pageSize": 1000})
        assert last.status_code == 200, last.text
        assert all(value == [] for key, value in last.json().items() if key != "links")


def test_links_never_carry_credentials(server: Server, user: User) -> None:
    contact_id(user)
    response = httpx.get(f"{server.url}{API}/contacts/all.json", params={"email": user.email, "token": user.token})
    href = response.json()["links"][0]["href"]
    assert user.token not in href and "email=" not in href and "/contacts/all.json" in href


def test_xml_and_suffixes(user: User) -> None:
    xml = (b'<?xml version="1.0"?><webServiceContact><contactNumber>27821234567</contactNumber>'
           b"<firstName>Sipho</firstName><links/></webServiceContact>")
    made = user.http.post(f"{API}/contacts/create.xml", content=xml, headers={"Content-Type": "application/xml"})
    assert made.status_code == 200 and made.headers["content-type"] == "application/xml"
    root = ElementTree.fromstring(made.content)
    assert root.tag == "webServiceContact" and root.findtext("contactNumber") == "+27821234567"
    cid = root.findtext("contactId")
    assert user.http.get(f"{API}/contacts/{cid}.json").json()["firstName"] == "Sipho"
    listing = ElementTree.fromstring(user.http.get(f"{API}/contacts/all.xml").content)
    assert listing.tag == "webServiceContacts" and listing.find("webServiceContacts/firstName").text == "Sipho"
    missing = user.http.get(f"{API}/contacts/{'0' * 24}.xml")
    assert missing.status_code == 404 and ElementTree.fromstring(missing.content).findtext("code") == "7"
    group = ElementTree.fromstring(user.http.post(
        f"{API}/groups/create.xml", content=b"<webServiceGroup><name>Choir</name></webServiceGroup>",
        headers={"Content-Type": "application/xml"}).content)
    assert group.tag == "webServiceGroup" and group.findtext("name") == "Choir"


# -- groups and membership -------------------------------------------------------------------

def test_group_lifecycle(user: User) -> None:
    made = user.http.post(f"{API}/groups/create", json={"name": " Choir ", "groupId": "ignored", "links": None})
    assert made.status_code == 200, made.text
    gid = made.json()["groupId"]
    assert made.json() == {"groupId": gid, "name": "Choir", "links": []}
    assert user.http.get(f"{API}/groups/{gid}").json()["name"] == "Choir"
    renamed = user.http.post(f"{API}/groups/{gid}", json={"name": "Tenors", "groupId": gid})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Tenors"
    assert user.http.post(f"{API}/groups/{gid}", json={}).json()["name"] == "Tenors"
    other = group_id(user, "Altos")
    listing = user.http.get(f"{API}/groups/all", params={"pageSize": 1}).json()
    assert [g["name"] for g in listing["webServiceGroups"]] == ["Tenors"]
    assert {link["rel"] for link in listing["links"]} == {"self", "next"}
    assert len(user.http.get(f"{API}/groups/all").json()["webServiceGroups"]) == 2

    error(user.http.post(f"{API}/groups/create", json={"name": "Tenors"}), 409, 12)
    error(user.http.post(f"{API}/groups/{other}", json={"name": "Tenors"}), 409, 12)
    for bad in ({}, {"name": None}, {"name": "  "}, {"name": "x" * 256}):
        error(user.http.post(f"{API}/groups/create", json=bad), 400, 1)
    error(user.http.post(f"{API}/groups/{other}", json={"name": ""}), 400, 1)
    for method in ("GET", "POST", "DELETE"):
        error(user.http.request(method, f"{API}/groups/{'0' * 24}"), 404, 7)

    assert user.http.delete(f"{API}/groups/{gid}").status_code == 200
    error(user.http.get(f"{API}/groups/{gid}"), 404, 7)
    assert [g["name"] for g in user.http.get(f"{API}/groups/all").json()["webServiceGroups"]] == ["Altos"]


def test_membership_both_ways_idempotent(user: User) -> None:
    a, b = contact_id(user, "+27821000001"), contact_id(user, "+27821000002")
    gid = group_id(user, "Choir")
    for method in ("GET", "POST"):
        for path in (f"contacts/{a}/addToGroup/{gid}", f"groups/{gid}/addContact/{b}"):
            response = user.http.request(method, f"{API}/{path}")
            assert response.status_code == 200 and response.content == b"", response.text
    assert sorted(members(user, gid)) == ["+27821000001", "+27821000002"]
    assert user.http.get(f"{API}/contacts/{a}/addFromGroup/{gid}").status_code == 200
    assert user.http.post(f"{API}/contacts/{a}/addFromGroup/{gid}").status_code == 200  # not in it: still fine
    assert members(user, gid) == ["+27821000002"]
    assert user.http.post(f"{API}/groups/{gid}/removeContact/{b}").status_code == 200
    assert user.http.get(f"{API}/groups/{gid}/removeContact/{b}").status_code == 200
    assert members(user, gid) == []

    nobody = "0" * 24
    for path in (f"contacts/{nobody}/addToGroup/{gid}", f"contacts/{a}/addToGroup/{nobody}",
                 f"groups/{gid}/addContact/{nobody}", f"groups/{nobody}/removeContact/{a}",
                 f"contacts/{a}/addFromGroup/{nobody}", f"groups/{nobody}/contacts"):
        error(user.http.get(f"{API}/{path}"), 404, 7)


def test_deleting_keeps_the_other_side(user: User) -> None:
    a, b = contact_id(user, "+27821000001"), contact_id(user, "+27821000002")
    gid, other = group_id(user, "Choir"), group_id(user, "Band")
    for group in (gid, other):
        for contact in (a, b):
            user.http.get(f"{API}/groups/{group}/addContact/{contact}")
    assert user.http.delete(f"{API}/contacts/{a}").status_code == 200
    assert members(user, gid) == ["+27821000002"]
    assert user.http.delete(f"{API}/groups/{gid}").status_code == 200
    assert user.http.get(f"{API}/contacts/{b}").status_code == 200
    assert members(user, other) == ["+27821000002"]
    # the group's name is free again, and the new group starts empty
    assert members(user, group_id(user, "Choir")) == []


def test_tenants_never_see_each_other(user: User, other: User) -> None:
    mine = contact_id(user, "+27821234567", firstName="Mine")
    gid = group_id(user, "Mine")
    user.http.get(f"{API}/groups/{gid}/addContact/{mine}")
    theirs = contact_id(other, "+27821234567", firstName="Theirs")  # the same number: another address book
    their_group = group_id(other, "Mine")
    for method, path in (("GET", f"contacts/{mine}"), ("POST", f"contacts/{mine}"), ("DELETE", f"contacts/{mine}"),
                         ("GET", f"groups/{gid}"), ("POST", f"groups/{gid}"), ("DELETE", f"groups/{gid}"),
                         ("GET", f"groups/{gid}/contacts"),
                         ("GET", f"contacts/{theirs}/addToGroup/{gid}"), ("GET", f"contacts/{mine}/addToGroup/{their_group}"),
                         ("POST", f"groups/{their_group}/addContact/{mine}"),
                         ("GET", f"groups/{gid}/removeContact/{mine}")):
        error(other.http.request(method, f"{API}/{path}", json={"firstName": "x", "name": "x"}), 404, 7)
    assert [c["firstName"] for c in other.http.get(f"{API}/contacts/all").json()["webServiceContacts"]] == ["Theirs"]
    assert user.http.get(f"{API}/contacts/{mine}").json()["firstName"] == "Mine"
    assert members(user, gid) == ["+27821234567"] and members(other, their_group) == []


def test_the_sdk_on_contacts_and_groups(server: Server, user: User) -> None:
    client = Client(base_url=f"{server.url}/app/", api_token=user.token, account_email=user.email)
    made = client.create_contact("Ayanda", "Zulu", "+27821234567", "Ms")
    cid = made["contactId"]
    assert made["contactNumber"] == "+27821234567" and made["title"] == "Ms"
    assert client.get_contact(cid)["firstName"] == "Ayanda"
    assert client.update_contact(cid, "Ayanda", "Dlamini", "27821234568", "Dr")["lastName"] == "Dlamini"
    assert [c["contactNumber"] for c in client.get_contacts_all()["webServiceContacts"]] == ["+27821234568"]
    assert client.create_contact("Again", "", "27821234568", "")["code"] == 12

    group = client.create_group("Neighbours")
    gid = group["groupId"]
    assert client.get_group(gid)["name"] == "Neighbours"
    assert client.update_group("Street", gid)["name"] == "Street"
    assert [g["name"] for g in client.get_groups_all()["webServiceGroups"]] == ["Street"]

    assert client.add_contact_to_group(cid, gid) is True
    assert members(user, gid) == ["+27821234568"]
    assert client.get_remove_contact_from_group(cid, gid) is True
    assert members(user, gid) == []
    assert client.add_group_to_contact(gid, cid) is True
    assert client.remove_contact_from_group(cid, gid) is True
    assert members(user, gid) == []
    assert client.add_group_to_contact(gid, cid) is True
    assert client.remove_group_from_contact(gid, cid) is True
    assert members(user, gid) == []
    assert client.add_contact_to_group(cid, "0" * 24) is False

    assert client.delete_group(gid) is True
    assert client.get_group(gid)["code"] == 7
    assert client.delete_contact(cid) is True
    assert client.delete_contact(cid) is False
    assert client.get_contacts_all()["webServiceContacts"] == []


# -- sending to a group ----------------------------------------------------------------------

def choir(user: User) -> str:
    gid = group_id(user, "Choir")
    for number, first in (("+27821000001", "Ann"), ("+27821000002", "Ben"), ("+27821000003", None)):
        user.http.get(f"{API}/groups/{gid}/addContact/{contact_id(user, number, firstName=first, lastName='Smith')}")
    contact_id(user, "+27821000009", firstName="Outsider")
    return gid


def test_send_to_a_group(user: User) -> None:
    gid = choir(user)
    response = user.http.post(f"{API}/sms/send-group", json={
        "groupId": gid, "message": "Hi {{ firstName }} {{lastName}}, practice at 7", "campaign": "choir",
        "dataField": "week-1", "dateToSend": None,
    })
    assert response.status_code == 200, response.text
    sent = response.json()["sendSmsResponses"]
    assert [r["recipientNumber"] for r in sent] == ["+27821000001", "+27821000002", "+27821000003"]
    assert all(r["error"] is None for r in sent)
    bodies = {}
    for result in sent:
        message = user.wait_status(result["messageId"], "DELIVERED")
        assert message["toNumber"] == result["recipientNumber"] and message["campaign"] == "choir"
        assert message["userDataField"] == "week-1"
        bodies[message["toNumber"]] = message["message"]
    assert bodies == {"+27821000001": "Hi Ann Smith, practice at 7", "+27821000002": "Hi Ben Smith, practice at 7",
                      "+27821000003": "Hi  Smith, practice at 7"}
    assert user.balance() == 97.0
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 3


def test_send_a_template_to_a_group(user: User) -> None:
    gid = choir(user)
    template = user.http.post(f"{API}/templates/create", json={"name": "t", "data": "Dear {{firstName}}"}).json()
    sent = user.http.post(f"{API}/sms/send-group", json={"groupId": gid, "templateId": template["templateId"]})
    assert sent.status_code == 200, sent.text
    ids = [r["messageId"] for r in sent.json()["sendSmsResponses"]]
    assert [user.wait_status(i, "DELIVERED")["message"] for i in ids] == ["Dear Ann", "Dear Ben", "Dear "]


def test_a_group_send_is_all_or_nothing(db: Database, server: Server) -> None:
    poor = make_user(db, server, credits=2.0)
    try:
        gid = choir(poor)
        error(poor.http.post(f"{API}/sms/send-group", json={"groupId": gid, "message": "hi"}), 402, 5)
        assert poor.balance() == 2.0
        assert poor.http.get(f"{API}/messages/all").json()["totalElements"] == 0
    finally:
        poor.http.close()


def test_a_group_send_is_capped_at_10000(db: Database, user: User) -> None:
    gid = crowd(db, user, "Everyone", 10_001)
    said = error(user.http.post(f"{API}/sms/send-group", json={"groupId": gid, "message": "hi"}), 400, 1)
    assert "10,001" in said["developerMessage"] and "10,000" in said["developerMessage"]
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 0
    assert user.balance() == 100.0


def test_bad_group_sends(user: User, other: User) -> None:
    gid = choir(user)
    empty = group_id(user, "Empty")
    template = user.http.post(f"{API}/templates/create", json={"name": "t", "data": "x"}).json()["templateId"]
    send = f"{API}/sms/send-group"
    error(user.http.post(send, json={"message": "hi"}), 400, 1)
    error(user.http.post(send, json=None), 400, 1)
    error(user.http.post(send, json={"groupId": gid}), 400, 3)
    error(user.http.post(send, json={"groupId": gid, "message": "  "}), 400, 3)
    error(user.http.post(send, json={"groupId": gid, "message": "hi", "templateId": template}), 400, 1)
    unknown = error(user.http.post(send, json={"groupId": gid, "message": "hi {{nickname}}"}), 400, 1)
    assert "{{firstName}}" in unknown["developerMessage"]
    error(user.http.post(send, json={"groupId": gid, "message": "hi", "dateToSend": "tomorrow"}), 400, 6)
    assert "no contacts" in error(user.http.post(send, json={"groupId": empty, "message": "hi"}), 400, 1)[
        "developerMessage"]
    error(user.http.post(send, json={"groupId": "0" * 24, "message": "hi"}), 404, 7)
    error(user.http.post(send, json={"groupId": gid, "templateId": 999999}), 404, 7)
    error(user.http.post(send, json={"groupId": gid, "templateId": "abc"}), 404, 7)
    error(other.http.post(send, json={"groupId": gid, "message": "hi"}), 404, 7)
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 0
    assert user.balance() == 100.0


def test_messages_name_the_contact_at_their_other_end(user: User, other: User) -> None:
    cid = contact_id(user, "+27821234567")
    contact_id(other, "+27821234568")  # another user's contact is not this user's
    to_contact = user.send("0821234567").json()["messageId"]
    to_stranger = user.send("+27821234568").json()["messageId"]
    listed = {m["messageId"]: m["contact"] for m in user.http.get(f"{API}/messages/all").json()["webServiceMessages"]}
    assert listed == {to_contact: {"contactId": cid, "links": []}, to_stranger: None}
    assert user.message(to_contact)["contact"] == {"contactId": cid, "links": []}
    assert user.http.put(f"{API}/messages/{to_stranger}/markRead").json()["contact"] is None
    user.http.delete(f"{API}/contacts/{cid}")
    assert user.message(to_contact)["contact"] is None
