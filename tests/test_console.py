"""The console's foundation over real HTTP: signing in and out, CSRF, the throttle, sessions
ending on a password change, token rotation, and the Messages screen (scopes, keyset pages,
filters, CSV export, a message's parts and live status), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
import uuid
from pathlib import Path

import httpx
from console_client import PASSWORD, Console, signed_in, with_password
from sqlalchemy import select

from conftest import API, Server, make_user, own_database, url_of
from pigeon.accounts.service import create_account, create_user
from pigeon.audit.models import AuditEntry
from pigeon.db import Database

ROW = re.compile(r'href="/console/messages/([0-9a-f]{24})"')
MORE = re.compile(r'hx-get="(/console/messages/rows\?[^"]+)"')


def _email() -> str:
    return f"console-{uuid.uuid4().hex[:10]}@example.com"


def _ids(html: str) -> list[str]:
    return ROW.findall(html)


def _more(html: str) -> str | None:
    found = MORE.search(html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_sign_in_needs_the_password_and_the_forms_own_token(db: Database, server: Server) -> None:
    user = make_user(db, server)
    with_password(db, user.user_id)
    console = Console(server.url, user.email)
    away = console.get("/messages?status=SENT")
    assert away.status_code == 303 and away.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fmessages%3Fstatus%3DSENT"
    assert console.sign_in("not the password").status_code == 401
    assert "pigeon_session" not in console.http.cookies
    form = console.http.get("/console/sign-in")
    forged = console.http.post("/console/sign-in", data={"email": user.email, "password": PASSWORD, "csrf": "forged"})
    assert forged.status_code == 403 and "pigeon_session" not in console.http.cookies
    assert 'name="csrf"' in form.text
    answer = console.sign_in()
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "pigeon_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; over HTTPS (or secure_cookies) it is
    page = console.get("/messages")
    assert page.status_code == 200 and user.email in page.text
    for name in ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"):
        assert name in page.headers
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    # a path that tries to leave the console after signing in stays in it
    other = Console(server.url, user.email)
    other.http.get("/console/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', other.http.get("/console/sign-in").text).group(1)
    gone = other.http.post("/console/sign-in", data={"email": user.email, "password": PASSWORD, "csrf": token,
                                                      "next": "//evil.example/console/"})
    assert gone.status_code == 303 and gone.headers["location"] == "/console/"
    console.close()
    other.close()


def test_a_post_without_the_sessions_csrf_token_changes_nothing(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    refused = console.http.post("/console/account/token", data={"csrf": "not-it"})
    assert refused.status_code == 403
    bare = console.http.post("/console/account/token")
    assert bare.status_code == 403
    assert user.http.get(f"{API}/account/balance").status_code == 200  # the old token still works
    console.close()


def test_signing_out_ends_the_session(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    cookie = console.http.cookies["pigeon_session"]
    assert console.post("/sign-out").status_code == 303
    replayed = httpx.get(f"{server.url}/console/messages", cookies={"pigeon_session": cookie})
    assert replayed.status_code == 303 and "/console/sign-in" in replayed.headers["location"]
    console.close()


def test_a_password_change_ends_the_other_sessions(db: Database, server: Server) -> None:
    user = make_user(db, server)
    here = signed_in(db, server.url, user.email, user.user_id)
    there = Console(server.url, user.email)
    assert there.sign_in().status_code == 303
    wrong = here.post("/account/password", {"current": "not it at all", "new": "a new password!", "again": "a new password!"})
    assert wrong.status_code == 400 and "not right" in wrong.text
    short = here.post("/account/password", {"current": PASSWORD, "new": "short", "again": "short"})
    assert short.status_code == 400 and "at least 10" in short.text
    changed = here.post("/account/password", {"current": PASSWORD, "new": "a new password!", "again": "a new password!"})
    assert changed.status_code == 200 and "password was changed" in changed.text
    assert here.get("/messages").status_code == 200
    assert there.get("/messages").status_code == 303
    assert Console(server.url, user.email).sign_in(PASSWORD).status_code == 401
    assert Console(server.url, user.email).sign_in("a new password!").status_code == 303
    with db.read() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == user.user_id)
                                  .order_by(AuditEntry.id)).all()
        failed = session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "signin.failed",
                                                                 AuditEntry.subject == user.email)).all()
    assert actions == ["signin", "signin", "password.change", "signin"]  # a wrong one names no user as actor
    assert failed == ["wrong password, from 127.0.0.1"]
    here.close()
    there.close()


def test_rotating_the_api_token(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    page = console.post("/account/token")
    assert page.status_code == 200
    token = re.search(r'id="new-token" type="text" readonly value="([^"]+)"', page.text).group(1)
    assert token != user.token
    assert user.http.get(f"{API}/account/balance").status_code == 401
    fresh = httpx.get(f"{server.url}{API}/account/balance", headers={"email": user.email, "token": token})
    assert fresh.status_code == 200
    console.close()


def test_failed_sign_ins_are_slowed_down(database_url: str, tmp_path: Path) -> None:
    with own_database(database_url, tmp_path) as db:
        server = Server(url_of(db), tmp_path, extra_env={"PIGEON_SIGNIN__EMAIL_FAILURES": "3",
                                                          "PIGEON_SIGNIN__WINDOW": "30"}).start()
        try:
            user = make_user(db, server)
            with_password(db, user.user_id)
            console = Console(server.url, user.email)
            for _ in range(3):
                assert console.sign_in("wrong password").status_code == 401
            held = console.sign_in()  # the right password, but too late
            assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
            assert "pigeon_session" not in console.http.cookies
            console.close()
        finally:
            server.stop()


def test_each_visitor_sees_only_their_scope(db: Database, server: Server) -> None:
    admin = make_user(db, server, credits=50)
    with db.write() as session:
        account_id = session.get_one(_user_model(), admin.user_id).account_id
        member = create_user(session, account_id, _email(), credits=20)
        operator = create_account(session, _email(), master=True)
    member_http = httpx.Client(base_url=server.url, headers={"email": member.user.email, "token": member.token})
    outsider = make_user(db, server)
    mine = admin.send("+27821110001", "from the admin").json()["messageId"]
    theirs = member_http.post(f"{API}/sms/send", json={"recipientNumber": "+27821110002", "message": "from the member"}
                              ).json()["messageId"]
    foreign = outsider.send("+27821110003", "from another account").json()["messageId"]

    as_admin = signed_in(db, server.url, admin.email, admin.user_id)
    listed = _ids(as_admin.get("/messages").text)
    assert mine in listed and theirs in listed and foreign not in listed
    assert _ids(as_admin.get(f"/messages?user={member.user.email}").text) == [theirs]
    assert as_admin.get(f"/messages/{foreign}").status_code == 404
    with db.read() as session:
        outsider_account = session.get_one(_user_model(), outsider.user_id).account_id
    assert as_admin.get(f"/messages?account={outsider_account}").status_code == 404  # not theirs to pick
    assert foreign not in as_admin.get(f"/messages?account={outsider_account}").text

    as_member = signed_in(db, server.url, member.user.email, member.user.id)
    assert _ids(as_member.get("/messages").text) == [theirs]
    assert as_member.get(f"/messages/{mine}").status_code == 404  # a team-mate's, and they are no administrator
    assert as_member.get(f"/messages/{theirs}").status_code == 200

    as_outsider = signed_in(db, server.url, outsider.email, outsider.user_id)
    assert as_outsider.get(f"/messages/{mine}").status_code == 404
    assert as_outsider.get(f"/messages/{mine}/status").status_code == 404
    assert mine not in as_outsider.get("/messages.csv").text

    as_operator = signed_in(db, server.url, operator.user.email, operator.user.id)
    assert _ids(as_operator.get(f"/messages?account={outsider_account}").text) == [foreign]
    assert as_operator.get(f"/messages/{mine}").status_code == 200
    for console in (as_admin, as_member, as_outsider, as_operator):
        console.close()
    member_http.close()


def _user_model():  # type: ignore[no-untyped-def]
    from pigeon.accounts.models import User

    return User


def test_messages_scroll_by_keyset_pages_and_export_as_csv(db: Database, server: Server) -> None:
    user = make_user(db, server, credits=500)
    bodies = [f"bulk {i}" for i in range(119)] + ["=HYPERLINK(\"http://x\")"]
    sent = user.http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": [
        {"recipientNumber": f"+2782555{i:04d}", "message": body} for i, body in enumerate(bodies, start=1)]})
    assert sent.status_code == 200, sent.text
    ids = {r["messageId"] for r in sent.json()["sendSmsResponses"]}
    console = signed_in(db, server.url, user.email, user.user_id)
    first = console.get("/messages")
    seen = _ids(first.text)
    assert len(seen) == 50
    more = _more(first.text)
    while more:
        page = console.http.get(more)
        assert page.status_code == 200
        seen += _ids(page.text)
        more = _more(page.text)
    assert len(seen) == 120 and set(seen) == ids  # every message once, none twice
    with db.read() as session:
        from pigeon.messages.models import Message

        order = [m for (m,) in session.execute(select(Message.id).where(Message.user_id == user.user_id)
                                               .order_by(Message.created_at.desc(), Message.id.desc()))]
    assert seen == order

    exported = console.get("/messages.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 120 and {r["id"] for r in rows} == ids
    formula = [r for r in rows if "HYPERLINK" in r["body"]]
    assert formula[0]["body"].startswith("'=")  # shown as text by a spreadsheet, never run
    filtered = list(csv.DictReader(io.StringIO(console.get("/messages.csv?text=bulk 11").text)))
    assert sorted(r["body"] for r in filtered) == ["bulk 11"] + [f"bulk {110 + i}" for i in range(9)]
    console.close()


def test_filters_and_a_long_messages_parts(db: Database, server: Server) -> None:
    user = make_user(db, server, credits=100)
    failing = user.send("+27821230666", "this one fails").json()["messageId"]  # the simulator fails ...666
    long = user.send("+27821230123", "x" * 400, campaign="spring").json()["messageId"]  # 3 parts of GSM-7
    user.wait_status(failing, "FAILED", "FAILED_REFUNDED")
    user.wait_status(long, "DELIVERED")
    console = signed_in(db, server.url, user.email, user.user_id)
    assert _ids(console.get("/messages?status=FAILED_REFUNDED").text) == [failing]
    assert _ids(console.get("/messages?number=0821230123").text) == [long]  # a local number, read in ZA
    assert _ids(console.get("/messages?campaign=spring").text) == [long]
    assert _ids(console.get("/messages?direction=INBOUND").text) == []
    bad = console.get("/messages?status=NOPE")
    assert bad.status_code == 400 and "No status NOPE" in bad.text
    assert console.get("/messages?number=not-a-number").status_code == 400
    assert console.get("/messages?since=2026-13-45").status_code == 400
    assert console.get("/messages?after=garbage").status_code == 400
    detail = console.get(f"/messages/{long}")
    assert detail.status_code == 200
    assert "GSM7, 3 parts" in detail.text and "took its 3 parts as one message" in detail.text  # the simulator's way
    final = console.get(f"/messages/{long}/status")
    assert "DELIVERED" in final.text and "hx-trigger" not in final.text  # final: it stops polling
    console.close()


def test_a_waiting_messages_status_polls_itself(db: Database, server: Server) -> None:
    user = make_user(db, server)
    later = user.send("+27821239876", "later", dateToSend="209901010000").json()["messageId"]
    console = signed_in(db, server.url, user.email, user.user_id)
    badge = console.get(f"/messages/{later}/status")
    assert "SCHEDULED" in badge.text and 'hx-trigger="every 2s"' in badge.text
    console.close()


def test_a_message_waiting_in_the_queue_shows_queued_not_scheduled(db: Database, server: Server) -> None:
    """SCHEDULED is Zoom Connect's word for every message not yet sent; the console says QUEUED for
    one with no time ahead of it (sent now, or its time come), and SCHEDULED only for one ahead."""
    import datetime as dt

    from sqlalchemy import insert

    from pigeon.db import utcnow
    from pigeon.ids import new_id
    from pigeon.messages.models import Message

    user = make_user(db, server)
    with db.read() as session:
        account_id = session.get(_user_model(), user.user_id).account_id
    now = utcnow()
    times = {"now": None, "come": now - dt.timedelta(minutes=5), "ahead": now + dt.timedelta(days=3)}
    ids = {name: new_id() for name in times}
    with db.write() as session:  # held: no queue row, so the delivery engine leaves them waiting
        session.execute(insert(Message), [
            {"id": ids[name], "account_id": account_id, "user_id": user.user_id, "direction": "OUTBOUND",
             "status": "SCHEDULED", "to_number": "+27825550001", "body": name, "encoding": "GSM7", "parts": 1,
             "credit_cost": 1, "read": False, "deleted": False, "created_at": now, "scheduled_for": when}
            for name, when in times.items()])
    console = signed_in(db, server.url, user.email, user.user_id)
    shown = {}
    for name, message_id in ids.items():
        badge = console.get(f"/messages/{message_id}/status")
        assert badge.status_code == 200 and 'data-status="SCHEDULED"' in badge.text  # the API's word, for scripts
        assert 'hx-trigger="every 2s"' in badge.text
        shown[name] = re.search(r">([A-Z_]+)</span>", badge.text).group(1)
    assert shown == {"now": "QUEUED", "come": "QUEUED", "ahead": "SCHEDULED"}
    listed = console.get("/messages")
    assert listed.text.count(">QUEUED</span>") == 2 and listed.text.count(">SCHEDULED</span>") == 1
    console.close()


def test_a_session_lapses_when_idle_or_old_and_is_purged(fresh_db: tuple[str, Database]) -> None:
    import datetime as dt

    from pigeon.accounts import sessions
    from pigeon.accounts.models import WebSession
    from pigeon.accounts.service import Principal

    _, db = fresh_db
    idle, lifetime = dt.timedelta(minutes=30), dt.timedelta(hours=8)
    start = dt.datetime(2026, 12, 1, 9, 0)
    with db.write() as session:
        made = create_account(session, _email())
        who = Principal(made.user.id, made.user.account_id, made.user.email, True)
        opened = sessions.open_session(session, who, "127.0.0.1", start)
    with db.read() as session:
        found = sessions.find_session(session, opened.token, start + dt.timedelta(minutes=29), idle=idle,
                                      lifetime=lifetime)
        assert found is not None and found.csrf == opened.csrf and found.principal == who and found.stale
        assert sessions.find_session(session, opened.token + "x", start, idle=idle, lifetime=lifetime) is None
        assert sessions.find_session(session, opened.token, start + dt.timedelta(minutes=31), idle=idle,
                                     lifetime=lifetime) is None
        assert opened.token not in {row.token_hash for row in session.scalars(select(WebSession))}  # hashed
    now = start
    for _ in range(20):  # kept alive by use, it still ends at its lifetime
        now += dt.timedelta(minutes=25)
        with db.write() as session:
            found = sessions.find_session(session, opened.token, now, idle=idle, lifetime=lifetime)
            if found is None:
                break
            sessions.touch_session(session, found.token_hash, now)
    assert now - start > lifetime - dt.timedelta(minutes=25) and now - start <= lifetime + dt.timedelta(minutes=25)
    with db.write() as session:
        assert sessions.purge_sessions(session, now, idle=idle, lifetime=lifetime) == 1
        assert session.scalars(select(WebSession)).all() == []


def test_cookies_are_secure_behind_a_tls_proxy(db: Database, server: Server) -> None:
    """Behind a proxy that terminated TLS (X-Forwarded-Proto from an address uvicorn trusts:
    loopback), the session cookie is marked Secure."""
    user = make_user(db, server)
    with_password(db, user.user_id)
    https = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=server.url, headers=https) as http:
        form = http.get("/console/sign-in")
        assert "Secure" in form.headers["set-cookie"]
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        http.cookies.set("pigeon_signin_csrf", token)  # a Secure cookie httpx keeps back over plain HTTP
        answer = http.post("/console/sign-in", data={"email": user.email, "password": PASSWORD, "csrf": token})
        assert answer.status_code == 303
        assert "Secure" in answer.headers["set-cookie"] and "HttpOnly" in answer.headers["set-cookie"]


def test_proxy_headers_are_believed_only_from_trusted_proxies(db: Database, database_url: str,
                                                              tmp_path: Path) -> None:
    """trusted_proxies empty: the same X-Forwarded-Proto from loopback makes no cookie Secure;
    naming another address than loopback's does not trust loopback either."""
    for trusted in ("[]", '["10.9.8.7"]'):
        other = Server(database_url, tmp_path, {"PIGEON_TRUSTED_PROXIES": trusted}).start()
        try:
            form = httpx.get(f"{other.url}/console/sign-in", headers={"X-Forwarded-Proto": "https"})
            assert form.status_code == 200 and "Secure" not in form.headers["set-cookie"], trusted
        finally:
            other.stop()


