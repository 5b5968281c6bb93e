"""The six /messages/analyse endpoints: bare values, and `full` an object."""

from __future__ import annotations

import pytest

from conftest import API, User

CASES = [
    # message, encoding, length, parts
    ("hello", "GSM7", 5, 1),
    ("a" * 160, "GSM7", 160, 1),
    ("a" * 161, "GSM7", 161, 2),
    ("€" * 3, "GSM7", 6, 1),
    ("ж" * 70, "UCS2", 70, 1),
    ("ж" * 71, "UCS2", 71, 2),
    ("😀", "UCS2", 2, 1),
    ("", "GSM7", 0, 0),
]


def analyse(user: User, what: str, message: str | None, number: str | None = "+27821234567"):  # type: ignore[no-untyped-def]
    return user.http.post(f"{API}/messages/analyse/{what}", json={"message": message, "recipientNumber": number})


@pytest.mark.parametrize(("message", "encoding", "length", "parts"), CASES)
def test_bare_values(user: User, message: str, encoding: str, length: int, parts: int) -> None:
    assert analyse(user, "message-encoding", message).json() == encoding
    assert analyse(user, "message-length", message).json() == length
    assert analyse(user, "number-of-messages", message).json() == parts
    assert analyse(user, "message-credit-cost", message).json() == float(parts)
    assert analyse(user, "message-length-within-max-allowed", message).json() is True


def test_full_and_prices(user: User) -> None:
    full = analyse(user, "full", "Hi ж", "+12025550143").json()
    assert full == {
        "characterAnalysis": [["H", 1, "GSM7"], ["i", 1, "GSM7"], [" ", 1, "GSM7"], ["ж", 1, "UCS2"]],
        "messageCreditCost": 0.5,
        "messageEncoding": "UCS2",
        "messageLength": 4,
        "messageLengthWithinMaximumAllowed": True,
        "numberOfMessages": 1,
    }
    assert analyse(user, "message-credit-cost", "a" * 161, None).json() == 2.0
    assert analyse(user, "message-length-within-max-allowed", "a" * 1531).json() is False


def test_bad_analysis_requests(user: User) -> None:
    assert analyse(user, "message-credit-cost", "hi", "not a number").json()["code"] == 2
    assert analyse(user, "full", None).json()["code"] == 3
    assert user.http.post(f"{API}/messages/analyse/message-length", json={"message": ["x"]}).json()["code"] == 1
    xml = user.http.post(f"{API}/messages/analyse/number-of-messages.xml", json={"message": "hi"})
    assert xml.content.endswith(b"<int>1</int>")
