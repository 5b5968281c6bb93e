"""Webhooks: replies and delivery reports POSTed to users' servers, signed, and never lost.

The receivers here are real HTTP servers on loopback; the test server allows loopback URLs
(PIGEON_WEBHOOKS_ALLOW_PRIVATE=true in conftest) and retries fast (0.2 s doubling to 1 s).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from conftest import API, Server, User, free_port, fresh_postgres, make_user
from pigeon import hooks
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import Principal, create_account
from pigeon.config import Settings
from pigeon.db import Database, utcnow
from pigeon.delivery import statuses
from pigeon.delivery.statuses import fail_and_refund
from pigeon.messages.models import Message, Status
from pigeon.migrations import upgrade
from pigeon.sending.service import Outgoing, accept
from pigeon.webhooks import service
from pigeon.webhooks.models import State, WebhookEvent
from pigeon.webhooks.signing import canonical, checksum, sign, verify
from pigeon.webhooks.urls import PrivateAddress, RefusedUrl, check_url

SECRET = "s3cret-for-tests"
README = Path(__file__).resolve().parents[1] / "README.md"


# -- a receiver --------------------------------------------------------------------------

class Receiver:
    """An HTTP server on loopback that records every POST; it can be slow, fail, or be down."""

    def __init__(self, port: int | None = None, *, delay: float = 0.0, failures: int = 0):
        self.port = port or free_port()
        self.delay = delay
        self.failures = failures  # answer 500 to this many requests first
        self.posts: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?source=pigeon"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                time.sleep(receiver.delay)
                with receiver._lock:
                    failing = receiver.failures > 0
                    receiver.failures -= failing
                    receiver.posts.append({
                        "path": self.path, "body": body, "headers": dict(self.headers), "failed": failing,
                        "form": dict(parse_qsl(body, keep_blank_values=True)),
                        "query": dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True)),
                    })
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self) -> list[dict]:
        with self._lock:
            return [post for post in self.posts if not post["failed"]]

    def wait(self, until: Callable[[list[dict]], bool], timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            posts = self.delivered()
            if until(posts):
                return posts
            assert time.monotonic() < deadline, f"the receiver got only {posts}"
            time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def phone() -> str:
    """A number no other test texts, so that a reply from it has one owner. It ends in 1: the
    simulator fails numbers ending 666, refuses 000 and never answers 999."""
    return f"+2782{random.randrange(10**5, 10**6)}1"


def settings(user: User, **fields: str) -> httpx.Response:
    return user.http.post(f"{API}/account/developer-settings", json=fields)


def independent_checksum(params: dict[str, str], secret: str) -> str:
    """The scheme of ../shared/spec/README.md, written out again here, not imported."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "checksum")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha1).hexdigest()


