"""The dashboard over HTTP, signed in to the console: its figures are the database's (a mix of
statuses, sent through the API and settled by the simulator), each visitor sees only their
scope (a user their own messages, an administrator the account's, the operator any account
picked), and another account's figures never appear."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx
from console_client import Console, signed_in, with_password
from sqlalchemy import func, select

from conftest import Server, User, make_user
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import create_account, create_user
from pigeon.db import Database, utcnow
from pigeon.delivery.backlog import Backlog, backlog
from pigeon.delivery.models import QueueEntry
from pigeon.messages import stats
from pigeon.messages.models import Message


def database_counts(db: Database, *, account_id: int | None = None, user_id: int | None = None) -> dict[str, int]:
    """Outbound messages of the last 24 hours by status, straight from the table."""
    since = utcnow() - dt.timedelta(hours=24)
    query = (select(Message.status, func.count()).where(Message.direction == "OUTBOUND", Message.created_at >= since)
             .group_by(Message.status))
    query = query.where(Message.user_id == user_id) if user_id else query.where(Message.account_id == account_id)
    with db.read() as session:
        return dict(session.execute(query).all())


def account_of(db: Database, user: User) -> int:
    with db.read() as session:
        return session.get(UserRow, user.user_id).account_id


def operator(db: Database, server: Server) -> Console:
    email = f"operator-{uuid.uuid4().hex[:8]}@example.com"
    with db.write() as session:
        made = create_account(session, email, master=True)
    return signed_in(db, server.url, email, made.user.id)


def nonzero(figures: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in figures.items() if v}


def send_a_mix(user: User) -> list[str]:
    """3 delivered, 2 failed by receipt (666), 1 refused (000), 1 scheduled for 2099."""
    sent = [user.send(f"+2782{uuid.uuid4().int % 10**6:06d}1", "fine").json()["messageId"] for _ in range(3)]
    sent += [user.send(f"+2782{uuid.uuid4().int % 10**3:03d}666", "fails").json()["messageId"] for _ in range(2)]
    sent.append(user.send("+27821234000", "refused").json()["messageId"])
    later = user.send("+27821112233", "later", dateToSend="209901010000").json()["messageId"]
    for message_id in sent[:3]:
        user.wait_status(message_id, "DELIVERED")
    for message_id in sent[3:]:
        user.wait_status(message_id, "FAILED_REFUNDED")
    return [*sent, later]


def test_the_figures_are_the_databases(db: Database, server: Server) -> None:
    user = make_user(db, server, credits=100)
    send_a_mix(user)
    console = signed_in(db, server.url, user.email, user.user_id)
    answer = console.get("/dashboard/data.json")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    data = answer.json()
    expected = database_counts(db, user_id=user.user_id)
    assert expected == {"DELIVERED": 3, "FAILED_REFUNDED": 3, "SCHEDULED": 1}
    assert nonzero(data["statuses"]) == expected
    assert data["totals"] == {"sent": 7, "delivered": 3, "failed": 3, "pending": 1, "unknown": 0, "received": 0,
                              "rate": 50.0, "credits": 4.0, "balance": 96.0}  # the refunded ones used nothing
    assert data["queue"] == {"due": 0, "later": 1, "oldest_seconds": None, "capped": False}
    # 24 hours, the last one now; this test's messages all in it
    hours = data["hours"]
    assert len(hours) == 24 and all(b - a == 3600 for a, b in zip(hours, hours[1:], strict=False))
    assert hours[-1] <= data["now"] < hours[-1] + 3600
    assert data["series"]["delivered"][-1] == 3 and sum(data["series"]["delivered"]) == 3
    assert data["series"]["failed"][-1] == 3 and data["series"]["pending"][-1] == 1
    assert data["rate"][-1] == 50.0 and data["rate"][0] is None
    assert data["credits"][-1] == 4.0
    # and one more, seen at the next reading
    user.wait_status(user.send("+27829998881", "one more").json()["messageId"], "DELIVERED")
    again = console.get("/dashboard/data.json").json()
    assert again["totals"]["delivered"] == 4 and again["series"]["delivered"][-1] == 4


def member_of(db: Database, server: Server, account_id: int, credits: float = 50) -> User:
    """A user (not an administrator) of the account, with an API client of its own."""
    email = f"member-{uuid.uuid4().hex[:8]}@example.com"
    with db.write() as session:
        made = create_user(session, account_id, email, credits=credits)
    http = httpx.Client(base_url=server.url, headers={"email": email, "token": made.token}, timeout=10)
    return User(email, made.token, made.url_token, made.user.id, http)


def test_each_visitor_sees_their_scope_and_no_other_account(db: Database, server: Server) -> None:
    admin = make_user(db, server, credits=100)
    account_id = account_of(db, admin)
    member = member_of(db, server, account_id)
    stranger = make_user(db, server, credits=100)
    for who, to in ((admin, "+27825550001"), (member, "+27825550002"), (stranger, "+27825550003")):
        who.wait_status(who.send(to, "hello").json()["messageId"], "DELIVERED")
    member_console = signed_in(db, server.url, member.email, member.user_id)
    admin_console = signed_in(db, server.url, admin.email, admin.user_id)
    account = admin_console.get("/dashboard/data.json").json()
    assert account["scope"] == {"account": account_id, "user": None}
    assert account["totals"]["sent"] == 2 == sum(database_counts(db, account_id=account_id).values())
    mine = member_console.get("/dashboard/data.json").json()
    assert mine["scope"] == {"account": account_id, "user": member.user_id}
    assert mine["totals"]["sent"] == 1 and mine["totals"]["balance"] == 49.0
    # another account, by parameter, does not exist for them; their own is theirs
    other = account_of(db, stranger)
    for console in (admin_console, member_console):
        assert console.get(f"/dashboard/data.json?account={other}").status_code == 404
        assert console.get(f"/dashboard?account={other}").status_code == 404
        assert console.get("/dashboard/data.json?account=x1").status_code == 404
    assert admin_console.get(f"/dashboard/data.json?account={account_id}").json()["totals"]["sent"] == 2
    assert member_console.get(f"/dashboard/data.json?account={account_id}").json()["totals"]["sent"] == 1
    # no account picker for them
    assert 'name="account"' not in admin_console.get("/dashboard").text


def test_the_operator_picks_an_account(db: Database, server: Server) -> None:
    customer = make_user(db, server, credits=100)
    customer.wait_status(customer.send("+27826660001", "for the operator's eyes").json()["messageId"], "DELIVERED")
    customer.wait_status(customer.send("+27826660666", "fails").json()["messageId"], "FAILED_REFUNDED")
    account_id = account_of(db, customer)
    console = operator(db, server)
    own = console.get("/dashboard/data.json").json()
    assert own["scope"]["account"] != account_id and own["totals"]["sent"] == 0
    picked = console.get(f"/dashboard/data.json?account={account_id}").json()
    assert picked["scope"] == {"account": account_id, "user": None}
    assert nonzero(picked["statuses"]) == database_counts(db, account_id=account_id) == {
        "DELIVERED": 1, "FAILED_REFUNDED": 1}
    page = console.get(f"/dashboard?account={account_id}")
    assert page.status_code == 200
    assert re.search(rf'<option value="{account_id}" selected>', page.text)
    assert f'data-source="/console/dashboard/data.json?account={account_id}"' in page.text
    assert console.get("/dashboard/data.json?account=999999999").status_code == 404


def test_the_page_is_a_frame_its_script_fills(db: Database, server: Server) -> None:
    user = make_user(db, server)
    with_password(db, user.user_id)
    console = Console(server.url, user.email)
    assert console.get("/dashboard").status_code == 303  # signed out: to the sign-in page
    assert console.get("/dashboard/data.json").status_code == 303
    assert console.sign_in().status_code == 303
    assert console.get("/").headers["location"] == "/console/dashboard"
    page = console.get("/dashboard")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "style=" not in page.text and "<script>" not in page.text and "hx-on" not in page.text
    assert page.text.count('data-chart="') == 4 and 'data-source="/console/dashboard/data.json"' in page.text
    for asset in ("/static/console/dashboard.js", "/static/console/dashboard.css", "/static/vendor/uplot/uPlot.iife.min.js",
                  "/static/vendor/uplot/uPlot.min.css"):
        assert asset in page.text
        assert console.http.get(asset).status_code == 200
    # every control has a label: the operator's picker is the only one, inside its <label>
    assert '<a href="/console/dashboard" aria-current="page">Dashboard</a>' in page.text


# -- the queries themselves, on both backends --------------------------------------------------

NOW = dt.datetime(2026, 3, 2, 10, 20, 0)


def message(account_id: int, user_id: int, at: dt.datetime, status: str, *, direction: str = "OUTBOUND",
            cost: int = 1000, deleted: bool = False) -> Message:
    return Message(id=uuid.uuid4().hex[:24], account_id=account_id, user_id=user_id, direction=direction,
                   status=status, to_number="+27821234567", body="x", encoding="GSM7", parts=1, credit_cost=cost,
                   created_at=at, deleted=deleted)


def test_hours_count_each_message_in_the_hour_it_was_created(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db
    hour = dt.timedelta(hours=1)
    with db.write() as session:
        one = create_account(session, "one@example.com").user
        member = create_user(session, one.account_id, "member@example.com").user
        two = create_account(session, "two@example.com").user
        rows = [
            message(one.account_id, one.id, NOW - dt.timedelta(minutes=5), "DELIVERED"),
            message(one.account_id, one.id, NOW - dt.timedelta(minutes=19), "FAILED_REFUNDED"),  # 10:01: this hour
            message(one.account_id, member.id, NOW - dt.timedelta(minutes=21), "SENT", cost=2000),  # 09:59
            message(one.account_id, one.id, NOW - 5 * hour, "DELIVERED", deleted=True),  # hidden, still counted
            message(one.account_id, one.id, NOW - 5 * hour, "DELIVERED", direction="INBOUND", cost=0),
            message(one.account_id, member.id, NOW.replace(minute=0) - 23 * hour, "UNKNOWN"),  # the first hour
            message(one.account_id, one.id, NOW.replace(minute=0) - 23 * hour - dt.timedelta(seconds=1), "DELIVERED"),
            message(two.account_id, two.id, NOW - dt.timedelta(minutes=5), "DELIVERED"),  # another account
        ]
        session.add_all(rows)
        session.flush()
        session.add(QueueEntry(message_id=rows[2].id, available_at=NOW - dt.timedelta(minutes=3)))
        session.add(QueueEntry(message_id=rows[0].id, available_at=NOW + hour))
        session.add(QueueEntry(message_id=rows[-1].id, available_at=NOW - dt.timedelta(minutes=30)))
        account, user = stats.Scope(one.account_id), stats.Scope(one.account_id, member.id)
    with db.read() as session:
        found = stats.hours(session, account, NOW)
        mine = stats.hours(session, user, NOW)
        assert [backlog(session, account, NOW), backlog(session, user, NOW)] == [
            Backlog(1, 1, NOW - dt.timedelta(minutes=3), False), Backlog(1, 0, NOW - dt.timedelta(minutes=3), False)]
        assert backlog(session, account, NOW, cap=1).capped
    assert found.starts[0] == NOW.replace(minute=0) - 23 * dt.timedelta(hours=1) and len(found.starts) == 24
    assert found.outbound["DELIVERED"][-1] == 1 and found.outbound["FAILED_REFUNDED"][-1] == 1
    assert found.outbound["SENT"][-2] == 1 and found.outbound["DELIVERED"][-6] == 1
    assert found.outbound["UNKNOWN"][0] == 1 and found.received[-6] == 1
    assert found.totals == {"SCHEDULED": 0, "SENT": 1, "DELIVERED": 2, "FAILED": 0, "FAILED_REFUNDED": 1,
                            "FAILED_OPTOUT": 0, "UNKNOWN": 1}  # the one a second before the first hour: out
    assert found.credits[-1] == 1000 and found.credits[-2] == 2000  # the refunded one used nothing
    assert found.delivery_rate()[-1] == 0.5 and found.delivery_rate()[-2] is None and found.overall_rate() == 0.5
    assert mine.totals["SENT"] == 1 and mine.totals["UNKNOWN"] == 1 and sum(mine.totals.values()) == 2
    # remembered: the older hours are read again only after ``keep``; the last two every time
    remembered = stats.Remembered(keep=3600)
    with db.read() as session:
        assert remembered.hours(session, account, NOW) == found
    with db.write() as session:
        session.get(Message, rows[3].id).status = "FAILED"  # five hours ago
        session.get(Message, rows[2].id).status = "DELIVERED"  # the hour before this one
    with db.read() as session:
        seen = remembered.hours(session, account, NOW)
        assert seen.outbound["DELIVERED"][-2] == 1 and seen.outbound["FAILED"][-6] == 0
        remembered.forget()
        assert stats.hours(session, account, NOW) == remembered.hours(session, account, NOW)
        assert remembered.hours(session, account, NOW).outbound["FAILED"][-6] == 1