def test_a_body_past_the_limit_is_refused_before_it_is_read(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    big = {"csrf": console.csrf, "text": "x" * 300_000}  # the default limit is 256 KiB
    refused = console.http.post("/console/account/password", data=big)
    assert refused.status_code == 413 and "too large" in refused.text
    console.close()


def test_a_filtered_page_walks_a_bounded_stretch_and_the_next_goes_on(db: Database) -> None:
    """``browse.page`` with walks far smaller than the console's: a rare match far down comes back
    after short (even empty) pages, each ending where its walk stopped; every match shows once, in
    order, whatever the page size and walk; and the walk's statements search an index."""
    import datetime as dt

    from sqlalchemy import event

    from pigeon.db import utcnow
    from pigeon.ids import new_id
    from pigeon.messages import browse
    from pigeon.messages.models import Message

    with db.write() as session:
        account = create_account(session, _email()).user
        other = create_account(session, _email()).user  # its matches are never shown
        start = utcnow().replace(microsecond=0)
        for i in range(300):
            rare = i in (3, 4, 150, 299)  # oldest first: two far down, one midway, the newest
            for owner in (account, other):
                session.add(Message(id=new_id(), account_id=owner.account_id, user_id=owner.id, direction="OUTBOUND",
                                    status="UNKNOWN" if rare else "DELIVERED", to_number=f"+2782555{i:04d}",
                                    body=f"your appointment {i}" if rare else f"invoice {i}", encoding="GSM7",
                                    parts=1, credit_cost=0, read=False, deleted=False,
                                    created_at=start + dt.timedelta(seconds=i // 2)))  # pairs share a second
    whose = browse.Whose(account.account_id)
    rare = browse.Search(text="APPOINTMENT", status="UNKNOWN")
    with db.read() as session:
        everything = [m.id for m in session.scalars(browse.query(whose, rare))]
    assert len(everything) == 4
    for size, walk in ((1, 1), (2, 7), (3, 40), (50, 100), (50, None)):
        got, after, pages, short = [], None, 0, 0
        with db.read() as session:
            while True:
                rows, after = browse.page(session, whose, rare, after, size=size, walk=walk)
                got += [m.id for m in rows]
                pages += 1
                short += after is not None and len(rows) < size
                if after is None:
                    break
        assert got == everything, (size, walk)
        if walk is not None:
            assert pages >= 300 // walk and short > 0  # each page walked at most `walk` messages
    plain = browse.Search(text="invoice")
    with db.read() as session:
        rows, after = browse.page(session, whose, plain, size=10)
    assert len(rows) == 10 and after == (rows[-1].created_at, rows[-1].id)

    if db.is_sqlite:
        plans: list[str] = []

        @event.listens_for(db.engine, "before_cursor_execute")
        def explain(conn, cursor, sql, params, context, many) -> None:  # type: ignore[no-untyped-def]
            if sql.lstrip().upper().startswith("SELECT") and "messages" in sql:
                plans.extend(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))

        with db.read() as session:
            browse.page(session, whose, rare, size=2, walk=40)
        event.remove(db.engine, "before_cursor_execute", explain)
        assert plans and not [p for p in plans if p.startswith("SCAN") or "TEMP B-TREE" in p], plans


def test_a_rare_search_comes_back_short_and_goes_on_where_it_stopped(db: Database, server: Server) -> None:
    """Over HTTP, past one walk (``browse.WALK`` messages): the first page of a rare search says how
    far back it searched and links to the rest; following the links finds the one match, once."""
    import datetime as dt

    from sqlalchemy import insert

    from pigeon.db import utcnow
    from pigeon.ids import new_id
    from pigeon.messages import browse
    from pigeon.messages.models import Message

    user = make_user(db, server)
    with db.read() as session:
        account_id = session.get(_user_model(), user.user_id).account_id
    start = utcnow().replace(microsecond=0) - dt.timedelta(days=1)
    count = browse.WALK + 200
    rows = [{"id": new_id(), "account_id": account_id, "user_id": user.user_id, "direction": "OUTBOUND",
             "status": "DELIVERED", "to_number": "+27825550000", "body": "the needle" if i == 5 else f"hay {i}",
             "encoding": "GSM7", "parts": 1, "credit_cost": 0, "read": False, "deleted": False,
             "created_at": start + dt.timedelta(seconds=i)} for i in range(count)]  # the needle: among the oldest
    with db.write() as session:
        session.execute(insert(Message), rows)
    console = signed_in(db, server.url, user.email, user.user_id)
    first = console.get("/messages?text=needle")
    assert first.status_code == 200 and _ids(first.text) == []
    assert "Searched back to" in first.text and "search older messages" in first.text
    more, found, pages = _more(first.text), [], 1
    while more:
        page = console.http.get(more)
        assert page.status_code == 200
        found += _ids(page.text)
        more, pages = _more(page.text), pages + 1
    assert found == [rows[5]["id"]] and pages == 2
    common = console.get("/messages?text=hay")
    assert len(_ids(common.text)) == 50 and "Searched back to" not in common.text
    console.close()