def assert_signed(post: dict, secret: str = SECRET) -> dict[str, str]:
    form = post["form"]
    assert form["checksum"] == independent_checksum(form, secret)
    assert verify(form, secret)
    query = {k: v for k, v in post["query"].items() if k != "source"}
    assert query == form, "the parameters are repeated in the query string"
    assert post["query"]["source"] == "pigeon", "the URL's own query is kept"
    assert post["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    uuid.UUID(form["nonce"])
    assert re.fullmatch(r"\d{14}", form["nonce-date"])
    return form


# -- the checksum and the URL rule, pure -----------------------------------------------------

def test_the_spec_example_signs_exactly_as_the_rule_says() -> None:
    params = {"campaign": "campaign", "dataField": "data", "message": "Test + Message",
              "nonce-date": "2014051610050102"}
    assert canonical(params) == "campaign=campaign&dataField=data&message=Test + Message&nonce-date=2014051610050102"
    expected = hmac.new(b"secret", canonical(params).encode(), hashlib.sha1).hexdigest()
    assert checksum(params, "secret") == expected == "057ec70e89db2912ef160ee61596976d98467d12"  # openssl dgst -sha1 -hmac secret


def test_nulls_are_left_out_and_keys_sort_bytewise() -> None:
    signed = sign({"nonce-date": "20261122120000", "nonce": "n", "campaign": None, "Zeta": "z", "from": "+1"}, "k")
    assert "campaign" not in signed
    assert canonical(signed) == "Zeta=z&from=+1&nonce=n&nonce-date=20261122120000"
    assert verify(signed, "k") and not verify(signed, "other")
    assert not verify({**signed, "from": "+2"}, "k"), "an altered parameter fails"
    assert not verify({k: v for k, v in signed.items() if k != "checksum"}, "k")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://localhost:8080/x", "http://10.1.2.3/x", "http://192.168.0.9/x",
    "http://172.16.5.5/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "http://0.0.0.0/x",
    "http://[::ffff:127.0.0.1]/x", "http://100.64.0.1/x", "http://[::127.0.0.1]/x", "http://[::ffff:0:7f00:1]/x",
    "http://[64:ff9b::7f00:1]/x", "http://[2002:7f00:1::1]/x", "http://[fec0::1]/x", "http://[fd00::1]/x",
])
def test_private_and_loopback_urls_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(PrivateAddress, match="PIGEON_WEBHOOKS_ALLOW_PRIVATE"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://example.com/x", "http"), ("http:///nohost", "host"), ("https://user:pw@example.com/", "credentials"),
    ("not-a-url", "http"), ("not a url", "spaces"), ("http://example.com:99999/", "valid"), ("https://example.com/a b", "spaces"),
    ("https://example.com/\x00", "control"),
])
def test_urls_that_are_not_http_are_refused(url: str, reason: str) -> None:
    with pytest.raises(RefusedUrl, match=reason):
        check_url(url, allow_private=True)


def test_a_public_address_is_accepted() -> None:
    assert check_url(" https://8.8.8.8/hook ", allow_private=False) == "https://8.8.8.8/hook"
    assert check_url("https://[64:ff9b::808:808]/hook", allow_private=False), "NAT64 of a public address"
    with pytest.raises(RefusedUrl, match="253"):
        check_url(f"https://{'a' * 250}.example.com/", allow_private=True)


def test_a_forged_checksum_is_refused_not_crashed_on() -> None:
    assert not verify({"a": "1", "checksum": "é"}, "k")


def test_retries_back_off_and_last_at_least_a_day() -> None:
    delays = [service.retry_delay(n, base=10, most=3600) for n in range(1, 30)]
    assert all(8 <= d <= 3600 for d in delays)
    assert delays[0] <= 10 and delays[5] > delays[0] * 20 and delays[-1] > 2800
    with pytest.raises(ValueError, match="retry_hours"):
        Settings(webhooks={"retry_hours": 23})
    assert Settings().webhooks.retry_hours >= 24


# -- developer settings ------------------------------------------------------------------

def test_developer_settings(user: User, receiver: Receiver) -> None:
    assert user.http.get(f"{API}/account/developer-settings").json() == {
        "replyUrl": None, "reportUrl": None, "hasSecret": False, "secret": None}
    made = settings(user, reportUrl=receiver.url)
    assert made.status_code == 200, made.text
    assert made.json()["reportUrl"] == receiver.url and made.json()["hasSecret"] is True
    assert len(made.json()["secret"]) >= 32, "a secret is made, and shown this once"
    again = settings(user, replyUrl=receiver.url)
    assert again.json()["secret"] is None and again.json()["replyUrl"] == receiver.url
    assert settings(user, secret=SECRET).json()["hasSecret"] is True
    shown = user.http.get(f"{API}/account/developer-settings.xml")
    assert shown.headers["content-type"] == "application/xml" and "<hasSecret>true</hasSecret>" in shown.text
    assert SECRET not in shown.text
    cleared = settings(user, replyUrl="")
    assert cleared.json()["replyUrl"] is None and cleared.json()["reportUrl"] == receiver.url


