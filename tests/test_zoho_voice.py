"""The Zoho Voice SMS API over real HTTP, on both databases, as applications call it (no public
client library exists, so these replay what they send): the refresh-token grant, v1 sends with
a status callback, v2 MMS as multipart and as urlencoded ``sms_data``, logs, conversations,
schedules and media streamed back; every refusal with its ZVSMS code and nothing written; and
one platform underneath: a message sent through Zoho shows in Zoom Connect, and back."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select, update
from test_webhooks import Receiver

from conftest import API, Server, User, make_user
from pigeon.accounts.models import User as UserRow
from pigeon.consent import service as consent
from pigeon.db import Database, utcnow
from pigeon.delivery.models import QueueEntry
from pigeon.media.models import Media
from pigeon.messages.models import Message
from pigeon.numbers import service as numbers
from pigeon.oauth import service as oauth
from pigeon.oauth.models import OAuthToken
from pigeon.webhooks.models import WebhookEvent

CREATE, READ = "ZohoVoice.sms.CREATE", "ZohoVoice.sms.READ"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # 10 KiB and a bit, every byte value


@dataclass
class Zoho:
    """A user of its own account with a number, its self-client, and an HTTP client with a token."""

    user: User
    number: str
    account_id: int
    client_id: str
    client_secret: str
    refresh_token: str
    http: httpx.Client

    def send(self, customers: str, message: str = "hello", **extra: object) -> httpx.Response:
        return self.http.post("/rest/json/v1/sms/send",
                              json={"senderId": self.number, "customerNumber": customers, "message": message, **extra})

    def logs(self, **query: object) -> dict:
        answer = self.http.get("/rest/json/v1/sms/logs", params=query)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def entry(self, logid: str) -> dict:
        found = [e for e in self.logs(size=1000)["smsLogQuery"] if e["logid"] == logid]
        assert found, logid
        return found[0]

    def wait(self, logid: str, *statuses: str, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self.entry(logid)
            if found["status"] in statuses:
                return found
            assert time.monotonic() < deadline, found
            time.sleep(0.05)


def phone() -> str:
    return "+1415" + str(2_000_000 + uuid.uuid4().int % 7_000_000)


def code_for(db: Database, user_id: int, *scopes: str) -> tuple[str, str, str]:
    """A self-client of the user and a grant code: (client id, secret, code)."""
    with db.write() as session:
        client = oauth.create_self_client(session, user_id, scopes or (CREATE, READ))
        code = oauth.issue_grant_code(session, client.id, (), utcnow(), dt.timedelta(minutes=5))
    return client.id, client.secret, code


def exchange(server: Server, client_id: str, secret: str, code: str) -> dict:
    answer = httpx.post(f"{server.url}/oauth/v2/token", data={
        "grant_type": "authorization_code", "client_id": client_id, "client_secret": secret, "code": code})
    assert answer.status_code == 200, answer.text
    return answer.json()


def zoho_for(db: Database, server: Server, *scopes: str, credits: float = 100.0) -> Zoho:
    user = make_user(db, server, credits)
    number = phone()
    with db.write() as session:
        account_id = session.get(UserRow, user.user_id).account_id
        numbers.add(session, numbers.Spec(number, mms=True), "US", account_id=account_id)
    client_id, secret, code = code_for(db, user.user_id, *scopes)
    tokens = exchange(server, client_id, secret, code)
    http = httpx.Client(base_url=server.url, headers={"Authorization": f"Zoho-oauthtoken {tokens['access_token']}"},
                        timeout=15)
    return Zoho(user, number, account_id, client_id, secret, tokens.get("refresh_token", ""), http)


@pytest.fixture
def zoho(db: Database, server: Server) -> Zoho:
    z = zoho_for(db, server)
    yield z
    z.http.close()
    z.user.http.close()


def count(db: Database, model: type, **where: object) -> int:
    with db.read() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query)


# -- the replay --------------------------------------------------------------------------------

def test_an_application_refreshes_sends_with_a_callback_sends_mms_reads_logs_and_streams_media_back(
        db: Database, server: Server, zoho: Zoho) -> None:
    # 1. The refresh-token grant, parameters in the query string as Zoho's docs write them.
    fresh = httpx.post(f"{server.url}/oauth/v2/token", params={
        "grant_type": "refresh_token", "client_id": zoho.client_id, "client_secret": zoho.client_secret,
        "refresh_token": zoho.refresh_token})
    assert fresh.status_code == 200, fresh.text
    token = fresh.json()
    assert token["token_type"] and token["expires_in"] > 0 and token["api_domain"].startswith("http")
    app = httpx.Client(base_url=token["api_domain"], headers={"Authorization": f"Zoho-oauthtoken {token['access_token']}",
                                                                "Accept": "application/json"}, timeout=15)

    # 2. A v1 send with a statusCallback whose receiver is down at first.
    receiver = Receiver()
    customer = phone()
    sent = app.post("/rest/json/v1/sms/send", json={
        "senderId": zoho.number, "customerNumber": customer, "message": "Your order shipped",
        "statusCallback": receiver.url + "&zapikey=1003.secret"})
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["code"] == "ZVSMS-2000" and body["status"] == "SUCCESS"
    send = body["send"]
    assert send["status"] == "IN_QUEUE" and send["multipartCount"] == 1 and send["messageType"] == "OUTGOING"
    assert send["customerNumber"].replace(" ", "") == customer and send["country"] == "us"
    assert send["email"] == zoho.user.email and isinstance(send["submittedTime"], int) and send["logid"]
    logid = send["logid"]
    zoho.wait(logid, "DELIVERED")
    time.sleep(1.0)  # the callbacks are tried, and fail, while the receiver is down
    with db.read() as session:
        waiting = session.scalars(select(WebhookEvent).where(WebhookEvent.message_id == logid)).all()
        assert {e.kind for e in waiting} == {"CALLBACK"} and all(e.attempts >= 1 for e in waiting)
    receiver.start()
    try:
        posts = receiver.wait(lambda p: {json.loads(q["body"])["status"] for q in p} >= {"SENT", "DELIVERED"})
    finally:
        receiver.stop()
    for post in posts:
        assert post["query"] == {"source": "pigeon", "zapikey": "1003.secret"}, "the URL's own query string is kept"
        assert post["headers"]["Content-Type"] == "application/json"
        entry = json.loads(post["body"])
        assert entry["logid"] == logid and entry["customerNumber"].replace(" ", "") == customer
        assert entry["statusDescription"]
    assert sorted(json.loads(p["body"])["status"] for p in posts) == ["DELIVERED", "SENT"], "each change once"

    # 3. A v2 MMS as multipart: sms_data and a file.
    mms = app.post("/rest/json/v2/sms/send", data={"sms_data": json.dumps(
        {"customerNumber": customer, "message": "See the picture", "senderId": zoho.number, "mms": True})},
        files={"mms_media": ("photo.png", PNG, "image/png")})
    assert mms.status_code == 200, mms.text
    mms_send = mms.json()["send"]
    assert mms_send["isMMS"] is True and len(mms_send["mmsMeta"]) == 1
    meta = mms_send["mmsMeta"][0]
    assert meta["fileName"] == "photo.png" and int(meta["fileSize"]) == len(PNG) and meta["mmsId"]
    # ... and as urlencoded sms_data with no file: an SMS
    plain = app.post("/rest/json/v2/sms/send", data={"sms_data": json.dumps(
        {"customerNumber": customer, "message": "And a text", "senderId": zoho.number})})
    assert plain.status_code == 200, plain.text
    assert plain.json()["send"]["isMMS"] is False

    # 4. Logs with meta.total, messageType in any case.
    zoho.wait(mms_send["logid"], "DELIVERED")
    logs = app.get("/rest/json/v1/sms/logs", params={"messageType": "All", "customerNumber": customer}).json()
    assert logs["meta"]["total"] == 3 and len(logs["smsLogQuery"]) == 3
    assert [e["logid"] for e in logs["smsLogQuery"]] == [plain.json()["send"]["logid"], mms_send["logid"], logid]
    logged_mms = logs["smsLogQuery"][1]
    assert logged_mms["isMMS"] is True and logged_mms["mmsMeta"][0]["mmsId"] == meta["mmsId"]
    assert logged_mms["isBlocked"] is False and logged_mms["status"] == "DELIVERED"

    # 5. The media streamed back, byte for byte, whole and a range.
    whole = app.get("/rest/json/v2/sms/stream/mms", params={"id": meta["mmsId"], "mode": "download"})
    assert whole.status_code == 200 and whole.content == PNG
    assert whole.headers["content-type"] == "image/png" and whole.headers["content-disposition"].startswith("attachment")
    part = app.get("/rest/json/v2/sms/stream/mms", params={"id": meta["mmsId"], "mode": "preview"},
                   headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206 and part.content == PNG[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(PNG)}"
    assert part.headers["content-disposition"].startswith("inline")


# -- one platform --------------------------------------------------------------------------------

def test_a_message_sent_through_zoho_shows_in_zoom_connect_and_back(zoho: Zoho) -> None:
    customer = phone()
    via_zoho = zoho.send(customer, "from zoho").json()["send"]["logid"]
    via_zoom = zoho.user.send(customer, "from zoom connect").json()["messageId"]
    zoho.user.wait_status(via_zoho, "DELIVERED")
    listed = zoho.user.http.get(f"{API}/messages/all").json()["webServiceMessages"]
    assert {m["messageId"] for m in listed} >= {via_zoho, via_zoom}
    assert [m for m in listed if m["messageId"] == via_zoho][0]["message"] == "from zoho"
    entry = zoho.wait(via_zoom, "DELIVERED")
    assert entry["message"] == "from zoom connect" and entry["messageType"] == "OUTGOING"


# -- refusals: each its code, nothing written ---------------------------------------------------------

def _refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["status"] == "ERROR" and body["code"] == code and body["message"], body


def test_every_refusal_has_its_code_and_writes_nothing(db: Database, server: Server, zoho: Zoho) -> None:
    before = count(db, Message, user_id=zoho.user.user_id)
    media_before = count(db, Media, account_id=zoho.account_id)
    eleven = ",".join(phone() for _ in range(11))
    _refused(zoho.send(eleven), 400, "ZVSMS-4011")
    _refused(zoho.send(phone(), senderId=phone()), 400, "ZVSMS-4012")
    _refused(zoho.send("not a number"), 400, "ZVSMS-4010")
    _refused(zoho.send(f"{phone()},12"), 400, "ZVSMS-4010")
    _refused(zoho.send(phone(), ""), 400, "ZVSMS-4014")
    _refused(zoho.send(phone(), "x" * 2000), 400, "ZVSMS-4015")
    _refused(zoho.send(phone(), dataCoding=7), 400, "ZVSMS-4016")
    _refused(zoho.send(phone(), "ünïcode", dataCoding=0), 400, "ZVSMS-4016")
    _refused(zoho.send(phone(), "zz", dataCoding=1), 400, "ZVSMS-4016")
    _refused(zoho.send(phone(), validityPeriod=14_401), 400, "ZVSMS-4017")
    _refused(zoho.send(phone(), scheduledTime="tomorrow"), 400, "ZVSMS-4018")
    _refused(zoho.send(phone(), scheduledTime="2030-01-01 10:00:00", timeZone="Mars/Olympus"), 400, "ZVSMS-4018")
    _refused(zoho.send(phone(), statusCallback="ftp://example.com/x"), 400, "ZVSMS-4019")
    _refused(zoho.http.post("/rest/json/v1/sms/send", content=b"{not json", headers={"Content-Type": "application/json"}),
             400, "ZVSMS-4027")
    # an opted-out customer among others: the whole send is refused
    out = phone()
    with db.write() as session:
        consent.set_consent(session, zoho.account_id, f"number:{zoho.number}", out, out=True, how="test",
                            now=utcnow())
    _refused(zoho.send(f"{phone()},{out}"), 400, "ZVSMS-4013")
    # an oversize file, a type not allowed, too many files
    big = b"\0" * 5_000_001
    _refused(zoho.http.post("/rest/json/v2/sms/send", data={"sms_data": f'{{"customerNumber": "{phone()}", '
                                                                         f'"message": "m", "senderId": "{zoho.number}"}}'},
                            files={"mms_media": ("big.png", big, "image/png")}), 400, "ZVSMS-4020")
    _refused(zoho.http.post("/rest/json/v2/sms/send", data={"sms_data": f'{{"customerNumber": "{phone()}", '
                                                                         f'"message": "m", "senderId": "{zoho.number}"}}'},
                            files={"mms_media": ("run.exe", b"MZ", "application/x-msdownload")}), 400, "ZVSMS-4020")
    # MMS from a number without the MMS capability
    sms_only = phone()
    with db.write() as session:
        numbers.add(session, numbers.Spec(sms_only), "US", account_id=zoho.account_id)
    _refused(zoho.http.post("/rest/json/v2/sms/send", data={"sms_data": f'{{"customerNumber": "{phone()}", '
                                                                         f'"message": "m", "senderId": "{sms_only}"}}'},
                            files={"mms_media": ("a.png", PNG, "image/png")}), 400, "ZVSMS-4012")
    # a wrong scope, an unknown or expired token
    reader = zoho_for(db, server, READ)
    _refused(reader.send(phone()), 403, "ZVSMS-4003")
    _refused(httpx.post(f"{server.url}/rest/json/v1/sms/send", headers={"Authorization": "Zoho-oauthtoken nope"},
                        json={"customerNumber": phone(), "message": "m"}), 401, "ZVSMS-4001")
    with db.write() as session:
        session.execute(update(OAuthToken).where(OAuthToken.user_id == reader.user.user_id)
                        .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    _refused(reader.http.get("/rest/json/v1/sms/logs"), 401, "ZVSMS-4001")
    assert count(db, Message, user_id=zoho.user.user_id) == before, "no refused send wrote a message"
    assert count(db, Media, account_id=zoho.account_id) == media_before, "nor any media"
    assert zoho.user.balance() == 100.0, "nor charged anything"


def test_another_accounts_media_is_not_found(db: Database, server: Server, zoho: Zoho) -> None:
    sent = zoho.http.post("/rest/json/v2/sms/send", data={"sms_data": f'{{"customerNumber": "{phone()}", '
                                                                       f'"message": "pic", "senderId": "{zoho.number}"}}'},
                          files={"mms_media": ("a.png", PNG, "image/png")})
    assert sent.status_code == 200, sent.text
    mms_id = sent.json()["send"]["mmsMeta"][0]["mmsId"]
    stranger = zoho_for(db, server)
    _refused(stranger.http.get("/rest/json/v2/sms/stream/mms", params={"id": mms_id}), 404, "ZVSMS-4004")
    _refused(stranger.http.get("/rest/json/v2/sms/stream/mms", params={"id": str(uuid.uuid4())}), 404, "ZVSMS-4004")
    assert zoho.http.get("/rest/json/v2/sms/stream/mms", params={"id": mms_id}).content == PNG


# -- logs, conversations, schedules ---------------------------------------------------------------------

def test_a_send_to_several_numbers_returns_each_and_logs_filter_and_page(db: Database, server: Server,
                                                                         zoho: Zoho) -> None:
    customers = [phone() for _ in range(3)] + ["+447400123456"]
    sent = zoho.send(",".join(customers), "to four")
    assert sent.status_code == 200, sent.text
    sends = sent.json()["sends"]
    assert [s["customerNumber"].replace(" ", "") for s in sends] == customers
    assert sent.json()["send"] == sends[0]
    assert zoho.logs()["meta"]["total"] == 4
    assert zoho.logs(country="gb")["meta"]["total"] == 1
    assert zoho.logs(country="US", size=2)["meta"]["total"] == 3 and len(zoho.logs(country="US", size=2)["smsLogQuery"]) == 2
    every = [e["logid"] for e in zoho.logs()["smsLogQuery"]]
    assert sorted(every) == sorted(s["logid"] for s in sends)
    assert [e["logid"] for e in zoho.logs(**{"from": 1, "size": 2})["smsLogQuery"]] == every[1:3]
    assert zoho.logs(messageType="INCOMING")["meta"]["total"] == 0
    assert zoho.logs(messageType="outgoing")["meta"]["total"] == 4
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert zoho.logs(fromDate=today, toDate=today)["meta"]["total"] == 4
    assert zoho.logs(fromDate="2001-01-01", toDate="2001-01-02")["meta"]["total"] == 0
    _refused(zoho.http.get("/rest/json/v1/sms/logs", params={"messageType": "sideways"}), 400, "ZVSMS-4027")
    _refused(zoho.http.get("/rest/json/v1/sms/logs", params={"fromDate": "01/02/2024"}), 400, "ZVSMS-4018")
    # an inbound reply is INCOMING in the logs and the chat list
    done = subprocess.run([sys.executable, "-m", "pigeon", "simulate", "reply", "--from", customers[0], "--to",
                           zoho.number, "--message", "thanks a lot"], env=server.env, cwd=server.workdir,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    incoming = zoho.logs(messageType="incoming")
    assert incoming["meta"]["total"] == 1 and incoming["smsLogQuery"][0]["messageType"] == "INCOMING"
    assert incoming["smsLogQuery"][0]["message"] == "thanks a lot"


def test_chatlist_has_one_conversation_per_pair_newest_first_and_searches_whole_words(zoho: Zoho) -> None:
    a, b, c = phone(), phone(), phone()
    for customer, text in ((a, "first to a"), (b, "hello b"), (a, "second to a, shipping today"), (c, "ships soon")):
        assert zoho.send(customer, text).status_code == 200
    chats = zoho.http.get("/rest/json/v1/sms/chatlist").json()
    assert chats["meta"] == {"total": 3, "totalPages": 1}
    assert [e["customerNumber"].replace(" ", "") for e in chats["chatlist"]] == [c, a, b]
    assert chats["chatlist"][1]["message"] == "second to a, shipping today"
    found = zoho.http.get("/rest/json/v1/sms/chatlist", params={"search": "SHIPPING"}).json()
    assert [e["customerNumber"].replace(" ", "") for e in found["chatlist"]] == [a]
    assert zoho.http.get("/rest/json/v1/sms/chatlist", params={"search": "ship"}).json()["meta"]["total"] == 0
    paged = zoho.http.get("/rest/json/v1/sms/chatlist", params={"page": 2, "size": 2}).json()
    assert paged["meta"] == {"total": 3, "totalPages": 2} and len(paged["chatlist"]) == 1
    assert zoho.http.get("/rest/json/v1/sms/chatlist", params={"longCode": zoho.number}).json()["meta"]["total"] == 3
    assert zoho.http.get("/rest/json/v1/sms/chatlist", params={"longCode": phone()}).json()["meta"]["total"] == 0


def test_scheduled_sends_are_listed_searched_and_cancelled(db: Database, zoho: Zoho) -> None:
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    when = later.strftime("%Y-%m-%d %H:%M:%S")
    first = zoho.send(phone(), "the sale starts tomorrow", scheduledTime=when, timeZone="Asia/Kolkata").json()["send"]
    after = (later + dt.timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    second = zoho.send(phone(), "a reminder", scheduledTime=after, timeZone="Asia/Kolkata").json()["send"]
    assert first["status"] == "IN_QUEUE" and first["scheduledTime"] == when and first["timeZone"] == "Asia/Kolkata"
    listed = zoho.http.get("/rest/json/v1/sms/schedule").json()
    assert listed["status"] == "SUCCESS" and listed["meta"]["total"] == 2
    job = listed["schedule"][0]
    assert job["jobId"] == first["logid"] and job["scheduledTime"] == when and job["timeZone"] == "Asia/Kolkata"
    assert zoho.http.get("/rest/json/v1/sms/schedule", params={"searchtext": "Sale"}).json()["meta"]["total"] == 1
    assert zoho.http.get("/rest/json/v1/sms/schedule", params={"searchtext": "sal"}).json()["meta"]["total"] == 0
    day = later.strftime("%Y-%m-%d")
    assert zoho.http.get("/rest/json/v1/sms/schedule", params={"fromDate": "2001-01-01 00:00:00",
                                                               "toDate": "2001-01-02 00:00:00"}).json()["meta"]["total"] == 0
    assert zoho.http.get("/rest/json/v1/sms/schedule", params={"fromDate": f"{day} 00:00:00"}).json()["meta"]["total"] >= 0
    balance = zoho.user.balance()
    cancelled = zoho.http.delete(f"/rest/json/v1/sms/schedule/{second['logid']}")
    assert cancelled.status_code == 200 and cancelled.json()["code"] == "ZVSMS-2000", cancelled.text
    assert zoho.http.get("/rest/json/v1/sms/schedule").json()["meta"]["total"] == 1
    assert zoho.user.balance() == balance + 0.5, "its credits came back"
    assert zoho.entry(second["logid"])["status"] == "FAILED", "a cancelled send stays in the logs"
    _refused(zoho.http.delete(f"/rest/json/v1/sms/schedule/{second['logid']}"), 400, "ZVSMS-4018")
    _refused(zoho.http.delete("/rest/json/v1/sms/schedule/nope"), 404, "ZVSMS-4004")
    with db.read() as session:
        assert session.get(QueueEntry, second["logid"]) is None


def test_options_are_kept_and_an_expired_message_is_not_sent(db: Database, zoho: Zoho) -> None:
    sent = zoho.send(phone(), "00ff10", dataCoding=1, flash="true", validityPeriod=90).json()["send"]
    with db.read() as session:
        row = session.get(Message, sent["logid"])
        assert (row.data_coding, row.flash, row.encoding) == (1, True, "BINARY")
        assert dt.timedelta(minutes=89) < row.expires_at - row.created_at <= dt.timedelta(minutes=91)
    # one still queued when its validity runs out: EXPIRED, never sent, its credits back
    balance = zoho.user.balance()
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    waiting = zoho.send(phone(), "too late", scheduledTime=later, timeZone="UTC", validityPeriod=5).json()["send"]
    with db.write() as session:
        past = utcnow() - dt.timedelta(minutes=1)
        session.execute(update(Message).where(Message.id == waiting["logid"]).values(expires_at=past))
        session.execute(update(QueueEntry).where(QueueEntry.message_id == waiting["logid"]).values(available_at=past))
    entry = zoho.wait(waiting["logid"], "EXPIRED")
    assert entry["statusDescription"].startswith("Message was not delivered due to expiration")
    assert zoho.user.balance() == balance
    assert zoho.user.message(waiting["logid"])["messageStatus"] == "FAILED_REFUNDED"


def test_what_an_operator_trial_found(db: Database, server: Server, zoho: Zoho) -> None:
    """Each of these once answered wrongly: a 500, text corrupted, a phone texted twice, the wrong code."""
    before = count(db, Message, user_id=zoho.user.user_id)
    _refused(zoho.send(phone(), scheduledTime="0999-06-01 00:00:00", timeZone="UTC"), 400, "ZVSMS-4018")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    _refused(zoho.http.post("/rest/json/v1/sms/send", content=f"customerNumber={phone()}&message=caf%E9".encode(),
                            headers=form), 400, "ZVSMS-4027")
    _refused(zoho.http.post(f"/rest/json/v1/sms/send?customerNumber={phone()}&message=q%E9"), 400, "ZVSMS-4027")
    _refused(zoho.http.post("/rest/json/v1/sms/send", content=b"<sms/>", headers={"Content-Type": "application/xml"}),
             415, "ZVSMS-4150")
    _refused(zoho.send("+1 415 555 1203 ext 5"), 400, "ZVSMS-4010")
    _refused(zoho.http.post("/rest/json/v1/sms/send/", json={}), 404, "ZVSMS-4004")
    assert count(db, Message, user_id=zoho.user.user_id) == before
    # a phone written three ways is texted, and charged, once
    number = phone()
    national = f"{number[2:5]} {number[5:8]} {number[8:]}"
    once = zoho.send(f"{number},{number[1:]},+1 {national}", "only once")
    assert once.status_code == 200, once.text
    assert len(once.json()["sends"]) == 1 and count(db, Message, user_id=zoho.user.user_id) == before + 1
    # the spec's own spelling of a zone, and a form in UTF-8
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert zoho.send(phone(), scheduledTime=later, timeZone="Asia/kolkata").json()["send"]["timeZone"] == "Asia/Kolkata"
    sent = zoho.http.post("/rest/json/v1/sms/send", headers=form, content=(
        f"customerNumber={phone()}&senderId=%2B{zoho.number[1:]}&message=caf%C3%A9").encode())
    assert sent.status_code == 200 and sent.json()["send"]["message"] == "café", sent.text
    assert zoho.logs(toDate="9999-12-31")["meta"]["total"] == before + 3
    # HEAD on a media file: its headers, no body
    mms = zoho.http.post("/rest/json/v2/sms/send", data={"sms_data": json.dumps(
        {"customerNumber": phone(), "message": "pic", "senderId": zoho.number})},
        files={"mms_media": ("a.png", PNG, "image/png")}).json()["send"]["mmsMeta"][0]["mmsId"]
    head = zoho.http.head("/rest/json/v2/sms/stream/mms", params={"id": mms})
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(PNG))


def test_is_blocked_is_per_account_number(db: Database, zoho: Zoho) -> None:
    second, customer = phone(), phone()
    with db.write() as session:
        numbers.add(session, numbers.Spec(second), "US", account_id=zoho.account_id)
    first_id = zoho.send(customer, "from the first").json()["send"]["logid"]
    second_id = zoho.send(customer, "from the second", senderId=second).json()["send"]["logid"]
    with db.write() as session:
        consent.set_consent(session, zoho.account_id, f"number:{zoho.number}", customer, out=True, how="test",
                            now=utcnow())
    assert zoho.entry(first_id)["isBlocked"] is True
    assert zoho.entry(second_id)["isBlocked"] is False, "an opt-out of one number does not block the other"
