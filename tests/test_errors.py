"""One set of error kinds in the core, one table per dialect, each dialect its own sub-application.

The table is checked whole (every kind and reason has a Zoom Connect code); then every kind is
provoked over HTTP, in one mix, in JSON and in XML; then the edges outside the dialect, the
single OpenAPI document, the team's policy, amounts of credits, and the command line's table.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace
from xml.etree import ElementTree

import httpx
import pytest
from sqlalchemy import update
from starlette.exceptions import HTTPException

from conftest import API, Server, User, make_user
from pigeon import credits
from pigeon.accounts import policy
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import Principal
from pigeon.api.errors import STATUS
from pigeon.api.zoomconnect.errors import KINDS, REASONS, Code, code_of
from pigeon.db import Database
from pigeon.errors import (
    Conflict,
    Forbidden,
    InsufficientCredits,
    Invalid,
    Kind,
    NotFound,
    PigeonError,
    Reason,
    TooMany,
    Unavailable,
)

ERRORS = [Invalid("x"), NotFound("x"), Conflict("x"), Forbidden("x"), InsufficientCredits("x"), Unavailable("x"),
          TooMany("x", retry_after=3)]


# -- the table -------------------------------------------------------------------------------

def test_every_kind_has_one_error_class_and_a_status() -> None:
    assert sorted(e.kind for e in ERRORS) == sorted(Kind)
    assert set(STATUS) == set(Kind)
    assert all(isinstance(e, PigeonError) for e in ERRORS)


def test_zoom_connect_has_a_code_for_every_kind_and_every_reason() -> None:
    assert set(KINDS) == set(Kind), "a kind with no Zoom Connect code would answer 500"
    assert set(REASONS) == set(Reason), "a reason Zoom Connect does not tell apart is answered as its kind"
    for error in ERRORS:
        assert code_of(error) == (KINDS[error.kind], STATUS[error.kind])
    assert code_of(Invalid("x", Reason.INVALID_NUMBER)) == (Code.INVALID_NUMBER, 400)
    assert code_of(Invalid("x", Reason.TOO_LONG)) == (Code.MESSAGE_TOO_LONG, 400)
    assert code_of(Conflict("x", Reason.KEY_REUSED)) == (Code.DUPLICATE, 422)
    assert code_of(HTTPException(401)) == (Code.UNAUTHORIZED, 401)
    assert code_of(HTTPException(413)) == (Code.INVALID_REQUEST, 413)


# -- every kind over HTTP, in one mix --------------------------------------------------------

def _provoke(server: Server, admin: User, member: User, poor: User, suffix: str) -> dict[str, httpx.Response]:
    """One request per kind (and per reason Zoom Connect tells apart), in the given format."""
    group = admin.http.post(f"{API}/groups/create.json", json={"name": "Mix"}).json()
    assert group["groupId"]
    send = f"{API}/sms/send{suffix}"
    return {
        "invalid": admin.http.post(f"{API}/groups/create{suffix}", json={"name": " "}),
        "invalid_number": admin.http.post(send, json={"recipientNumber": "12", "message": "hi"}),
        "empty_message": admin.http.post(send, json={"recipientNumber": "+27821234567", "message": " "}),
        "too_long": admin.http.post(send, json={"recipientNumber": "+27821234567", "message": "x" * 10_000}),
        "invalid_date": admin.http.post(send, json={"recipientNumber": "+27821234567", "message": "hi",
                                                    "dateToSend": "tomorrow"}),
        "not_found": admin.http.get(f"{API}/messages/{'0' * 24}{suffix}"),
        "conflict": admin.http.post(f"{API}/groups/create{suffix}", json={"name": "Mix"}),
        "forbidden": member.http.put(f"{API}/account/user{suffix}", json={"emailAddress": "x@example.com"}),
        "insufficient_credits": poor.http.post(send, json={"recipientNumber": "+27821234567", "message": "hi"}),
        "unauthorized": httpx.get(f"{server.url}{API}/account/balance{suffix}",
                                  headers={"email": admin.email, "token": "wrong"}),
        "no_route": admin.http.get(f"{API}/no/such/thing{suffix}"),
        "method": admin.http.delete(f"{API}/sms/send{suffix}"),
    }


EXPECTED = {
    "invalid": (400, 1), "invalid_number": (400, 2), "empty_message": (400, 3), "too_long": (400, 4),
    "invalid_date": (400, 6), "not_found": (404, 7), "conflict": (409, 12), "forbidden": (403, 13),
    "insufficient_credits": (402, 5), "unauthorized": (401, 8), "no_route": (404, 7), "method": (405, 10),
}


@pytest.mark.parametrize("suffix", [".json", ".xml"])
def test_every_kind_is_answered_in_the_dialects_format(db: Database, server: Server, user: User, suffix: str) -> None:
    member = make_user(db, server)
    with db.write() as session:  # a user who administers nothing
        session.execute(update(UserRow).where(UserRow.id == member.user_id).values(is_admin=False))
    poor = make_user(db, server, credits=0)
    answers = _provoke(server, user, member, poor, suffix)
    for name, response in answers.items():
        status, code = EXPECTED[name]
        assert response.status_code == status, (name, response.text)
        if suffix == ".json":
            body = response.json()
            assert body["code"] == code and body["developerMessage"] and body["message"], (name, body)
        else:
            root = ElementTree.fromstring(response.content)
            assert root.tag == "restErrorDTO" and root.findtext("code") == str(code), (name, response.text)
    # nothing refused was written: no message for anyone, one group
    for caller in (user, poor):
        assert caller.http.get(f"{API}/messages/all.json").json()["totalElements"] == 0
    assert len(user.http.get(f"{API}/groups/all.json").json()["webServiceGroups"]) == 1


def test_outside_every_dialect_refusals_are_plain(server: Server) -> None:
    for path in ("/app/nothing", "/app/api/rest/v2/sms/send", "/nothing"):
        answer = httpx.get(f"{server.url}{path}")
        assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}, (path, answer.text)
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    wrong = httpx.post(f"{server.url}/health")
    assert wrong.status_code == 405 and "detail" in wrong.json()


def test_one_openapi_document_describes_the_mounted_dialect(server: Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"email", "token", "basic", "emailParam", "tokenParam"}
    assert spec["paths"][f"{API}/sms/send"]["post"]["security"]
    assert "security" not in spec["paths"][f"{API}/sms/send-url/{{token}}"]["post"]
    assert not any(path.startswith("/sms/") for path in spec["paths"])  # every dialect path under its prefix
    assert "SendSmsRequest" in spec["components"]["schemas"]


# -- the team's policy (pure) ----------------------------------------------------------------

def _row(user_id: int, account_id: int) -> SimpleNamespace:
    return SimpleNamespace(id=user_id, account_id=account_id)


ADMIN = Principal(1, 10, "a@example.com", True)
MEMBER = Principal(2, 10, "m@example.com", False)


def test_who_reaches_whom() -> None:
    mate, stranger = _row(3, 10), _row(4, 11)
    assert policy.reach(ADMIN, mate, "3") is mate
    assert policy.reach(MEMBER, _row(2, 10), "2").id == 2
    with pytest.raises(Forbidden):
        policy.reach(MEMBER, mate, "3")
    for caller in (ADMIN, MEMBER):  # another team's user, like none, does not exist for the caller
        with pytest.raises(NotFound, match="No user 4 in your team"):
            policy.reach(caller, stranger, "4")
        with pytest.raises(NotFound):
            policy.reach(caller, None, "5")
    assert [u.id for u in policy.visible(MEMBER, [_row(1, 10), _row(2, 10), mate])] == [2]
    assert len(policy.visible(ADMIN, [_row(1, 10), _row(2, 10), mate])) == 3
    policy.may_create_users(ADMIN)
    with pytest.raises(Forbidden):
        policy.may_create_users(MEMBER)
    policy.may_spend(MEMBER, _row(2, 10))
    policy.may_spend(ADMIN, mate)
    with pytest.raises(Forbidden):
        policy.may_spend(MEMBER, mate)


@pytest.mark.parametrize("value,whole,zero,milli", [
    (10, True, False, 10_000), ("10", True, False, 10_000), (" 2.5 ", False, False, 2_500), (0.001, False, False, 1),
    (0, False, True, 0), ("0", True, True, 0), (2**31 - 1, True, False, (2**31 - 1) * 1000),
])
def test_amounts_of_credits(value: object, whole: bool, zero: bool, milli: int) -> None:
    assert credits.amount(value, "n", whole=whole, allow_zero=zero) == milli


@pytest.mark.parametrize("value,whole", [
    (0, True), (-1, True), (1.5, True), ("1e999", False), ("nan", False), ("inf", False), (True, True), (None, True),
    ([1], True), (0.0001, False), (2**31, True), ("ten", True), ("", True),
])
def test_amounts_refused(value: object, whole: bool) -> None:
    with pytest.raises(Invalid, match="^n must be"):
        credits.amount(value, "n", whole=whole)


# -- the command line's table ---------------------------------------------------------------

def test_a_refusal_on_the_command_line_is_one_clean_line(server: Server, user: User) -> None:
    def pigeon(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pigeon", *args], env=server.env, cwd=server.workdir,
                              capture_output=True, text=True, timeout=60)

    for args, said in [
        (("account", "settings", "--email", user.email, "--secret", "short"), "8 to 255 characters"),
        (("account", "settings", "--email", user.email, "--reply-url", "ftp://x"), "http:// or https://"),
        (("send-group", "--email", user.email, "--group", "none", "--message", "hi", "--at", "soon"), "--at must be"),
        (("templates", "create", "--email", user.email, "--name", "t", "--text", "{{nope}}"), "Unknown placeholder"),
    ]:
        done = pigeon(*args)
        assert done.returncode == 1 and said in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and done.stderr.startswith("Error: "), done.stderr


# -- the fast hand-over to a dialect agrees with its Mount ------------------------------------

def test_dialects_hand_over_as_the_mount_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from pigeon.accounts.service import create_account
    from pigeon.api.app import create_app
    from pigeon.api.dialects import Dialects
    from pigeon.config import Settings
    from pigeon.migrations import upgrade
    from pigeon.runtime import Runtime

    url = f"sqlite:///{tmp_path / 'mount.db'}"
    db = Database(url)
    upgrade(db)
    with db.write() as session:
        new = create_account(session, "mount@example.com", credits=3)
    settings = Settings(_env_file=None, database_url=url, demo_account=False)
    fast = create_app(settings, runtime=Runtime(settings, db=Database(url)), deliver=False)
    mounted = create_app(settings, runtime=Runtime(settings, db=Database(url)), deliver=False)
    assert any(m.cls is Dialects for m in fast.user_middleware)
    mounted.user_middleware = [m for m in mounted.user_middleware if m.cls is not Dialects]
    signed = {"email": new.user.email, "token": new.token}
    asks = [("GET", f"{API}/account/balance", signed), ("GET", f"{API}/account/balance.xml", signed),
            ("GET", f"{API}/account/balance", {}), ("GET", f"{API}/no/such", signed), ("DELETE", f"{API}/sms/send", signed),
            ("GET", f"{API}/messages/all?pageSize=0", signed), ("GET", "/health", {}), ("GET", "/app/x", {}),
            ("GET", API, signed), ("GET", API + "x/account/balance", signed)]
    with TestClient(fast) as a, TestClient(mounted) as b:
        for method, path, headers in asks:
            one, two = a.request(method, path, headers=headers), b.request(method, path, headers=headers)
            assert (one.status_code, one.content) == (two.status_code, two.content), (method, path)
        assert a.get(f"{API}/account/balance", headers=signed).json()["creditBalance"] == 3
    db.dispose()


# -- faults an operator's trial found, in mixes ------------------------------------------------

def test_a_nul_character_is_refused_per_message_on_every_database(user: User) -> None:
    send = f"{API}/sms/send.json"
    for field in ("message", "campaign", "dataField"):
        body = {"recipientNumber": "+27821234567", "message": "hi", field: "a\x00b"}
        answer = user.http.post(send, json=body)
        assert answer.status_code == 400 and answer.json()["code"] == 1, (field, answer.text)
        assert f"{field} cannot contain a NUL" in answer.json()["developerMessage"]
        keyed = user.http.post(send, json=body, headers={"Idempotency-Key": f"nul-{field}"})
        assert keyed.status_code == 400, keyed.text
    bulk = user.http.post(f"{API}/sms/send-bulk.json", json={"sendSmsRequests": [
        {"recipientNumber": "+27821234567", "message": "good one"},
        {"recipientNumber": "+27821234568", "message": "n\x00ul"},
        {"recipientNumber": "+27821234569", "message": "good two", "campaign": "c\x00"},
        {"recipientNumber": "+27821234570", "message": "good three"},
    ]})
    assert bulk.status_code == 200, bulk.text
    results = bulk.json()["sendSmsResponses"]
    assert [bool(r["messageId"]) for r in results] == [True, False, False, True]
    assert "NUL" in results[1]["error"] and "campaign" in results[2]["error"]
    url = user.http.post(f"{API}/sms/send-url-parameters.json",
                         params={"recipientNumber": "+27821234567", "message": "hi", "campaign": "a\x00b"})
    assert url.status_code == 400 and url.json()["code"] == 1, url.text
    assert user.http.get(f"{API}/messages/all.json").json()["totalElements"] == 2
    assert user.http.get(f"{API}/messages/a%00b.json").json()["code"] == 7


def test_an_item_its_model_refuses_fails_alone(user: User) -> None:
    items = [{"recipientNumber": "+27821234567", "message": "good"}, {"recipientNumber": True, "message": "x"},
             {"recipientNumber": ["+27821234568"], "message": "x"}, {"recipientNumber": "+27821234569", "message": {}},
             "not an object", None, {"recipientNumber": "+27821234570", "message": "good too"}]
    for suffix in (".json", ""):  # the lean route and the full one (no suffix, same JSON)
        answer = user.http.post(f"{API}/sms/send-bulk{suffix}", json={"sendSmsRequests": items},
                                headers={"Accept": "application/json"})
        assert answer.status_code == 200, answer.text
        results = answer.json()["sendSmsResponses"]
        assert [bool(r["messageId"]) for r in results] == [True, False, False, False, False, False, True]
        assert "recipientNumber" in results[1]["error"] and "message" in results[3]["error"]
    assert user.http.get(f"{API}/messages/all.json").json()["totalElements"] == 4


def test_one_idempotency_key_only(user: User) -> None:
    answer = user.http.post(f"{API}/sms/send.json", json={"recipientNumber": "+27821234567", "message": "hi"},
                            headers=[("Idempotency-Key", "k1"), ("Idempotency-Key", "k2")])
    assert answer.status_code == 400 and "one Idempotency-Key" in answer.json()["developerMessage"], answer.text
    assert user.http.get(f"{API}/messages/all.json").json()["totalElements"] == 0


def test_a_body_that_is_not_json_says_so(user: User) -> None:
    answer = user.http.post(f"{API}/sms/send.json", content=b'{"recipientNumber": ',
                            headers={"Content-Type": "application/json"})
    said = answer.json()["developerMessage"]
    assert answer.status_code == 400 and said.startswith("Invalid request: the body is not valid JSON"), said