@pytest.mark.parametrize(("fields", "reason"), [
    ({"reportUrl": "ftp://example.com/"}, "http"),
    ({"replyUrl": "http:///x"}, "host"),
    ({"secret": "short"}, "8 to 255"),
    ({"reportUrl": "https://" + "a" * 2050 + ".com/"}, "2048"),
])
def test_bad_developer_settings_are_refused_and_change_nothing(user: User, fields: dict, reason: str) -> None:
    answer = settings(user, **fields)
    assert answer.status_code == 400
    assert answer.json()["code"] == 1 and reason in answer.json()["developerMessage"]
    assert user.http.get(f"{API}/account/developer-settings").json()["hasSecret"] is False


def test_developer_settings_need_credentials(server: Server) -> None:
    answer = httpx.post(f"{server.url}{API}/account/developer-settings", json={"replyUrl": "https://x.example/"})
    assert answer.status_code == 401 and answer.json()["code"] == 8


@pytest.fixture
def strict(database_url: str, tmp_path: Path) -> Iterator[tuple[Server, Database]]:
    """A server that refuses private addresses, on a database of its own (it must not take the
    other tests' loopback events)."""
    with (_sqlite(tmp_path) if database_url.startswith("sqlite") else fresh_postgres()) as url:
        database = Database(url)
        upgrade(database)
        srv = Server(url, tmp_path, {"PIGEON_WEBHOOKS_ALLOW_PRIVATE": "false"}).start()
        try:
            yield srv, database
        finally:
            srv.stop()
            database.dispose()


