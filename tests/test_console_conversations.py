"""The console's Conversations over real HTTP, on SQLite and PostgreSQL: a customer's reply
(``pigeon simulate reply``, another process) shows in the inbox and the thread, new messages
come through the thread's poll, a reply goes from the number the customer wrote to and its
status turns live; scopes (a user, an administrator, another account); CSRF; and the inbox's
keyset pages, each customer once, newest activity first, however the walk is cut."""

from __future__ import annotations

import datetime as dt
import html
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
from console_client import Console, signed_in
from sqlalchemy import event, select

from conftest import API, Server, User, make_user
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import create_account, create_user
from pigeon.db import Database, utcnow
from pigeon.ids import new_id
from pigeon.messages import threads
from pigeon.messages.browse import Whose
from pigeon.messages.models import Message
from pigeon.migrations import upgrade
from pigeon.numbers import service as numbers

POLL = re.compile(r'id="thread-poll" hx-get="([^"]+)"')
STATUS = re.compile(r'data-status="([A-Z_]+)"')
ROW = re.compile(r'<th scope="row"><a href="/console/conversations/([^"]+)">')
MORE = re.compile(r'hx-get="(/console/conversations/rows\?[^"]+)"')


def _phone() -> str:
    return f"+2782{uuid.uuid4().int % 10**7:07d}"


def _account_of(db: Database, user_id: int) -> int:
    with db.read() as session:
        return session.get(UserRow, user_id).account_id


def _number(db: Database, account_id: int, *, default: bool = False) -> str:
    number = _phone()
    with db.write() as session:
        row = numbers.add(session, numbers.Spec(number), "ZA", account_id=account_id)
        if default:
            numbers.make_default(session, row)
    return number


