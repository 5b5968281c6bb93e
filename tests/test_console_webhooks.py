"""The console's Webhooks screen over real HTTP, on SQLite and PostgreSQL: the visitor's
webhook settings (URLs checked as the API checks them, the secret made and shown once), the
log of deliveries (DELIVERED, then FAILED from a receiver that answers 500, keyset pages over a
team, filters), the resend button (the receiver gets the event again, same nonce), each change
in the audit log, and another user's events answering 404.

The receivers are real HTTP servers on loopback (tests/test_webhooks.py); the test server
allows loopback URLs and retries fast. A FAILED event needs its retry window (24 hours at
least) to pass: as in test_webhooks, the test moves the event's creation back 49 hours."""

from __future__ import annotations

import datetime as dt
import html
import random
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from browser import Watch
from console_client import PASSWORD, signed_in, with_password
from playwright.sync_api import Page, expect
from sqlalchemy import select, update
from test_webhooks import Receiver

from conftest import API, Server, make_user, own_database, url_of
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import create_account, create_user
from pigeon.audit.models import AuditEntry
from pigeon.db import Database, utcnow
from pigeon.webhooks.models import State, WebhookEvent

EVENT_ROW = re.compile(r'<tr id="event-([0-9a-f-]{36})" data-state="([A-Z]+)">')
MORE = re.compile(r'hx-get="(/console/webhooks/rows\?[^"]+)"')


def _email() -> str:
    return f"hooks-{uuid.uuid4().hex[:10]}@example.com"


def phone() -> str:
    """A number no other test texts; it ends in 1 (the simulator fails 666, refuses 000)."""
    return f"+2783{random.randrange(10**5, 10**6)}1"


def _rows(page: str) -> list[tuple[str, str]]:
    return EVENT_ROW.findall(page)


def _more(page: str) -> str | None:
    found = MORE.search(page)
    return html.unescape(found.group(1)) if found else None


