"""send-bulk and the URL-parameter sends."""

from __future__ import annotations

import datetime as dt

from conftest import API, User


def bulk(user: User, entries: list, **extra: object):  # type: ignore[no-untyped-def]
    return user.http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": entries, **extra})


def test_each_entry_succeeds_or_fails_on_its_own(user: User) -> None:
    response = bulk(user, [
        {"recipientNumber": "+27821234567", "message": "one"},
        {"recipientNumber": "bad", "message": "two"},
        {"recipientNumber": "+27821234568", "message": ""},
        None,
        {"recipientNumber": "+27821234569", "message": "four", "campaign": "c"},
    ])
    assert response.status_code == 200
    results = response.json()["sendSmsResponses"]
    assert len(results) == 5
    assert results[0]["messageId"] and results[0]["error"] is None
    assert results[1]["messageId"] is None and "Invalid mobile number" in results[1]["error"]
    assert results[2]["messageId"] is None and "empty" in results[2]["error"]
    assert results[3]["messageId"] is None
    assert results[4]["messageId"] and user.message(results[4]["messageId"])["campaign"] == "c"
    for result in (results[0], results[4]):
        user.wait_status(result["messageId"], "DELIVERED")
    assert user.balance() == 98.0


def test_a_bulk_the_balance_cannot_cover_is_refused_whole(user: User) -> None:
    entries = [{"recipientNumber": "+27821234567", "message": f"m{i}"} for i in range(101)]
    response = bulk(user, entries)
    assert response.status_code == 402 and response.json()["code"] == 5
    assert user.balance() == 100.0
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 0
    assert bulk(user, entries[:100]).status_code == 200
    assert user.balance() == 0.0


def test_default_date_schedules_and_entry_dates_win(user: User) -> None:
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(second=0, microsecond=0)
    own = later + dt.timedelta(hours=1)
    response = bulk(
        user,
        [{"recipientNumber": "+27821234567", "message": "a"},
         {"recipientNumber": "+27821234567", "message": "b", "dateToSend": own.strftime("%Y%m%d%H%M")}],
        defaultDateToSend=later.strftime("%Y%m%d%H%M"),
    )
    first, second = (user.message(r["messageId"]) for r in response.json()["sendSmsResponses"])
    assert first["messageStatus"] == second["messageStatus"] == "SCHEDULED"
    assert first["dateTimeScheduled"] == later.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert second["dateTimeScheduled"] == own.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert bulk(user, [], defaultDateToSend="soon").json()["code"] == 6


def test_messages_per_minute_paces_the_sends(user: User) -> None:
    entries = [{"recipientNumber": "+27821234567", "message": f"m{i}"} for i in range(4)]
    response = bulk(user, entries, messagesPerMinute=6)
    times = [
        dt.datetime.strptime(user.message(r["messageId"])["dateTimeScheduled"], "%Y-%m-%dT%H:%M:%SZ")
        for r in response.json()["sendSmsResponses"]
    ]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    assert all(9 <= gap <= 11 for gap in gaps), gaps
    first = response.json()["sendSmsResponses"][0]["messageId"]
    user.wait_status(first, "DELIVERED")
    assert user.message(response.json()["sendSmsResponses"][3]["messageId"])["messageStatus"] == "SCHEDULED"
    assert bulk(user, entries, messagesPerMinute=-1).json()["code"] == 1


def test_bad_bulk_bodies(user: User) -> None:
    assert bulk(user, "not a list").json()["code"] == 1
    too_many = [{"recipientNumber": "+27821234567", "message": "x"}] * 10_001
    assert bulk(user, too_many).status_code == 400
    empty = user.http.post(f"{API}/sms/send-bulk", json={})
    assert empty.status_code == 200 and empty.json() == {"sendSmsResponses": []}
    assert user.balance() == 100.0


def test_send_url_parameters_by_get_and_post(user: User) -> None:
    got = user.http.get(f"{API}/sms/send-url-parameters", params={"recipientNumber": "0821234567", "message": "get", "campaign": "q"})
    assert got.status_code == 200
    found = user.message(got.json())
    assert found["message"] == "get" and found["campaign"] == "q" and found["toNumber"] == "+27821234567"
    posted = user.http.post(f"{API}/sms/send-url-parameters", data={"recipientNumber": "+27821234567", "message": "form"})
    assert posted.status_code == 200 and user.message(posted.json())["message"] == "form"
    missing = user.http.get(f"{API}/sms/send-url-parameters", params={"recipientNumber": "+27821234567"})
    assert missing.status_code == 400 and missing.json()["code"] == 3


def test_xml_request_bodies(user: User) -> None:
    xml = {"content-type": "application/xml"}
    single = user.http.post(
        f"{API}/sms/send.xml", headers=xml,
        content=b"<webServiceSendSmsRequest><recipientNumber>+27821234567</recipientNumber>"
                b"<message>From XML &amp; back</message><campaign/></webServiceSendSmsRequest>",
    )
    assert single.status_code == 200, single.text
    assert user.message(single.text.split("<messageId>")[1].split("<")[0])["message"] == "From XML & back"
    many = user.http.post(
        f"{API}/sms/send-bulk", headers=xml,
        content=b"<webServiceSendSmsRequests>"
                b"<sendSmsRequests><recipientNumber>+27821234567</recipientNumber><message>a</message></sendSmsRequests>"
                b"<sendSmsRequests><recipientNumber>+27821234568</recipientNumber><message>b</message></sendSmsRequests>"
                b"</webServiceSendSmsRequests>",
    )
    assert [r["error"] for r in many.json()["sendSmsResponses"]] == [None, None]
    one = user.http.post(
        f"{API}/sms/send-bulk", headers=xml,
        content=b"<r><sendSmsRequests><recipientNumber>+27821234567</recipientNumber><message>c</message></sendSmsRequests></r>",
    )
    assert len(one.json()["sendSmsResponses"]) == 1
    broken = user.http.post(f"{API}/sms/send", headers=xml, content=b"<unclosed>")
    assert broken.status_code == 400 and broken.json()["code"] == 1
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b"<r><message>&lol2;</message></r>")
    refused = user.http.post(f"{API}/sms/send", headers=xml, content=bomb)
    assert refused.status_code == 400 and refused.json()["code"] == 1
    assert user.balance() == 96.0
