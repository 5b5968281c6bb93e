"""Sending one message through the Zoom Connect API, over HTTP, on both backends."""

from __future__ import annotations

import datetime as dt

from conftest import API, User


def test_send_is_delivered_and_charged(user: User) -> None:
    response = user.send("+27821234567", "Hello from Pigeon", campaign="launch", dataField="ref-1")
    assert response.status_code == 200
    body = response.json()
    assert body["error"] is None and len(body["messageId"]) == 24
    delivered = user.wait_status(body["messageId"], "DELIVERED")
    assert delivered["toNumber"] == "+27821234567"
    assert delivered["messageType"] == "OUTBOUND"
    assert delivered["campaign"] == "launch" and delivered["userDataField"] == "ref-1"
    assert delivered["creditCost"] == 1.0 and delivered["numberOfMessages"] == 1
    assert delivered["dateTimeSent"] is not None
    assert user.balance() == 99.0


def test_numbers_are_normalised_to_e164(user: User) -> None:
    for written in ("0821234567", "27821234567", "0027821234567", "+27 82 123 4567", 27821234567):
        message_id = user.send(written, "hi").json()["messageId"]
        assert user.message(message_id)["toNumber"] == "+27821234567", written


def test_multipart_message_costs_each_part(user: User) -> None:
    message_id = user.send(message="a" * 161).json()["messageId"]
    found = user.message(message_id)
    assert found["numberOfMessages"] == 2 and found["creditCost"] == 2.0
    assert user.balance() == 98.0


def test_price_follows_the_destination_country(user: User) -> None:
    message_id = user.send("+12025550143", "hi").json()["messageId"]
    assert user.message(message_id)["creditCost"] == 0.5
    assert user.balance() == 99.5


def _nothing_stored(user: User) -> None:
    assert user.balance() == 100.0
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 0


def test_invalid_number_is_refused_with_code_2(user: User) -> None:
    for bad in ("abc", "123", "", "+27666", None):
        response = user.send(bad, "hello")
        assert response.status_code == 400, bad
        body = response.json()
        assert body["code"] == 2 and body["message"] == "Invalid mobile number"
        assert body["developerMessage"] and body["status"] == "BAD_REQUEST"
    _nothing_stored(user)


def test_empty_message_is_refused_with_code_3(user: User) -> None:
    for empty in ("", "   ", None):
        response = user.send(message=empty)
        assert response.status_code == 400 and response.json()["code"] == 3
    _nothing_stored(user)


def test_missing_body_and_explicit_nulls(user: User) -> None:
    assert user.http.post(f"{API}/sms/send").json()["code"] == 2
    assert user.http.post(f"{API}/sms/send", content=b"null", headers={"content-type": "application/json"}).json()["code"] == 2
    response = user.http.post(
        f"{API}/sms/send",
        json={"recipientNumber": "+27821234567", "message": "hi", "campaign": None, "dataField": None, "dateToSend": None},
    )
    assert response.status_code == 200 and response.json()["messageId"]


