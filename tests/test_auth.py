"""Authentication: headers, HTTP Basic, URL parameters, the URL-sending token; and 401s."""

from __future__ import annotations

import httpx

from conftest import API, Server, User


def test_three_ways_to_authenticate(server: Server, user: User) -> None:
    with httpx.Client(base_url=server.url) as anon:
        by_headers = anon.get(f"{API}/account/balance", headers={"email": user.email, "token": user.token})
        by_basic = anon.get(f"{API}/account/balance", auth=(user.email, user.token))
        by_params = anon.get(f"{API}/account/balance", params={"email": user.email, "token": user.token})
        upper_email = anon.get(f"{API}/account/balance", auth=(user.email.upper(), user.token))
    for response in (by_headers, by_basic, by_params, upper_email):
        assert response.status_code == 200 and response.json()["creditBalance"] == 100.0


def test_bad_or_missing_credentials_get_401_in_the_dialect_format(server: Server, user: User, other: User) -> None:
    attempts = [
        {},
        {"headers": {"email": user.email}},
        {"headers": {"email": user.email, "token": "wrong"}},
        {"headers": {"email": user.email, "token": other.token}},
        {"headers": {"email": "nobody@example.com", "token": user.token}},
        {"auth": (user.email, "wrong")},
        {"headers": {"authorization": "Basic !!!notbase64"}},
        {"params": {"email": user.email, "token": ""}},
    ]
    with httpx.Client(base_url=server.url) as anon:
        for attempt in attempts:
            for method, path in (("GET", "/account/balance"), ("POST", "/sms/send"), ("GET", "/messages/all")):
                response = anon.request(method, API + path, **attempt)
                assert response.status_code == 401, (attempt, path)
                body = response.json()
                assert body["code"] == 8 and body["status"] == "UNAUTHORIZED" and body["developerMessage"]
    assert user.balance() == 100.0


def test_send_url_token_needs_no_other_credentials(server: Server, user: User) -> None:
    with httpx.Client(base_url=server.url) as anon:
        sent = anon.get(f"{API}/sms/send-url/{user.url_token}", params={"recipientNumber": "+27821234567", "message": "by url"})
        assert sent.status_code == 200
        message_id = sent.json()
        assert user.message(message_id)["message"] == "by url"
        posted = anon.post(f"{API}/sms/send-url/{user.url_token}.json", params={"recipientNumber": "+27821234567", "message": "post"})
        assert posted.status_code == 200 and len(posted.json()) == 24
        refused = anon.get(f"{API}/sms/send-url/{user.token}", params={"recipientNumber": "+27821234567", "message": "x"})
        assert refused.status_code == 401 and refused.json()["code"] == 8
        invalid = anon.get(f"{API}/sms/send-url/{user.url_token}", params={"recipientNumber": "nope", "message": "x"})
        assert invalid.status_code == 400 and invalid.json()["code"] == 2


def test_unknown_path_and_method_answer_in_the_dialect_format(user: User) -> None:
    missing = user.http.get(f"{API}/no/such/thing")
    assert missing.status_code == 404 and missing.json()["code"] == 7
    wrong_method = user.http.delete(f"{API}/sms/send")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == 10


def test_openapi_and_docs_are_served(server: Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert f"{API}/sms/send" in spec["paths"] and f"{API}/messages/all" in spec["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200