def _secret(page: str) -> str | None:
    found = re.search(r'id="new-secret" type="text" readonly value="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _account_of(db: Database, user_id: int) -> int:
    with db.read() as session:
        return session.scalar(select(UserRow.account_id).where(UserRow.id == user_id))


def _settings_of(db: Database, user_id: int) -> tuple[str | None, str | None, str | None]:
    with db.read() as session:
        row = session.execute(select(UserRow.reply_url, UserRow.report_url, UserRow.webhook_secret)
                              .where(UserRow.id == user_id)).one()
        return row.reply_url, row.report_url, row.webhook_secret


def _audit(db: Database, actor_id: int) -> list[tuple[str, str | None, str | None]]:
    with db.read() as session:
        return [tuple(r) for r in session.execute(select(AuditEntry.action, AuditEntry.subject, AuditEntry.detail)
                                                  .where(AuditEntry.actor_id == actor_id, AuditEntry.action.not_like("sign%")).order_by(AuditEntry.id))]


def _events(db: Database, user_id: int) -> list[WebhookEvent]:
    with db.read() as session:
        return list(session.scalars(select(WebhookEvent).where(WebhookEvent.user_id == user_id)
                                    .order_by(WebhookEvent.created_at)))


def _until(what: Callable[[], object], timeout: float = 30, why: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        assert time.monotonic() < deadline, why or "timed out"
        time.sleep(0.1)


def test_settings_are_checked_saved_audited_and_a_made_secret_is_shown_once(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    empty = console.get("/webhooks")
    assert empty.status_code == 200 and "none yet" in empty.text and "No deliveries match." in empty.text
    assert 'name="report_url"' in empty.text and 'aria-current="page"' in empty.text

    saved = console.post("/webhooks/settings", {"reply_url": "", "report_url": "http://127.0.0.1:9/reports?x=1"})
    assert saved.status_code == 200 and "were saved" in saved.text
    made = _secret(saved.text)
    assert made and len(made) >= 24
    assert _settings_of(db, user.user_id) == (None, "http://127.0.0.1:9/reports?x=1", made)
    api = user.http.get(f"{API}/account/developer-settings").json()
    assert api["reportUrl"] == "http://127.0.0.1:9/reports?x=1" and api["hasSecret"] and api["secret"] is None

    again = console.get("/webhooks")
    assert _secret(again.text) is None and "<strong>set</strong>" in again.text, "shown only once"
    assert 'value="http://127.0.0.1:9/reports?x=1"' in again.text

    typed = console.post("/webhooks/settings", {"reply_url": "http://127.0.0.1:9/replies",
                                                "report_url": "http://127.0.0.1:9/reports?x=1",
                                                "secret": "a typed secret"})
    assert typed.status_code == 200 and _secret(typed.text) is None
    assert _settings_of(db, user.user_id) == ("http://127.0.0.1:9/replies", "http://127.0.0.1:9/reports?x=1",
                                              "a typed secret")
    fresh = console.post("/webhooks/settings", {"reply_url": "http://127.0.0.1:9/replies", "report_url": "",
                                                "new_secret": "1"})
    shown = _secret(fresh.text)
    assert shown and shown not in (made, "a typed secret")
    assert _settings_of(db, user.user_id) == ("http://127.0.0.1:9/replies", None, shown)

    both = console.post("/webhooks/settings", {"reply_url": "", "report_url": "", "secret": "another one",
                                               "new_secret": "1"})
    assert both.status_code == 400 and "not both" in both.text
    short = console.post("/webhooks/settings", {"secret": "short"})
    assert short.status_code == 400 and "8 to 255 characters" in short.text
    assert _settings_of(db, user.user_id) == ("http://127.0.0.1:9/replies", None, shown), "refusals change nothing"

    entries = _audit(db, user.user_id)
    assert [a for a, _, _ in entries] == ["webhook.settings"] * 3
    assert "delivery report URL set to http://127.0.0.1:9/…" in entries[0][2]
    assert "x=1" not in entries[0][2]  # a URL's query may hold a receiver's credentials
    assert "shared secret made" in entries[0][2]
    assert "shared secret replaced" in entries[1][2] and "reply URL set to" in entries[1][2]
    assert "delivery report URL cleared" in entries[2][2]
    assert not any(secret in str(entries) for secret in (made, shown, "a typed secret")), "never the secret"
    console.close()


def test_a_bad_url_is_refused_clearly_and_changes_nothing(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    for url, reason in (("ftp://example.com/x", "must start with http:// or https://"),
                        ("http://example.com/a b", "must not contain spaces"),
                        ("https://user:pw@example.com/", "must not carry credentials"),
                        ("http:///nohost", "must name a host")):
        refused = console.post("/webhooks/settings", {"reply_url": "", "report_url": url})
        assert refused.status_code == 400, url
        assert 'role="alert"' in refused.text and reason in html.unescape(refused.text), url
        assert html.escape(url, quote=True) in refused.text or url in refused.text, "the form keeps what was typed"
    assert _settings_of(db, user.user_id) == (None, None, None)
    assert _audit(db, user.user_id) == []
    console.close()


def test_a_private_address_is_refused_unless_the_operator_allows_it(database_url: str, tmp_path: Path) -> None:
    with own_database(database_url, tmp_path) as db:
        strict = Server(url_of(db), tmp_path, {"PIGEON_WEBHOOKS_ALLOW_PRIVATE": "false"}).start()
        try:
            user = make_user(db, strict)
            console = signed_in(db, strict.url, user.email, user.user_id)
            page = console.get("/webhooks")
            assert "loopback or private" in page.text
            for url in ("http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://[::1]/hook"):
                refused = console.post("/webhooks/settings", {"report_url": url})
                assert refused.status_code == 400 and "PIGEON_WEBHOOKS_ALLOW_PRIVATE" in refused.text, url
            assert _settings_of(db, user.user_id) == (None, None, None)
            console.close()
        finally:
            strict.stop()


def test_deliveries_are_logged_failed_ones_resent_and_the_receiver_gets_them_again(
    db: Database, server: Server
) -> None:
    receiver = Receiver().start()
    try:
        user = make_user(db, server)
        console = signed_in(db, server.url, user.email, user.user_id)
        assert console.post("/webhooks/settings", {"reply_url": "", "report_url": receiver.url}).status_code == 200
        delivered = user.send(phone(), "report me").json()["messageId"]
        user.wait_status(delivered, "DELIVERED")
        [post] = receiver.wait(lambda p: len(p) >= 1)
        assert post["form"]["messageId"] == delivered and post["form"]["status"] == "DELIVERED"
        [first] = _events(db, user.user_id)
        page = _until(lambda: (p := console.get("/webhooks?state=DELIVERED").text) and _rows(p) and p,
                      why="the delivered event is listed")
        assert _rows(page) == [(first.id, "DELIVERED")]
        assert f'href="/console/messages/{delivered}"' in page and "REPORT" in page
        assert _rows(console.get("/webhooks?state=FAILED").text) == []
        assert _rows(console.get("/webhooks?kind=REPLY").text) == []

        receiver.failures = 10**6  # answer 500 from now on
        failing = user.send(phone(), "fail me").json()["messageId"]
        user.wait_status(failing, "DELIVERED")
        second = _until(lambda: next((e for e in _events(db, user.user_id)
                                      if e.message_id == failing and e.attempts >= 2), None),
                        why="the receiver's 500s are retried")
        assert second.state == State.PENDING and "500" in (second.last_error or "")
        with db.write() as session:  # its retry window has passed (retry_hours is 24 at least)
            session.execute(update(WebhookEvent).where(WebhookEvent.id == second.id)
                            .values(created_at=utcnow() - dt.timedelta(hours=49)))
        _until(lambda: _rows(console.get("/webhooks?state=FAILED").text) == [(second.id, "FAILED")],
               why="the event fails once its window has passed")
        failed_page = console.get("/webhooks?state=FAILED").text
        assert f'href="/console/messages/{failing}"' in failed_page and "500" in failed_page
        assert f'action="/console/webhooks/{second.id}/resend"' in failed_page

        receiver.failures = 0
        before = len(receiver.delivered())
        again = console.post(f"/webhooks/{second.id}/resend", headers={"HX-Request": "true"})
        assert again.status_code == 200 and _rows(again.text) == [(second.id, "PENDING")]
        assert "queued again" in again.text
        twice = console.post(f"/webhooks/{second.id}/resend", headers={"HX-Request": "true"})
        assert twice.status_code in (200, 409)  # already taken and delivered, or still waiting: never queued twice
        posts = receiver.wait(lambda p: any(q["form"]["messageId"] == failing for q in p[before:]))
        resent = next(q for q in posts[before:] if q["form"]["messageId"] == failing)
        assert resent["form"]["nonce"] == second.id, "the same nonce: a receiver can drop a repeat"
        assert int(resent["headers"]["X-Pigeon-Attempt"]) > second.attempts, "attempts count on"
        _until(lambda: next(e for e in _events(db, user.user_id) if e.id == second.id).state == State.DELIVERED)

        # a delivered event is sent again too (without htmx: back to the log)
        count = sum(q["form"]["messageId"] == delivered for q in receiver.delivered())
        back = console.post(f"/webhooks/{first.id}/resend")
        assert back.status_code == 303 and back.headers["location"] == "/console/webhooks?done=resent"
        receiver.wait(lambda p: sum(q["form"]["messageId"] == delivered for q in p) > count)
        assert "queued again" in console.get("/webhooks?done=resent").text

        resends = [(s, d) for a, s, d in _audit(db, user.user_id) if a == "webhook.resend"]
        assert resends[0][0] == second.id and "was FAILED" in resends[0][1] and failing in resends[0][1]
        assert resends[-1][0] == first.id and "was DELIVERED" in resends[-1][1]
        console.close()
    finally:
        receiver.stop()


def test_a_resend_is_refused_without_a_url_and_for_a_pending_event(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    down = Receiver()  # never started: its events wait
    console.post("/webhooks/settings", {"report_url": down.url})
    message_id = user.send(phone(), "waits").json()["messageId"]
    user.wait_status(message_id, "DELIVERED")
    [event] = _until(lambda: _events(db, user.user_id))
    pending = console.post(f"/webhooks/{event.id}/resend")
    assert pending.status_code == 409 and "already waiting" in pending.text
    with db.write() as session:
        session.execute(update(WebhookEvent).where(WebhookEvent.id == event.id)
                        .values(state=State.FAILED.value, finished_at=utcnow()))
    console.post("/webhooks/settings", {"report_url": ""})
    gone = console.post(f"/webhooks/{event.id}/resend", headers={"HX-Request": "true"})
    assert gone.status_code == 400 and "no delivery report URL" in gone.text and gone.headers["HX-Retarget"] == "#flash"
    assert _events(db, user.user_id)[0].state == State.FAILED
    assert [a for a, _, _ in _audit(db, user.user_id)].count("webhook.resend") == 0
    console.close()


def test_the_log_is_scoped_paged_over_a_team_and_other_events_are_404(db: Database, server: Server) -> None:
    receiver = Receiver().start()
    try:
        admin = make_user(db, server, credits=200)
        account_id = _account_of(db, admin.user_id)
        stranger = make_user(db, server)
        with db.write() as session:
            member = create_user(session, account_id, _email(), credits=200)
            operator = create_account(session, _email(), master=True)
            for who in (admin.user_id, member.user.id, stranger.user_id):
                session.execute(update(UserRow).where(UserRow.id == who).values(report_url=receiver.url,
                                                                              webhook_secret="s3cret-for-tests"))
        member_http = httpx.Client(base_url=server.url, headers={"email": member.user.email, "token": member.token},
                                   timeout=10)
        sent: list[str] = []
        for client, count in ((admin.http, 33), (member_http, 30)):
            answer = client.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": [
                {"recipientNumber": phone(), "message": f"bulk {i}"} for i in range(count)]})
            assert answer.status_code == 200, answer.text
            sent += [r["messageId"] for r in answer.json()["sendSmsResponses"]]
        stranger.send(phone(), "not yours")
        _until(lambda: len({q["form"]["messageId"] for q in receiver.delivered()}) >= 64, why="every report")

        console = signed_in(db, server.url, admin.email, admin.user_id)
        first = console.get("/webhooks")
        seen = [event_id for event_id, _ in _rows(first.text)]
        assert len(seen) == 50 and member.user.email in first.text
        more = _more(first.text)
        while more:
            page = console.get(more.removeprefix("/console"), headers={"HX-Request": "true"})
            assert page.status_code == 200
            seen += [event_id for event_id, _ in _rows(page.text)]
            more = _more(page.text)
        with db.read() as session:
            events = list(session.scalars(select(WebhookEvent).where(WebhookEvent.message_id.in_(sent))))
        assert sorted(seen) == sorted(e.id for e in events) and len(seen) == 63, "each once, the stranger's never"
        order = {e.id: (e.created_at, e.id) for e in events}
        assert [order[i] for i in seen] == sorted(order.values(), reverse=True), "newest first"
        mine = _rows(console.get(f"/webhooks?user={member.user.email}").text)
        assert len(mine) == 30 and {i for i, _ in mine} == {e.id for e in events if e.user_id == member.user.id}

        # the team-mate sees only their own, and cannot resend the administrator's
        plain = signed_in(db, server.url, member.user.email, member.user.id)
        theirs = plain.get("/webhooks?user=" + admin.email)
        assert {i for i, _ in _rows(theirs.text)} <= {e.id for e in events if e.user_id == member.user.id}
        admins_event = next(e for e in events if e.user_id == admin.user_id)
        assert plain.post(f"/webhooks/{admins_event.id}/resend").status_code == 404
        assert plain.get(f"/webhooks?account={account_id + 10**6}").status_code == 404
        # another account's event does not exist for the administrator; the operator reaches it
        [strangers] = _until(lambda: _events(db, stranger.user_id))
        assert console.post(f"/webhooks/{strangers.id}/resend").status_code == 404
        assert console.post("/webhooks/not-an-event/resend").status_code == 404
        stranger_account = _account_of(db, stranger.user_id)
        assert console.get(f"/webhooks?account={stranger_account}").status_code == 404
        boss = signed_in(db, server.url, operator.user.email, operator.user.id)
        assert _rows(boss.get(f"/webhooks?account={stranger_account}").text) == [(strangers.id, "DELIVERED")]
        assert boss.post(f"/webhooks/{strangers.id}/resend").status_code == 303
        with db.read() as session:
            entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "webhook.resend",
                                                             AuditEntry.actor_id == operator.user.id)).one()
        assert entry.account_id == stranger_account and entry.subject == strangers.id
        # the administrator resends the team-mate's event
        members_event = next(e for e in events if e.user_id == member.user.id)
        assert console.post(f"/webhooks/{members_event.id}/resend").status_code == 303
        # and the team-mate resends their own
        own = next(e for e in events if e.user_id == member.user.id and e.id != members_event.id)
        assert plain.post(f"/webhooks/{own.id}/resend").status_code == 303
        assert ("webhook.resend", own.id) in [(a, s) for a, s, _ in _audit(db, member.user.id)]
        for c in (console, plain, boss):
            c.close()
        member_http.close()
    finally:
        receiver.stop()