def _reply(server: Server, sender: str, message: str, to: str | None = None) -> str:
    """A phone answers, through ``pigeon simulate reply`` against the server's database."""
    command = [sys.executable, "-m", "pigeon", "simulate", "reply", "--from", sender, "--message", message]
    done = subprocess.run(command + (["--to", to] if to else []), env=server.env, cwd=server.workdir,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _poll(console: Console, url: str) -> tuple[int, str, str]:
    """One poll as the page makes it: its status, its text, and the next poll's URL."""
    answer = console.http.get(html.unescape(url), headers={"HX-Request": "true"})
    found = POLL.search(answer.text)
    return answer.status_code, answer.text, (found.group(1) if found else url)


def _wait_delivered(user: User, message_id: str) -> None:
    user.wait_status(message_id, "DELIVERED", timeout=20)


def test_a_reply_shows_in_the_inbox_and_the_thread_and_is_answered_from_its_number(db: Database,
                                                                                   server: Server) -> None:
    user = make_user(db, server)
    account_id = _account_of(db, user.user_id)
    default = _number(db, account_id, default=True)
    other = _number(db, account_id)  # the number this conversation is on: not the default
    customer = _phone()
    console = signed_in(db, server.url, user.email, user.user_id)
    sent = console.post("/send", {"to": customer, "message": "Your order is ready", "sender": other})
    assert sent.status_code == 200
    first = re.search(r'href="/console/messages/([0-9a-f]{24})"', sent.text).group(1)
    _wait_delivered(user, first)
    answer_id = _reply(server, customer, "Thanks! When do you open?", to=other)

    inbox = console.get("/conversations")
    assert inbox.status_code == 200
    assert ROW.findall(inbox.text)[0] == quote(customer, safe="")
    assert "They wrote:</span> Thanks! When do you open?" in inbox.text and 'data-unread="1"' in inbox.text

    thread = console.get(f"/conversations/{quote(customer, safe='')}")
    assert thread.status_code == 200
    assert thread.text.index("Your order is ready") < thread.text.index("Thanks! When do you open?")  # oldest first
    assert f'id="message-{answer_id}" data-direction="INBOUND"' in thread.text
    assert f'id="message-{first}" data-direction="OUTBOUND"' in thread.text
    assert f'data-reply-from="{other}"' in thread.text and default != other
    with db.read() as session:
        assert session.get(Message, answer_id).read  # opened: read
    assert 'data-unread' not in console.get("/conversations").text
    # the thread also opens by the number as people write it
    assert console.get(f"/conversations/0{customer[3:]}").status_code == 200

    poll_url = POLL.search(thread.text).group(1)
    status, _, poll_url = _poll(console, poll_url)
    assert status == 204  # nothing new
    later = _reply(server, customer, "Are you there?")  # to whoever last texted them
    status, text, poll_url = _poll(console, poll_url)
    assert status == 200 and "Are you there?" in text and f'id="message-{later}"' in text
    assert 'hx-swap-oob="beforeend:#thread-messages"' in text
    assert _poll(console, poll_url)[0] == 204  # shown once

    replied = console.post(f"/conversations/{quote(customer, safe='')}/reply", {"message": "9 to 5, every day"},
                           headers={"HX-Request": "true"})
    assert replied.status_code == 200 and replied.headers["HX-Trigger"] == "pigeon-reply"
    assert "Sent to" in replied.text and "9 to 5" not in replied.text  # the form, emptied
    with db.read() as session:
        reply = session.scalar(select(Message).where(Message.to_number == customer, Message.body == "9 to 5, every day"))
    assert reply is not None and reply.from_number == other and reply.user_id == user.user_id
    status, text, poll_url = _poll(console, poll_url)
    assert status == 200 and f'id="message-{reply.id}" data-direction="OUTBOUND"' in text
    _wait_delivered(user, reply.id)
    badge = console.get(f"/messages/{reply.id}/status", headers={"HX-Request": "true"})
    assert STATUS.search(badge.text).group(1) == "DELIVERED"
    console.close()
    user.http.close()


def test_a_reply_without_a_form_goes_back_to_the_thread_and_refusals_show(db: Database, server: Server) -> None:
    user = make_user(db, server, credits=1)
    customer = _phone()
    first = user.send(customer, "hello").json()["messageId"]
    _wait_delivered(user, first)
    _reply(server, customer, "hi")
    console = signed_in(db, server.url, user.email, user.user_id)
    path = f"/conversations/{quote(customer, safe='')}"
    assert "the carrier&#39;s own number" in console.get(path).text  # no number: the carrier's own
    poor = console.post(path + "/reply", {"message": "no credits left"})
    assert poor.status_code == 402 and "Insufficient credits" in poor.text and "no credits left" in poor.text
    empty = console.post(path + "/reply", {"message": " "}, headers={"HX-Request": "true"})
    assert empty.status_code == 200 and "Write the reply" in empty.text and "HX-Trigger" not in empty.headers
    refused = console.http.post("/console" + path + "/reply", data={"message": "no token"})
    assert refused.status_code == 403
    with db.write() as session:
        session.get(UserRow, user.user_id).credit_balance = 5000
    done = console.post(path + "/reply", {"message": "now it goes"})
    assert done.status_code == 303 and done.headers["location"] == "/console" + path
    with db.read() as session:
        assert session.scalar(select(Message.id).where(Message.to_number == customer, Message.body == "now it goes"))
        assert not session.scalar(select(Message.id).where(Message.body.in_(["no credits left", "no token"])))
    console.close()
    user.http.close()


def test_another_accounts_conversation_does_not_exist(db: Database, server: Server) -> None:
    owner = make_user(db, server)
    stranger = make_user(db, server)
    customer = _phone()
    _wait_delivered(owner, owner.send(customer, "private matter").json()["messageId"])
    _reply(server, customer, "secret answer")
    console = signed_in(db, server.url, stranger.email, stranger.user_id)
    path = f"/conversations/{quote(customer, safe='')}"
    for url in (path, path + "/new?since=&seen=", path + "/earlier?before=2100-01-01T00:00:00~x"):
        seen = console.get(url, headers={"HX-Request": "true"} if url != path else {})
        assert seen.status_code in (204, 404) and "secret" not in seen.text and "private" not in seen.text, url
    assert console.get(path).status_code == 404
    assert customer not in console.get("/conversations").text
    tried = console.post(path + "/reply", {"message": "let me in"})
    assert tried.status_code == 404
    with db.read() as session:
        assert not session.scalar(select(Message.id).where(Message.body == "let me in"))
    console.close()
    owner.http.close()
    stranger.http.close()


def test_a_user_sees_their_own_and_an_administrator_the_whole_team(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    account_id = _account_of(db, admin.user_id)
    email = f"mate-{uuid.uuid4().hex[:10]}@example.com"
    with db.write() as session:
        made = create_user(session, account_id, email, credits=10)
    mate = httpx.Client(base_url=server.url, headers={"email": email, "token": made.token})
    theirs, mine = _phone(), _phone()
    assert mate.post(f"{API}/sms/send", json={"recipientNumber": theirs, "message": "from the mate"}).status_code == 200
    assert admin.send(mine, "from the admin").status_code == 200
    as_mate = signed_in(db, server.url, email, made.user.id)
    listed = set(ROW.findall(as_mate.get("/conversations").text))
    assert listed == {quote(theirs, safe="")}
    assert as_mate.get(f"/conversations/{quote(mine, safe='')}").status_code == 404
    as_admin = signed_in(db, server.url, admin.email, admin.user_id)
    assert {quote(theirs, safe=""), quote(mine, safe="")} <= set(ROW.findall(as_admin.get("/conversations").text))
    assert "from the mate" in as_admin.get(f"/conversations/{quote(theirs, safe='')}").text
    for c in (as_mate, as_admin):
        c.close()
    mate.close()
    admin.http.close()


def test_the_inbox_pages_by_key_each_customer_once(db: Database, server: Server) -> None:
    user = make_user(db, server, credits=1000)
    heavy = _phone()
    customers = [_phone() for _ in range(130)]
    # the heavy customer is texted first and last: newest overall, with many messages between
    bulk = [{"recipientNumber": heavy, "message": f"early {i}"} for i in range(30)]
    bulk += [{"recipientNumber": c, "message": f"to {i}"} for i, c in enumerate(customers)]
    assert user.http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": bulk}).status_code == 200
    time.sleep(0.01)
    assert user.send(heavy, "latest").status_code == 200
    console = signed_in(db, server.url, user.email, user.user_id)
    page = console.get("/conversations").text
    seen = ROW.findall(page)
    assert seen[0] == quote(heavy, safe="") and len(seen) == 50
    pages = 1
    while (more := MORE.search(page)) is not None:
        page = console.get(html.unescape(more.group(1))[len("/console"):], headers={"HX-Request": "true"}).text
        seen += ROW.findall(page)
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 131
    assert set(seen) == {quote(c, safe="") for c in [heavy, *customers]}
    console.close()
    user.http.close()


def test_inbox_pages_cut_short_by_the_walk_still_show_each_customer_once(db: Database, server: Server) -> None:
    """``threads.inbox`` itself, with pages and walks far smaller than the console's: a customer
    met again further down is never shown twice, and none is skipped."""
    user = make_user(db, server)
    account_id = _account_of(db, user.user_id)
    order = ["A", "B", "A", "A", "A", "A", "C", "B", "D", "A", "E", "E", "F", "C"]  # oldest first
    start = utcnow()
    with db.write() as session:
        for i, who in enumerate(order):
            phone = f"+2782999{ord(who):04d}"
            inbound = i % 3 == 0
            session.add(Message(id=new_id(), account_id=account_id, user_id=user.user_id,
                                direction="INBOUND" if inbound else "OUTBOUND", status="DELIVERED",
                                from_number=phone if inbound else None, to_number="" if inbound else phone,
                                body=who, encoding="GSM7", parts=1, credit_cost=0, read=False, deleted=False,
                                created_at=start.replace(microsecond=0) + dt.timedelta(seconds=i)))
    expected = []
    for who in reversed(order):
        if who not in expected:
            expected.append(who)
    for whose in (Whose(account_id), Whose(account_id, user.user_id)):
        for size, walk in ((1, 1), (2, 3), (3, 100), (50, 5000)):
            got, after = [], None
            with db.read() as session:
                for _ in range(50):
                    rows, after = threads.inbox(session, whose, after, size=size, walk=walk)
                    got += [c.last.body for c in rows]
                    if after is None:
                        break
            assert got == expected, (size, walk, got)
    with db.read() as session:
        [first] = threads.inbox(session, Whose(account_id), size=1)[0]
        assert (first.customer, first.unread) == ("+27829990067", 1)  # C, whose one inbound message is unread
    user.http.close()


def test_no_conversation_statement_scans_the_messages(tmp_path: Path) -> None:
    """Every statement of the inbox, a thread, a poll, the reply's number and marking read is
    planned by SQLite as a search of an index: none scans the messages (plans read, not clocked)."""
    db = Database(f"sqlite:///{tmp_path / 'plans.db'}")
    upgrade(db)
    with db.write() as session:
        admin = create_account(session, "plans@example.com").user
        mate = create_user(session, admin.account_id, "mate@example.com").user
        start = utcnow()
        for i in range(400):  # 60 customers; each of them texted and texting, with each user
            inbound = (i // 120) % 2 == 1
            customer = f"+2782777{i % 60:04d}"
            session.add(Message(id=new_id(), account_id=admin.account_id, user_id=(admin.id, mate.id)[(i // 60) % 2],
                                direction="INBOUND" if inbound else "OUTBOUND", status="DELIVERED",
                                from_number=customer if inbound else "+27870000001",
                                to_number="+27870000001" if inbound else customer, body=f"m{i}", encoding="GSM7",
                                parts=1, credit_cost=0, read=False, deleted=False,
                                created_at=start + dt.timedelta(seconds=i)))
    statements: list[tuple[str, object]] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def trace(conn, cursor, sql, params, context, many) -> None:  # type: ignore[no-untyped-def]
        statements.append((sql, params))

    for whose in (Whose(admin.account_id), Whose(admin.account_id, mate.id)):
        with db.read() as session:
            rows, after = threads.inbox(session, whose, size=10)
            threads.inbox(session, whose, after, size=10, walk=50)
            messages, before = threads.thread(session, whose, "+27827770004", size=5)
            threads.thread(session, whose, "+27827770004", before, size=5)
            threads.since(session, whose, "+27827770004", messages[0].created_at)
            threads.answered_on(session, whose, "+27827770004")
        with db.write() as session:
            threads.mark_read(session, whose, "+27827770004")
    scans = {}
    with db.engine.connect() as connection:
        for sql, params in statements:
            if not re.match(r"\s*(SELECT|UPDATE)\b", sql):
                continue
            for *_, detail in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all():
                if re.match(r"SCAN (messages|m)\b", detail):
                    scans[sql[:200]] = detail
    assert len(statements) > 20 and not scans, scans
    db.dispose()
