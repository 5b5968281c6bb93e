"""/templates and /sms/send-template, and the placeholder rules."""

from __future__ import annotations

from types import SimpleNamespace
from xml.etree import ElementTree

import httpx
import pytest
from zoomconnect_sdk.client import Client

from conftest import API, Server, User, make_user
from pigeon.db import Database
from pigeon.errors import Invalid
from pigeon.templates.service import check_body, render


def error(response: httpx.Response, status: int, code: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


def contact_id(user: User, number: str = "+27821234567", **fields: object) -> str:
    response = user.http.post(f"{API}/contacts/create", json={"contactNumber": number, **fields})
    assert response.status_code == 200, response.text
    return response.json()["contactId"]


def create(user: User, name: str = "greeting", data: str = "Hello {{firstName}}") -> dict:
    response = user.http.post(f"{API}/templates/create", json={"name": name, "data": data})
    assert response.status_code == 200, response.text
    return response.json()


# -- placeholders ----------------------------------------------------------------------------

def person(**fields: str | None) -> SimpleNamespace:
    return SimpleNamespace(**{"number": "+27821234567", "title": None, "first_name": None, "last_name": None, **fields})


def test_render_fills_known_placeholders() -> None:
    contact = person(title="Dr", first_name="Ann", last_name="Lee")
    body = "{{title}} {{ lastName }}, {{firstName}}: {{\tcontactNumber }} {single} {{{firstName}}}"
    assert render(body, contact) == "Dr Lee, Ann: +27821234567 {single} {Ann}"
    assert render("Hi {{firstName}}{{lastName}}!", person(first_name="Ann")) == "Hi Ann!"
    assert render("Hi {{firstName}} at {{contactNumber}}", None) == "Hi  at "


@pytest.mark.parametrize("body", ["Hi {{FirstName}}", "Hi {{name}}", "{{}}", "{{first name}}", "{{ firstName}} {{x}}"])
def test_unknown_placeholders_are_refused(body: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_body(body)
    assert "{{firstName}}, {{lastName}}, {{title}}, {{contactNumber}}" in refused.value.detail


# -- templates -------------------------------------------------------------------------------

def test_template_lifecycle(user: User) -> None:
    made = create(user, " Welcome ", "Welcome, {{ title }} {{lastName}}")
    tid = made["templateId"]
    assert isinstance(tid, int)
    assert made == {"templateId": tid, "name": "Welcome", "data": "Welcome, {{ title }} {{lastName}}", "links": []}
    assert user.http.get(f"{API}/templates/{tid}").json() == made
    edited = user.http.post(f"{API}/templates/{tid}", json={"data": "Bye {{firstName}}"})
    assert edited.status_code == 200 and edited.json() == {**made, "data": "Bye {{firstName}}"}
    renamed = user.http.post(f"{API}/templates/{tid}", json={"name": "Farewell", "data": None}).json()
    assert renamed["name"] == "Farewell" and renamed["data"] == "Bye {{firstName}}"
    second = create(user, "Other", "plain text")["templateId"]
    listing = user.http.get(f"{API}/templates/all").json()
    assert [t["templateId"] for t in listing["webServiceTemplates"]] == [tid, second]
    assert [link["rel"] for link in listing["links"]] == ["self"]
    paged = user.http.get(f"{API}/templates/all", params={"page": 2, "pageSize": 1}).json()
    assert [t["name"] for t in paged["webServiceTemplates"]] == ["Other"]
    assert {link["rel"] for link in paged["links"]} == {"self", "prev"}
    deleted = user.http.delete(f"{API}/templates/{tid}")
    assert deleted.status_code == 200 and deleted.content == b""
    error(user.http.get(f"{API}/templates/{tid}"), 404, 7)
    error(user.http.delete(f"{API}/templates/{tid}"), 404, 7)
    xml = user.http.get(f"{API}/templates/{second}.xml")
    root = ElementTree.fromstring(xml.content)
    assert root.tag == "webServiceTemplate" and root.findtext("templateId") == str(second)


def test_bad_template_input(user: User) -> None:
    tid = create(user, "taken")["templateId"]
    for body, code in (({"data": "x"}, 1), ({"name": " ", "data": "x"}, 1), ({"name": "n" * 256, "data": "x"}, 1),
                       ({"name": "n"}, 3), ({"name": "n", "data": "   "}, 3), (None, 1),
                       ({"name": "n", "data": "Hi {{nickname}}"}, 1)):
        error(user.http.post(f"{API}/templates/create", json=body), 400, code)
    unknown = error(user.http.post(f"{API}/templates/{tid}", json={"data": "Hi {{Firstname}}"}), 400, 1)
    assert "{{Firstname}}" in unknown["developerMessage"] and "{{firstName}}" in unknown["developerMessage"]
    error(user.http.post(f"{API}/templates/create", json={"name": "taken", "data": "x"}), 409, 12)
    other = create(user, "other")["templateId"]
    error(user.http.post(f"{API}/templates/{other}", json={"name": "taken"}), 409, 12)
    error(user.http.post(f"{API}/templates/{other}", json={"name": ""}), 400, 1)
    error(user.http.post(f"{API}/templates/{other}", json={"data": ""}), 400, 3)
    assert user.http.get(f"{API}/templates/{other}").json()["name"] == "other"
    for bad in ("abc", "1.5", "-1", "0", "99999999999999999999", "%C2%B2", "999999"):
        for method in ("GET", "DELETE", "POST"):
            error(user.http.request(method, f"{API}/templates/{bad}", json={"name": "x"}), 404, 7)
    assert len(user.http.get(f"{API}/templates/all").json()["webServiceTemplates"]) == 2


def test_nul_characters_are_refused(user: User) -> None:
    tid = create(user, "kept", "Hi {{firstName}}")["templateId"]
    for body in ({"name": "a\x00b", "data": "x"}, {"name": "n", "data": "Hi\x00"}):
        said = error(user.http.post(f"{API}/templates/create", json=body), 400, 1)["developerMessage"]
        assert "NUL" in said
        error(user.http.post(f"{API}/templates/{tid}", json=body), 400, 1)
    assert user.http.get(f"{API}/templates/all").json()["webServiceTemplates"] == [
        {"templateId": tid, "name": "kept", "data": "Hi {{firstName}}", "links": []}]


def test_templates_are_per_user(user: User, other: User) -> None:
    tid = create(user, "mine")["templateId"]
    for method in ("GET", "POST", "DELETE"):
        error(other.http.request(method, f"{API}/templates/{tid}", json={"name": "x"}), 404, 7)
    assert other.http.get(f"{API}/templates/all").json()["webServiceTemplates"] == []
    create(other, "mine")  # names are unique per user only
    error(other.http.post(f"{API}/sms/send-template", json={"templateId": tid, "recipientNumber": "+27821234567"}),
          404, 7)
    assert user.http.get(f"{API}/templates/{tid}").json()["name"] == "mine"


def test_the_sdk_on_templates(server: Server, user: User) -> None:
    client = Client(base_url=f"{server.url}/app/", api_token=user.token, account_email=user.email)
    tid = create(user, "sdk", "Hi {{firstName}}")["templateId"]
    assert [t["name"] for t in client.get_all_templates()["webServiceTemplates"]] == ["sdk"]
    assert client.get_template(tid)["data"] == "Hi {{firstName}}"
    assert client.get_template("nope")["code"] == 7
    assert client.delete_template(tid) is True
    assert client.delete_template(tid) is False
    assert client.get_all_templates()["webServiceTemplates"] == []


# -- sending with a template -----------------------------------------------------------------

def test_send_a_template(user: User) -> None:
    tid = create(user, "t", "Dear {{title}} {{lastName}} ({{contactNumber}})")["templateId"]
    cid = contact_id(user, "+27821234567", title="Prof", lastName="Mokoena")
    by_id = user.http.post(f"{API}/sms/send-template", json={"templateId": tid, "contactId": cid, "campaign": "c"})
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["error"] is None
    message = user.wait_status(by_id.json()["messageId"], "DELIVERED")
    assert message["message"] == "Dear Prof Mokoena (+27821234567)" and message["campaign"] == "c"
    by_number = user.http.post(f"{API}/sms/send-template", json={"templateId": str(tid), "recipientNumber": "27821234567",
                                                                  "dataField": "d"}).json()
    assert user.wait_status(by_number["messageId"], "DELIVERED")["message"] == "Dear Prof Mokoena (+27821234567)"
    stranger = user.http.post(f"{API}/sms/send-template", json={"templateId": tid, "recipientNumber": "+27821234888"})
    assert user.wait_status(stranger.json()["messageId"], "DELIVERED")["message"] == "Dear   ()"
    assert user.balance() == 97.0


def test_bad_template_sends(db: Database, server: Server, user: User) -> None:
    tid = create(user, "t", "Hi {{firstName}}")["templateId"]
    cid = contact_id(user)
    send = f"{API}/sms/send-template"
    error(user.http.post(send, json={"recipientNumber": "+27821234567"}), 400, 1)
    error(user.http.post(send, json=None), 400, 1)
    error(user.http.post(send, json={"templateId": tid}), 400, 2)
    error(user.http.post(send, json={"templateId": tid, "recipientNumber": "12345"}), 400, 2)
    error(user.http.post(send, json={"templateId": tid, "recipientNumber": "+27821234567", "contactId": cid}), 400, 1)
    error(user.http.post(send, json={"templateId": tid, "contactId": "0" * 24}), 404, 7)
    error(user.http.post(send, json={"templateId": 424242, "contactId": cid}), 404, 7)
    error(user.http.post(send, json={"templateId": "x", "contactId": cid}), 404, 7)
    error(user.http.post(send, json={"templateId": tid, "contactId": cid, "dateToSend": "2026-01-01"}), 400, 6)
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 0
    broke = make_user(db, server, credits=0.0)
    try:
        broke_template = create(broke, "t", "Hi")["templateId"]
        error(broke.http.post(send, json={"templateId": broke_template, "recipientNumber": "+27821234567"}), 402, 5)
        assert broke.http.get(f"{API}/messages/all").json()["totalElements"] == 0
    finally:
        broke.http.close()


def test_a_scheduled_template_send(user: User) -> None:
    tid = create(user, "t", "later")["templateId"]
    sent = user.http.post(f"{API}/sms/send-template.xml", json={"templateId": tid, "recipientNumber": "+27821234567",
                                                                 "dateToSend": "209901010000"})
    assert sent.status_code == 200 and ElementTree.fromstring(sent.content).tag == "webServiceSendSmsResponse"
    message_id = ElementTree.fromstring(sent.content).findtext("messageId")
    message = user.message(message_id)
    assert message["messageStatus"] == "SCHEDULED" and message["dateTimeScheduled"] == "2099-01-01T00:00:00Z"