def test_a_change_without_the_csrf_token_is_refused(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    bare = console.http.post("/console/webhooks/settings", data={"report_url": "http://127.0.0.1:9/x"})
    assert bare.status_code == 403
    forged = console.http.post("/console/webhooks/settings", data={"report_url": "http://127.0.0.1:9/x",
                                                                   "csrf": "forged"})
    assert forged.status_code == 403
    assert console.http.post(f"/console/webhooks/{uuid.uuid4()}/resend").status_code == 403
    assert _settings_of(db, user.user_id) == (None, None, None) and _audit(db, user.user_id) == []
    console.close()


def test_the_webhooks_screen_in_a_browser(db: Database, server: Server, page: Page, watch: Watch) -> None:
    """Settings by label and a resend through htmx, under the console's Content-Security-Policy,
    at a phone's width."""
    receiver = Receiver().start()
    try:
        user = make_user(db, server)
        with_password(db, user.user_id)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{server.url}/console/webhooks")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
        page.get_by_label("Delivery report URL").fill(receiver.url)
        page.get_by_role("button", name="Save settings").click()
        expect(page.get_by_role("status")).to_contain_text("were saved")
        expect(page.get_by_label("Your new shared secret")).not_to_have_value("")
        message_id = user.send(phone(), "from the browser").json()["messageId"]
        user.wait_status(message_id, "DELIVERED")
        receiver.wait(lambda p: len(p) >= 1)
        _until(lambda: _rows(console_page(page, server)) == [(_events(db, user.user_id)[0].id, "DELIVERED")])
        page.get_by_role("button", name=f"Resend the report event of message {message_id}").click()
        expect(page.get_by_text("queued again")).to_be_visible()
        receiver.wait(lambda p: len(p) >= 2)
        watch.assert_clean()
    finally:
        receiver.stop()


def console_page(page: Page, server: Server) -> str:
    page.goto(f"{server.url}/console/webhooks")
    return page.content()
