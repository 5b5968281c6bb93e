"""The zoomconnect-sdk client from PyPI, pointed at Pigeon, on every endpoint this issue serves.

It sends the credentials as URL parameters only, a JSON body of ``null`` on GET, and phone
numbers with the ``+`` stripped: Pigeon must take all three.
"""

from __future__ import annotations

import pytest
from zoomconnect_sdk.client import Client

from conftest import Server, User


@pytest.fixture
def client(server: Server, user: User) -> Client:
    return Client(base_url=f"{server.url}/app/", api_token=user.token, account_email=user.email)


def test_balance_and_sends(client: Client, user: User) -> None:
    assert client.get_account_balance()["creditBalance"] == 100.0
    sent = client.send_sms("+27821234567", "Hello from the SDK", campaign="sdk", dataField="d")
    assert sent["error"] is None
    message = user.wait_status(sent["messageId"], "DELIVERED")
    assert message["toNumber"] == "+27821234567" and message["campaign"] == "sdk"
    bulk = client.send_sms_bulk(["27821234568", "27821234569"], "Bulk from the SDK")
    assert [r["error"] for r in bulk["sendSmsResponses"]] == [None, None]
    assert client.get_account_balance()["creditBalance"] == 97.0
    assert set(client.get_sms()) >= {"recipientNumber", "message"}
    assert "sendSmsRequests" in client.get_sms_bulk()


def test_messages(client: Client) -> None:
    message_id = client.send_sms("27821234567", "to be read")["messageId"]
    listing = client.get_all_messages()
    assert listing["totalElements"] == 1 and listing["webServiceMessages"][0]["messageId"] == message_id
    assert client.get_message(message_id)["message"] == "to be read"
    assert client.mark_message_as_read(message_id)["read"] is True
    assert client.mark_message_as_unread(message_id)["read"] is False
    assert client.delete_message(message_id) is True
    assert client.get_all_messages()["totalElements"] == 0
    assert client.get_message("0" * 24)["code"] == 7  # the SDK hands error bodies back as they are


def test_analysis(client: Client) -> None:
    full = client.get_message_analyses("Hello", "27821234567")
    assert full["numberOfMessages"] == 1 and full["messageEncoding"] == "GSM7"
    for call in (client.get_message_credit_cost, client.get_message_encoding, client.get_message_length,
                 client.check_message_length_within_max, client.get_number_of_messages):
        assert call("Hello", "27821234567") is True  # the SDK reports only that the call succeeded


def test_bad_credentials_are_an_error(server: Server, user: User) -> None:
    bad = Client(base_url=f"{server.url}/app/", api_token="wrong", account_email=user.email)
    assert bad.get_account_balance()["code"] == 8
