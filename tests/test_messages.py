"""/messages: paging, filters, one message, delete, read and unread; tenants kept apart."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import API, Server, User


def listing(user: User, **params: object) -> dict:
    response = user.http.get(f"{API}/messages/all", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_paging(user: User) -> None:
    ids = [user.send(message=f"m{i}").json()["messageId"] for i in range(5)]
    first = listing(user, pageSize=2)
    assert (first["elements"], first["page"], first["pageSize"], first["totalElements"], first["totalPages"]) == (2, 1, 2, 5, 3)
    pages = [m["messageId"] for p in (1, 2, 3) for m in listing(user, pageSize=2, page=p)["webServiceMessages"]]
    assert pages == ids[::-1]
    beyond = listing(user, pageSize=2, page=4)
    assert beyond["elements"] == 0 and beyond["webServiceMessages"] == []
    assert listing(user)["pageSize"] == 100


@pytest.mark.parametrize("params", [{"page": 0}, {"page": "x"}, {"pageSize": 0}, {"pageSize": 5000},
                                    {"type": "SIDEWAYS"}, {"status": "LOST"}, {"read": "maybe"},
                                    {"fromDateTimeSent": "2026-01-01"}, {"toDateTimeReceived": "yesterday"}])
def test_bad_listing_parameters_are_400(user: User, params: dict) -> None:
    response = user.http.get(f"{API}/messages/all", params=params)
    assert response.status_code == 400
    assert response.json()["code"] in (1, 6)


def test_filters(user: User) -> None:
    a = user.send("+27821234567", "Apples and pears", campaign="fruit", dataField="d1").json()["messageId"]
    b = user.send("+27821234568", "Bananas", campaign="fruit").json()["messageId"]
    c = user.send("+27821234666", "Carrots", campaign="veg").json()["messageId"]
    user.wait_status(a, "DELIVERED")
    user.wait_status(c, "FAILED_REFUNDED")

    def ids(**params: object) -> set[str]:
        return {m["messageId"] for m in listing(user, **params)["webServiceMessages"]}

    assert ids(campaign="fruit") == {a, b}
    assert ids(dataField="d1") == {a}
    assert ids(toNumber="0821234568") == {b}
    assert ids(message="apples") == {a}
    assert ids(message="%") == set()
    assert ids(status="FAILED_REFUNDED") == {c}
    assert ids(type="OUTBOUND") == {a, b, c}
    assert ids(type="INBOUND") == set()
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y%m%d")
    assert ids(fromDateTimeSent=today, toDateTimeSent=today) == {a, b, c}
    assert ids(fromDateTimeSent=tomorrow) == set()


def test_one_message_and_tenancy(user: User, other: User) -> None:
    mine = user.send().json()["messageId"]
    assert user.message(mine)["messageId"] == mine
    for method, path in (("GET", ""), ("DELETE", ""), ("PUT", "/markRead"), ("POST", "/markUnread")):
        response = other.http.request(method, f"{API}/messages/{mine}{path}")
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == 7
    assert other.http.get(f"{API}/messages/all").json()["totalElements"] == 0
    assert user.http.get(f"{API}/messages/nonexistent").status_code == 404
    assert user.message(mine)["deleted"] is False


def test_mark_read_and_unread(user: User) -> None:
    message_id = user.send().json()["messageId"]
    assert user.http.put(f"{API}/messages/{message_id}/markRead").json()["read"] is True
    assert listing(user, read="true")["totalElements"] == 1
    assert user.http.post(f"{API}/messages/{message_id}/markUnread").json()["read"] is False
    assert user.http.post(f"{API}/messages/{message_id}/markRead").json()["read"] is True
    assert user.http.put(f"{API}/messages/{message_id}/markUnread").json()["read"] is False
    assert listing(user, read="true")["totalElements"] == 0


def test_delete_hides_and_cancels_a_scheduled_send(user: User) -> None:
    sent = user.send().json()["messageId"]
    user.wait_status(sent, "DELIVERED")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y%m%d%H%M")
    scheduled = user.send(dateToSend=later).json()["messageId"]
    assert user.balance() == 98.0
    assert user.http.delete(f"{API}/messages/{sent}").status_code == 200
    assert user.http.delete(f"{API}/messages/{scheduled}").status_code == 200
    assert listing(user)["totalElements"] == 0
    deleted = {m["messageId"]: m for m in listing(user, deleted="true")["webServiceMessages"]}
    assert deleted[sent]["messageStatus"] == "DELIVERED" and deleted[sent]["deleted"] is True
    assert deleted[scheduled]["messageStatus"] == "FAILED_REFUNDED"
    assert user.balance() == 99.0


@pytest.mark.parametrize(("params", "code"), [
    ({"page": "100000000000000000000"}, 1),
    ({"page": "1000001"}, 1),
    ({"toDateTimeSent": "99991231"}, 6),
    ({"toDateTimeReceived": "99991231"}, 6),
])
def test_values_out_of_range_are_refused_not_crashed_on(user: User, params: dict, code: int) -> None:
    answer = user.http.get(f"{API}/messages/all", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code


def test_a_nul_character_is_refused_where_the_database_cannot_hold_it(user: User, server: Server) -> None:
    answer = user.http.get(f"{API}/messages/all", params={"campaign": "nul\x00byte"})
    if server.database_url.startswith("sqlite"):
        assert answer.status_code == 200  # SQLite holds NUL in text
    else:
        assert answer.status_code == 400 and answer.json()["code"] == 1, answer.text


def test_a_date_at_the_edge_of_the_calendar_is_an_invalid_date_in_any_zone() -> None:
    from pigeon.errors import Invalid, Reason
    from pigeon.localtime import parse_local

    with pytest.raises(Invalid, match="fromDateTimeSent") as refused:
        parse_local("00010101", "%Y%m%d", "Asia/Tokyo", "fromDateTimeSent")  # the year 0 in UTC
    assert refused.value.reason == Reason.INVALID_DATE
    assert parse_local("00010102", "%Y%m%d", "Asia/Tokyo", "f").year == 1