def test_loopback_urls_are_refused_when_the_operator_has_not_allowed_them(
    strict: tuple[Server, Database], receiver: Receiver
) -> None:
    strict, db = strict
    u = make_user(db, strict)
    answer = settings(u, reportUrl=receiver.url)
    assert answer.status_code == 400 and "PIGEON_WEBHOOKS_ALLOW_PRIVATE" in answer.json()["developerMessage"]
    assert settings(u, reportUrl="http://10.0.0.7/hook").status_code == 400
    done = subprocess.run([sys.executable, "-m", "pigeon", "account", "settings", "--email", u.email,
                           "--reply-url", receiver.url], env=strict.env, cwd=strict.workdir,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "PIGEON_WEBHOOKS_ALLOW_PRIVATE" in done.stderr


def test_a_private_address_is_refused_again_when_posting(strict: tuple[Server, Database], receiver: Receiver) -> None:
    """A URL that got in anyway (set before the rule, or a name that now resolves privately)."""
    strict, db = strict
    literal, named = make_user(db, strict), make_user(db, strict)
    with db.write() as session:
        for u, url in ((literal, receiver.url), (named, f"http://localhost:{receiver.port}/hook")):
            session.execute(update(UserRow).where(UserRow.id == u.user_id).values(report_url=url,
                                                                                 webhook_secret=SECRET))
    for u in (literal, named):
        u.wait_status(u.send(phone(), "private").json()["messageId"], "DELIVERED")
    deadline = time.monotonic() + 30
    while True:
        by_user = {u.user_id: events(db, u) for u in (literal, named)}
        if (all(by_user.values()) and by_user[literal.user_id][0].state == State.FAILED
                and by_user[named.user_id][0].last_error):
            break
        assert time.monotonic() < deadline, by_user
        time.sleep(0.1)
    assert "loopback or private" in by_user[literal.user_id][0].last_error
    late = by_user[named.user_id][0]
    assert "loopback or private" in late.last_error and late.state == State.PENDING, "DNS may change: retried"
    assert receiver.posts == []


# -- delivery reports and replies, end to end ------------------------------------------------

def test_delivery_reports_are_posted_signed(user: User, receiver: Receiver) -> None:
    settings(user, reportUrl=receiver.url, secret=SECRET)
    good = user.send(phone(), "report me", campaign="shoes & socks", dataField="order=17").json()["messageId"]
    bad = user.send(phone()[:-3] + "666", "fail me").json()["messageId"]
    user.wait_status(good, "DELIVERED")
    user.wait_status(bad, "FAILED_REFUNDED")
    posts = receiver.wait(lambda p: len(p) >= 2)
    by_message = {post["form"]["messageId"]: assert_signed(post) for post in posts}
    assert by_message[good] == {**by_message[good], "status": "DELIVERED", "campaign": "shoes & socks",
                                "dataField": "order=17"}
    assert by_message[bad]["status"] == "FAILED_REFUNDED" and "campaign" not in by_message[bad]
    assert len(posts) == 2, "one report per final status"


def test_a_reply_is_linked_polled_and_posted_signed(server: Server, user: User, receiver: Receiver) -> None:
    settings(user, replyUrl=receiver.url, secret=SECRET)
    number = phone()
    sent = user.send(number, "Coming tonight?", campaign="party", dataField="guest-4").json()["messageId"]
    user.wait_status(sent, "DELIVERED")
    done = subprocess.run([sys.executable, "-m", "pigeon", "simulate", "reply", "--from", number,
                           "--message", "Yes + two friends & a dog"], env=server.env, cwd=server.workdir,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    reply_id = done.stdout.strip()
    form = assert_signed(receiver.wait(lambda p: len(p) >= 1)[0])
    assert form["from"] == number and form["repliedToMessageId"] == sent and form["messageId"] == reply_id
    assert form["message"] == "Yes + two friends & a dog"
    assert form["campaign"] == "party" and form["dataField"] == "guest-4"
    assert re.fullmatch(r"\d{12}", form["date"])
    inbox = user.http.get(f"{API}/messages/all", params={"type": "INBOUND", "read": "false"}).json()
    [found] = inbox["webServiceMessages"]
    assert found["messageId"] == reply_id and found["repliedToMessage"]["messageId"] == sent
    assert user.http.put(f"{API}/messages/{reply_id}/markRead").json()["read"] is True
    assert user.http.get(f"{API}/messages/all", params={"type": "INBOUND", "read": "false"}).json()["totalElements"] == 0


def test_the_readme_verify_function_accepts_what_pigeon_sends(user: User, receiver: Receiver) -> None:
    block = re.search(r"```python\n(# verify a Pigeon webhook.*?)```", README.read_text(), re.S)
    assert block, "the README shows a verify function"
    scope: dict = {}
    exec(block.group(1), scope)  # noqa: S102 - our own README
    settings(user, reportUrl=receiver.url, secret=SECRET)
    user.wait_status(user.send(phone(), "verify me").json()["messageId"], "DELIVERED")
    post = receiver.wait(lambda p: len(p) >= 1)[0]
    assert scope["verify_webhook"](post["body"], SECRET) is True
    assert scope["verify_webhook"](post["body"].replace("DELIVERED", "FAILED"), SECRET) is False
    assert scope["verify_webhook"](post["body"], "wrong-secret") is False


def test_pigeon_webhook_verify(server: Server, user: User, receiver: Receiver) -> None:
    settings(user, reportUrl=receiver.url, secret=SECRET)
    user.wait_status(user.send(phone(), "cli").json()["messageId"], "DELIVERED")
    post = receiver.wait(lambda p: len(p) >= 1)[0]

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pigeon", "webhook", "verify", *args], input=stdin,
                              env=server.env, cwd=server.workdir, capture_output=True, text=True, timeout=60)

    ok = run("--secret", SECRET, post["body"])
    assert ok.returncode == 0 and "checksum OK" in ok.stdout
    url = "https://example.com/hook?" + post["path"].split("?", 1)[1].removeprefix("source=pigeon&")
    assert run("--secret", SECRET, url).returncode == 0, "a whole URL works too"
    assert run("--secret", SECRET, f"https://example.com{post['path']}").returncode == 1, "the URL's own are not signed"
    assert run("--secret", SECRET, stdin=post["body"]).returncode == 0
    assert run("--secret", "wrong-secret", post["body"]).returncode == 1
    assert run("--secret", SECRET, post["body"].replace("status=DELIVERED", "status=FAILED")).returncode == 1
    assert "no checksum" in run("--secret", SECRET, "status=DELIVERED").stderr


def test_account_settings_cli(server: Server, user: User, receiver: Receiver) -> None:
    done = subprocess.run([sys.executable, "-m", "pigeon", "account", "settings", "--email", user.email,
                           "--report-url", receiver.url], env=server.env, cwd=server.workdir,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert receiver.url in done.stdout and "shown only this once" in done.stdout
    secret = re.search(r"secret:\s+(\S+)", done.stdout).group(1)
    user.wait_status(user.send(phone(), "cli settings").json()["messageId"], "DELIVERED")
    assert_signed(receiver.wait(lambda p: len(p) >= 1)[0], secret)
    unknown = subprocess.run([sys.executable, "-m", "pigeon", "account", "settings", "--email", "nobody@x.example"],
                             env=server.env, cwd=server.workdir, capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "no user" in unknown.stderr


# -- never lost ----------------------------------------------------------------------------

def events(db: Database, user: User) -> list[WebhookEvent]:
    with db.read() as session:
        return list(session.scalars(select(WebhookEvent).where(WebhookEvent.user_id == user.user_id)))


def test_a_receiver_that_is_down_gets_every_event_when_it_comes_back(db: Database, user: User) -> None:
    receiver = Receiver().start()
    settings(user, reportUrl=receiver.url, secret=SECRET)
    before = user.send(phone(), "while up").json()["messageId"]
    receiver.wait(lambda p: len(p) == 1)
    receiver.stop()  # now connections are refused
    sent = [user.send(phone(), f"while down {i}").json()["messageId"] for i in range(5)]
    for message_id in sent:
        user.wait_status(message_id, "DELIVERED")
    deadline = time.monotonic() + 30
    while True:
        waiting = [e for e in events(db, user) if e.message_id != before]
        if len(waiting) == 5 and all(e.attempts >= 2 and e.state == State.PENDING for e in waiting):
            break
        assert time.monotonic() < deadline, waiting
        time.sleep(0.1)
    assert all(e.last_error for e in waiting), "each failed attempt says why"
    receiver.start()
    try:
        posts = receiver.wait(lambda p: {q["form"]["messageId"] for q in p} >= {before, *sent})
        for post in posts:
            assert_signed(post)
        deadline = time.monotonic() + 10
        while any(e.state != State.DELIVERED for e in events(db, user)):
            assert time.monotonic() < deadline, events(db, user)
            time.sleep(0.05)
    finally:
        receiver.stop()


def test_pending_events_follow_the_users_current_url(db: Database, user: User, receiver: Receiver) -> None:
    down = Receiver()  # never started
    settings(user, reportUrl=down.url, secret=SECRET)
    first = user.send(phone(), "to the new URL").json()["messageId"]
    user.wait_status(first, "DELIVERED")
    deadline = time.monotonic() + 30
    while not (events(db, user) and events(db, user)[0].attempts >= 1):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    settings(user, reportUrl=receiver.url)
    assert receiver.wait(lambda p: len(p) >= 1)[0]["form"]["messageId"] == first
    settings(user, reportUrl=down.url)
    second = user.send(phone(), "then removed").json()["messageId"]
    user.wait_status(second, "DELIVERED")
    while not any(e.message_id == second and e.attempts >= 1 for e in events(db, user)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    settings(user, reportUrl="")
    while True:
        [event] = [e for e in events(db, user) if e.message_id == second]
        if event.state == State.FAILED:
            break
        assert time.monotonic() < deadline, event
        time.sleep(0.05)
    assert "removed" in event.last_error


def test_an_error_answer_is_retried_with_the_same_nonce(user: User) -> None:
    receiver = Receiver(failures=2).start()
    try:
        settings(user, reportUrl=receiver.url, secret=SECRET)
        user.wait_status(user.send(phone(), "retry me").json()["messageId"], "DELIVERED")
        [post] = receiver.wait(lambda p: len(p) >= 1)
        assert_signed(post)
        assert len(receiver.posts) == 3 and post["headers"]["X-Pigeon-Attempt"] == "3"
        assert len({p["form"]["nonce"] for p in receiver.posts}) == 1, "the nonce is the event's stable id"
        assert post["headers"]["X-Pigeon-Event"] == post["form"]["nonce"]
    finally:
        receiver.stop()


def test_a_slow_receiver_does_not_hold_up_anyone_else(db: Database, server: Server) -> None:
    slow_user, fast_user = make_user(db, server), make_user(db, server)
    slow, fast = Receiver(delay=1.5).start(), Receiver().start()
    try:
        settings(slow_user, reportUrl=slow.url, secret=SECRET)
        settings(fast_user, reportUrl=fast.url, secret=SECRET)
        slow_ids = [slow_user.send(phone(), f"slow {i}").json()["messageId"] for i in range(20)]
        for message_id in slow_ids:
            slow_user.wait_status(message_id, "DELIVERED")
        fast_ids = [fast_user.send(phone(), f"fast {i}").json()["messageId"] for i in range(3)]
        for message_id in fast_ids:
            fast_user.wait_status(message_id, "DELIVERED")
        fast.wait(lambda p: len(p) >= 3)
        assert len(slow.delivered()) < 20, "the fast receiver was served while the slow one still waited"
        slow.wait(lambda p: len(p) >= 20)
        assert {p["form"]["messageId"] for p in fast.delivered()} == set(fast_ids)
    finally:
        slow.stop()
        fast.stop()
        slow_user.http.close()
        fast_user.http.close()


def test_events_survive_a_crash_of_the_server(tmp_path: Path, database_url: str) -> None:
    """Receiver down, reports queued, server killed -9; a new server delivers them all."""
    if database_url.startswith("sqlite"):
        own = _sqlite(tmp_path)
    else:
        own = fresh_postgres()
    with own as url:
        database = Database(url)
        upgrade(database)
        first = Server(url, tmp_path).start()
        receiver = Receiver()
        try:
            u = make_user(database, first)
            settings(u, reportUrl=receiver.url, secret=SECRET)
            sent = [u.send(phone(), f"crash {i}").json()["messageId"] for i in range(3)]
            for message_id in sent:
                u.wait_status(message_id, "DELIVERED")
            first.kill()
            receiver.start()
            second = Server(url, tmp_path).start()
            try:
                posts = receiver.wait(lambda p: {q["form"]["messageId"] for q in p} >= set(sent), timeout=60)
                assert {p["form"]["status"] for p in posts} == {"DELIVERED"}
            finally:
                second.stop()
        finally:
            receiver.stop()
            first.stop()
            database.dispose()


class _sqlite:
    def __init__(self, where: Path):
        self.url = f"sqlite:///{where / 'crash.db'}"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        pass


# -- in the same transaction ---------------------------------------------------------------

def _queued_message(db: Database, report_url: str) -> tuple[Principal, str]:
    with db.write() as session:
        new = create_account(session, f"tx-{uuid.uuid4().hex[:8]}@example.com", credits=10)
        session.execute(update(UserRow).where(UserRow.id == new.user.id).values(report_url=report_url,
                                                                               webhook_secret=SECRET))
        principal = Principal(new.user.id, new.user.account_id, new.user.email, True)
        message = Outgoing(f"{random.getrandbits(96):024x}", "+27820000001", "hi", "GSM7", 1, 1000,
                           send_at=utcnow() + dt.timedelta(hours=1))  # the server's engine leaves it alone
        accept(session, principal, [message], utcnow())
    return principal, message.id


def test_a_report_is_written_with_the_status_change_or_not_at_all(db: Database) -> None:
    principal, message_id = _queued_message(db, "http://127.0.0.1:9/never-listening")

    class Crash(Exception):
        pass

    with pytest.raises(Crash), db.write() as session:
        fail_and_refund(session, [(message_id, "X", "test")], utcnow(), from_statuses=(Status.SCHEDULED,))
        assert session.scalar(select(WebhookEvent.id).where(WebhookEvent.message_id == message_id))
        raise Crash
    with db.read() as session:
        assert session.scalar(select(Message.status).where(Message.id == message_id)) == Status.SCHEDULED
        assert session.scalar(select(WebhookEvent.id).where(WebhookEvent.message_id == message_id)) is None
    with db.write() as session:
        fail_and_refund(session, [(message_id, "X", "test")], utcnow(), from_statuses=(Status.SCHEDULED,))
        fail_and_refund(session, [(message_id, "X", "again")], utcnow(), from_statuses=(Status.SCHEDULED,))
    with db.read() as session:
        [event] = session.scalars(select(WebhookEvent).where(WebhookEvent.message_id == message_id)).all()
    assert event.kind == "REPORT" and event.user_id == principal.user_id
    assert event.id == service.event_id(service.Kind.REPORT, message_id, "FAILED_REFUNDED")
    assert '"status":"FAILED_REFUNDED"' in event.params


def test_a_final_status_queues_its_report_in_the_same_transaction(db: Database) -> None:
    """Every way to a final status goes through pigeon.hooks to the webhooks (subscribed by
    pigeon.wiring, which conftest installs as serve, worker and the CLI do): the event is in
    the transaction that wrote the status, before it commits; SENT, not final, queues none."""
    _, delivered = _queued_message(db, "http://127.0.0.1:9/never-listening")
    _, lost = _queued_message(db, "http://127.0.0.1:9/never-listening")
    now = utcnow()

    def report(session, message_id: str) -> str | None:  # type: ignore[no-untyped-def]
        return session.scalar(select(WebhookEvent.params).where(WebhookEvent.message_id == message_id))

    with db.write() as session:
        assert statuses.mark_sent(session, [(delivered, now, "simulator", "ref-1")]) == 1
        assert report(session, delivered) is None
        statuses.finish(session, [(delivered, Status.DELIVERED.value, None, now)], [], now)
        statuses.lose(session, [lost], "IN_DOUBT", "test", now)
        assert '"status":"DELIVERED"' in report(session, delivered)
        assert '"status":"UNKNOWN"' in report(session, lost)
        assert hooks.queued(session) == 2
    with db.read() as session:
        assert session.scalar(select(Message.status).where(Message.id == delivered)) == Status.DELIVERED
        assert session.scalar(select(Message.status).where(Message.id == lost)) == Status.UNKNOWN


def test_an_event_still_undelivered_after_its_retry_window_fails(db: Database) -> None:
    _, message_id = _queued_message(db, "http://127.0.0.1:9/never-listening")
    now = utcnow()
    with db.write() as session:
        service.report_events(session, [message_id], now)  # not final yet: nothing
        fail_and_refund(session, [(message_id, "X", "test")], now, from_statuses=(Status.SCHEDULED,))
        session.execute(update(WebhookEvent).where(WebhookEvent.message_id == message_id)
                        .values(created_at=now - dt.timedelta(hours=49), available_at=now + dt.timedelta(hours=1)))
    with db.write() as session:
        event = session.scalar(select(WebhookEvent).where(WebhookEvent.message_id == message_id))
        due = service.Due(event.id, event.kind, event.url, event.receiver, {}, SECRET, 30, event.created_at)
        young = service.Due(event.id, event.kind, event.url, event.receiver, {}, SECRET, 30,
                            now - dt.timedelta(hours=47))
        service.finish(session, now, [service.Outcome(young, False, "refused")], base=10, most=3600,
                       give_up_after=dt.timedelta(hours=48))
        assert session.scalar(select(WebhookEvent.state).where(WebhookEvent.id == event.id)) == State.PENDING
        service.finish(session, now, [service.Outcome(due, False, "refused")], base=10, most=3600,
                       give_up_after=dt.timedelta(hours=48))
    with db.read() as session:
        event = session.get(WebhookEvent, event.id)
        assert event.state == State.FAILED and event.last_error == "refused"