def test_wrong_types_and_malformed_json_are_400(user: User) -> None:
    bad_bodies = [
        {"recipientNumber": "+27821234567", "message": {"text": "hi"}},
        {"recipientNumber": ["+27821234567"], "message": "hi"},
        [1, 2, 3],
    ]
    for bad in bad_bodies:
        response = user.http.post(f"{API}/sms/send", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["code"] == 1
    response = user.http.post(f"{API}/sms/send", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == 1
    _nothing_stored(user)


def test_a_body_in_a_media_type_the_route_does_not_read_is_415_naming_it(user: User) -> None:
    """A form, text or a body with no Content-Type is refused with the media types the route
    takes, not pydantic's "valid dictionary" complaint; nothing is stored or charged."""
    json_text = b'{"recipientNumber": "+27821234567", "message": "hi"}'
    for path in ("/sms/send", "/sms/send-bulk"):
        cases = [
            ({"content-type": "application/x-www-form-urlencoded"}, b"recipientNumber=%2B27821234567&message=hi",
             "'application/x-www-form-urlencoded'"),
            ({"content-type": "text/plain"}, json_text, "'text/plain'"),
            ({}, json_text, "no Content-Type"),
        ]
        for headers, body, named in cases:
            response = user.http.post(f"{API}{path}", content=body, headers=headers)
            assert response.status_code == 415, (path, headers, response.text)
            answer = response.json()
            assert answer["code"] == 1 and named in answer["developerMessage"]
            assert "application/json" in answer["developerMessage"]
    scalar = user.http.post(f"{API}/sms/send", content=b'"hi"', headers={"content-type": "application/json"})
    assert scalar.status_code == 400  # JSON, just not an object: the ordinary invalid-request answer
    _nothing_stored(user)


def test_oversize_message_is_refused(user: User) -> None:
    response = user.send(message="a" * (153 * 10 + 1))
    assert response.status_code == 400 and response.json()["code"] == 4
    assert "parts" in response.json()["developerMessage"]
    assert user.send(message="a" * (153 * 10)).status_code == 200


def test_insufficient_credits_refuses_the_send_whole(user: User) -> None:
    for _ in range(10):
        assert user.send(message="ж" * 670).status_code == 200  # 10 parts of UCS-2: 10 credits
    refused = user.send(message="one more")
    assert refused.status_code == 402
    assert refused.json()["code"] == 5 and "Insufficient credits" in refused.json()["developerMessage"]
    assert user.balance() == 0.0
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 10


def test_scheduled_message_waits_then_goes_out(user: User) -> None:
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y%m%d%H%M")
    message_id = user.send(dateToSend=later).json()["messageId"]
    found = user.message(message_id)
    assert found["messageStatus"] == "SCHEDULED"
    assert found["dateTimeScheduled"].startswith(later[:4] + "-" + later[4:6])
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y%m%d%H%M")
    user.wait_status(user.send(dateToSend=past).json()["messageId"], "DELIVERED")
    assert user.message(message_id)["messageStatus"] == "SCHEDULED"
    ancient = user.send(dateToSend="000101011200")  # year 1, once written unreadably by SQLite's raw cursor
    assert ancient.status_code == 200, ancient.text
    user.wait_status(ancient.json()["messageId"], "DELIVERED")
    assert user.http.get(f"{API}/messages/all").status_code == 200


def test_invalid_date_to_send_is_refused(user: User) -> None:
    for bad in ("tomorrow", "2026-12-01", "202613011200", "20261301"):
        response = user.send(dateToSend=bad)
        assert response.status_code == 400 and response.json()["code"] == 6, bad
    _nothing_stored(user)


def test_failed_delivery_refunds_the_credits(user: User) -> None:
    failed = user.send("+27821234666", "x").json()["messageId"]
    rejected = user.send("+27821234000", "x").json()["messageId"]
    silent = user.send("+27821234999", "x").json()["messageId"]
    assert user.wait_status(failed, "FAILED_REFUNDED")["dateTimeSent"] is not None
    assert user.wait_status(rejected, "FAILED_REFUNDED")["dateTimeSent"] is None
    user.wait_status(silent, "SENT")
    assert user.balance() == 99.0


def test_xml_by_suffix_or_accept_header(user: User) -> None:
    response = user.http.post(f"{API}/sms/send.xml", json={"recipientNumber": "+27821234567", "message": "hi"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/xml"
    assert b"<webServiceSendSmsResponse><messageId>" in response.content
    response = user.http.get(f"{API}/account/balance", headers={"accept": "application/xml"})
    assert b"<creditBalance>99.0</creditBalance>" in response.content
    response = user.http.get(f"{API}/account/balance.json", headers={"accept": "application/xml"})
    assert response.json() == {"creditBalance": 99.0, "links": []}
    error = user.http.post(f"{API}/sms/send.xml", json={"recipientNumber": "x", "message": "hi"})
    assert error.status_code == 400 and b"<code>2</code>" in error.content


def test_get_with_null_json_body_works(user: User) -> None:
    response = user.http.request(
        "GET", f"{API}/account/balance", content=b"null", headers={"content-type": "application/json"}
    )
    assert response.status_code == 200 and response.json()["creditBalance"] == 100.0


def test_examples_of_send_bodies(user: User) -> None:
    assert set(user.http.get(f"{API}/sms/send").json()) == {"recipientNumber", "message", "campaign", "dataField", "dateToSend"}
    assert "sendSmsRequests" in user.http.get(f"{API}/sms/send-bulk").json()
