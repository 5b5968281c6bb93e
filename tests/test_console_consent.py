"""The console's Opt-outs screen over real HTTP, on SQLite and PostgreSQL: an opt-out added by
hand stops a send through the Zoom Connect API (stored FAILED_OPTOUT, uncharged, as the API
does) and removing it lets the next through; a CSV import whose bad rows are each refused with
their line and reason; an export that imports again; a STOP texted (``pigeon simulate reply``)
listed with its keyword, time and number; keyset pages; the consent policies; each change in
the audit log; another account's opt-outs never shown; a plain user looking but not changing."""

from __future__ import annotations

import csv
import html
import io
import random
import re
import subprocess
import sys
import uuid

from browser import Watch
from console_client import PASSWORD, signed_in, with_password
from playwright.sync_api import Page, expect
from sqlalchemy import select
from test_zoom_numbers import fresh

from conftest import Server, make_user
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import create_account, create_user
from pigeon.audit.models import AuditEntry
from pigeon.consent import service as consent
from pigeon.consent.models import OptOut
from pigeon.db import Database, utcnow
from pigeon.numbers import service as numbers

ROW = re.compile(r'<tr class="opt-out">\s*<td>([^<]+)</td>\s*<td title="([^"]+)">([^<]*)</td>\s*<td>([^<]*)</td>'
                 r'\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>')
EVENT = re.compile(r'<tr class="keyword-event">\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>\s*<td>([^<]*)</td>'
                   r'\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>')
MORE = re.compile(r'hx-get="(/console/opt-outs/rows\?[^"]+)"')
REFUSED = re.compile(r'<tr class="refused"><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>')


def _email() -> str:
    return f"optouts-{uuid.uuid4().hex[:10]}@example.com"


def phone() -> str:
    """A number no other test texts; it ends in 1 (the simulator fails 666, refuses 000)."""
    return f"+2784{random.randrange(10**5, 10**6)}1"


def _account_of(db: Database, user_id: int) -> int:
    with db.read() as session:
        return session.scalar(select(UserRow.account_id).where(UserRow.id == user_id))


def _rows(page: str) -> list[tuple[str, ...]]:
    return [tuple(html.unescape(cell) for cell in row) for row in ROW.findall(page)]


def _phones(page: str) -> list[str]:
    return [row[0] for row in _rows(page)]


def _opted_out(db: Database, account_id: int) -> set[tuple[str, str]]:
    with db.read() as session:
        return {(o.scope, o.phone) for o in session.scalars(select(OptOut).where(OptOut.account_id == account_id))}


def _audit(db: Database, actor_id: int) -> list[tuple[str, int | None, str | None, str | None]]:
    with db.read() as session:
        return [tuple(r) for r in session.execute(
            select(AuditEntry.action, AuditEntry.account_id, AuditEntry.subject, AuditEntry.detail)
            .where(AuditEntry.actor_id == actor_id, AuditEntry.action.not_like("sign%")).order_by(AuditEntry.id))]


def _upload(console, path: str, content: str, **fields: str):  # type: ignore[no-untyped-def]
    return console.http.post("/console" + path, data={"csrf": console.csrf, **fields},
                             files={"file": ("opt-outs.csv", content.encode(), "text/csv")})


def test_an_opt_out_added_by_hand_stops_a_send_and_removing_it_lets_the_next_through(
    db: Database, server: Server
) -> None:
    admin = make_user(db, server)
    account_id = _account_of(db, admin.user_id)
    console = signed_in(db, server.url, admin.email, admin.user_id)
    who = phone()
    local = "0" + who[3:]  # the same number as dialled in the default region (ZA)
    added = console.post("/opt-outs", {"phone": local, "scope": f"account:{account_id}", "account": str(account_id)})
    assert added.status_code == 303 and added.headers["location"] == "/console/opt-outs?done=added"
    page = console.get("/opt-outs?done=added")
    assert "The phone was opted out." in page.text
    [row] = _rows(page.text)
    assert row[:4] == (who, f"account:{account_id}", "the account", "CONSOLE")
    assert _opted_out(db, account_id) == {(f"account:{account_id}", who)}
    again = console.post("/opt-outs", {"phone": who, "scope": f"account:{account_id}"})
    assert again.headers["location"] == "/console/opt-outs?done=already-out"

    balance = admin.balance()
    refused = admin.send(who, "you said stop")
    assert refused.status_code == 200, refused.text  # Zoom Connect stores it, as FAILED_OPTOUT
    stopped = admin.wait_status(refused.json()["messageId"], "FAILED_OPTOUT")
    assert stopped["messageStatus"] == "FAILED_OPTOUT" and admin.balance() == balance, "uncharged"

    removed = console.post("/opt-outs/remove", {"scope": f"account:{account_id}", "phone": who,
                                                "account": str(account_id)})
    assert removed.status_code == 303 and removed.headers["location"] == "/console/opt-outs?done=removed"
    assert _opted_out(db, account_id) == set() and _phones(console.get("/opt-outs").text) == []
    gone = console.post("/opt-outs/remove", {"scope": f"account:{account_id}", "phone": who})
    assert gone.status_code == 404 and "has not opted out" in gone.text
    through = admin.send(who, "welcome back")
    admin.wait_status(through.json()["messageId"], "DELIVERED")

    bad = console.post("/opt-outs", {"phone": "not a phone", "scope": f"account:{account_id}"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text and 'value="not a phone"' in bad.text
    wrong = console.post("/opt-outs", {"phone": who, "scope": "number:+14155550000"})
    assert wrong.status_code == 404 and "not one of the account&#39;s numbers" in wrong.text
    odd = console.post("/opt-outs", {"phone": who, "scope": "account:0"})
    assert odd.status_code == 400 and _opted_out(db, account_id) == set()

    assert [(a, acc, s) for a, acc, s, _ in _audit(db, admin.user_id)] == [
        ("opt_out.add", account_id, who), ("opt_out.remove", account_id, who)]
    console.close()


def test_a_csv_import_refuses_bad_rows_alone_and_the_export_imports_again(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    account_id = _account_of(db, admin.user_id)
    with db.write() as session:
        number = numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=account_id)
        policy = consent.create_policy(session, account_id, "Marketing", consent.Texts(opt_out_keywords=["ENOUGH"]))
        consent.assign(session, policy, [number.id])
        other = create_account(session, _email())
        policy_id, number_text = policy.id, number.number
    console = signed_in(db, server.url, admin.email, admin.user_id)
    good = [phone() for _ in range(4)]
    lines = [
        "Phone,Scope",
        f"{good[0]},",  # the scope chosen in the form
        f"0{good[1][3:]},account:{account_id}",  # local form
        "not a phone,",  # 4
        f",account:{account_id}",  # 5: no phone
        f"{good[2]},policy:{policy_id}",
        f"{good[3]},account:{other.user.account_id}",  # 7: another account's scope
        f"{good[3]},policy:C-nope",  # 8
        f"{good[3]},number:{number_text}",  # the number's policy's scope
        f"{good[0]},",  # twice in the file: already
        "+27840000\x001,",  # 11: a NUL
    ]
    result = _upload(console, "/opt-outs/import", "\r\n".join(lines) + "\r\n", scope=f"account:{account_id}",
                     account=str(account_id))
    assert result.status_code == 200, result.text
    assert 'data-testid="added">4<' in result.text and 'data-testid="already">1<' in result.text
    refused = [(int(line), html.unescape(reason)) for line, _, reason in REFUSED.findall(result.text)]
    assert [line for line, _ in refused] == [4, 5, 7, 8, 11]
    reasons = dict(refused)
    assert "not a scope of account" in reasons[7] and "does not exist" in reasons[8] and "NUL" in reasons[11]
    assert reasons[5] == "no phone"
    expected = {(f"account:{account_id}", good[0]), (f"account:{account_id}", good[1]),
                (f"policy:{policy_id}", good[2]), (f"policy:{policy_id}", good[3])}
    assert _opted_out(db, account_id) == expected
    imports = [e for e in _audit(db, admin.user_id) if e[0] == "opt_out.import"]
    assert len(imports) == 1 and imports[0][1] == account_id and "opted out 4" in imports[0][3]

    listed = console.get("/opt-outs").text
    assert {(r[0], r[1]) for r in _rows(listed)} == {(p, s) for s, p in expected}
    assert all(r[3] == "IMPORT" for r in _rows(listed)) and "policy Marketing" in listed

    exported = console.get("/opt-outs.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert {(r["scope"], r["phone"]) for r in table} == expected and set(table[0]) == {"phone", "scope", "keyword", "at"}
    # opt one back in, import the export: it alone is added again, the others already were
    console.post("/opt-outs/remove", {"scope": f"policy:{policy_id}", "phone": good[2]})
    again = _upload(console, "/opt-outs/import", exported.text, scope=f"account:{account_id}")
    assert 'data-testid="added">1<' in again.text and 'data-testid="already">3<' in again.text
    assert 'data-testid="refused">0<' in again.text
    assert _opted_out(db, account_id) == expected

    for content, reason in (("", "empty"), ("name,title\nx,y\n", "no &#39;phone&#39; column")):
        whole = _upload(console, "/opt-outs/import", content)
        assert whole.status_code == 400 and reason in whole.text
    latin = console.http.post("/console/opt-outs/import", data={"csrf": console.csrf},
                              files={"file": ("x.csv", "phone\n+2784é1\n".encode("latin-1"), "text/csv")})
    assert latin.status_code == 400 and "not UTF-8" in latin.text
    assert _upload(console, "/opt-outs/import", "phone\n+27841234561\n",
                   scope="policy:C-not-ours").status_code == 404
    assert _opted_out(db, account_id) == expected
    console.close()


def test_a_stop_texted_to_a_number_is_listed_with_its_keyword_time_and_number(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    account_id = _account_of(db, admin.user_id)
    with db.write() as session:
        row = numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=account_id)
        numbers.make_default(session, row)
        ours = row.number
    who = phone()
    admin.wait_status(admin.send(who, "hello").json()["messageId"], "DELIVERED")
    before = utcnow()
    stop = subprocess.run([sys.executable, "-m", "pigeon", "simulate", "reply", "--from", who, "--to", ours,
                           "--message", "stop"], env=server.env, cwd=server.workdir, capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0, stop.stderr
    inbound = stop.stdout.strip()
    console = signed_in(db, server.url, admin.email, admin.user_id)
    [row] = _rows(console.get("/opt-outs").text)
    assert row[0] == who and row[1] == f"number:{ours}" and row[2] == f"number {ours}" and row[3] == "STOP"
    assert row[4][:16] >= before.strftime("%Y-%m-%d %H:%M") and row[5] == ours
    assert f'href="/console/messages/{inbound}"' in console.get("/opt-outs").text
    events = [tuple(html.unescape(c) for c in e) for e in EVENT.findall(console.get("/opt-outs/events").text)]
    assert events[0][1:] == (who, "STOP", "opt out", ours) and events[0][0] == row[4]
    assert [e[1] for e in EVENT.findall(console.get(f"/opt-outs/events?q={who}").text)] == [who]
    assert EVENT.findall(console.get("/opt-outs/events?q=%2B19999999999").text) == []
    assert _phones(console.get(f"/opt-outs?q=0{who[3:]}").text) == [who]  # a local number, found in E.164
    assert _phones(console.get(f"/opt-outs?q={who[-5:]}").text) == [who]  # a part of one
    assert _phones(console.get("/opt-outs?q=%2B1999").text) == []
    answered = admin.send(who, "after the stop")
    admin.wait_status(answered.json()["messageId"], "FAILED_OPTOUT")
    console.close()


def test_pages_of_opt_outs_walk_to_the_end_newest_first(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    account_id = _account_of(db, admin.user_id)
    phones = sorted({phone() for _ in range(60)})
    _upload_console = signed_in(db, server.url, admin.email, admin.user_id)
    result = _upload(_upload_console, "/opt-outs/import", "phone\n" + "\n".join(phones) + "\n")
    assert f'data-testid="added">{len(phones)}<' in result.text
    first = _upload_console.get("/opt-outs").text
    seen = _phones(first)
    assert len(seen) == 50
    more = MORE.search(first)
    while more:
        page = _upload_console.get(html.unescape(more.group(1)).removeprefix("/console"))
        seen += _phones(page.text)
        more = MORE.search(page.text)
    assert sorted(seen) == phones
    with db.read() as session:
        order = sorted(((o.at, o.scope, o.phone) for o in session.scalars(
            select(OptOut).where(OptOut.account_id == account_id))), reverse=True)
    assert seen == [p for _, _, p in order]
    assert _upload_console.get("/opt-outs?after=nonsense").status_code == 400
    _upload_console.close()


def test_another_accounts_opt_outs_never_show_and_a_plain_user_only_looks(db: Database, server: Server) -> None:
    admin, stranger = make_user(db, server), make_user(db, server)
    account_id, theirs = _account_of(db, admin.user_id), _account_of(db, stranger.user_id)
    mine, hidden = phone(), phone()
    with db.write() as session:
        member = create_user(session, account_id, _email())
        operator = create_account(session, _email(), master=True)
        consent.set_consent(session, theirs, consent.scope(theirs, None), hidden, out=True, how="CLI", now=utcnow())
        policy = consent.create_policy(session, theirs, "Their policy", consent.Texts())
    console = signed_in(db, server.url, admin.email, admin.user_id)
    assert console.post("/opt-outs", {"phone": mine, "scope": f"account:{account_id}"}).status_code == 303
    assert _phones(console.get("/opt-outs").text) == [mine]
    assert hidden not in console.get("/opt-outs.csv").text and hidden not in console.get("/opt-outs/events").text
    assert "Their policy" not in console.get("/opt-outs/policies").text
    for path in (f"/opt-outs?account={theirs}", f"/opt-outs.csv?account={theirs}", f"/opt-outs/events?account={theirs}",
                 f"/opt-outs/policies?account={theirs}", f"/opt-outs/rows?account={theirs}"):
        assert console.get(path).status_code == 404, path
    for data in ({"scope": f"account:{theirs}", "phone": hidden},
                 {"scope": f"account:{theirs}", "phone": hidden, "account": str(theirs)}):
        assert console.post("/opt-outs/remove", data).status_code == 404
    assert console.post("/opt-outs", {"phone": hidden, "scope": f"account:{theirs}"}).status_code in (400, 404)
    assert console.post("/opt-outs", {"phone": hidden, "scope": f"policy:{policy.id}"}).status_code == 404
    assert console.post("/opt-outs", {"phone": hidden, "account": str(theirs)}).status_code == 404
    assert _opted_out(db, theirs) == {(f"account:{theirs}", hidden)}

    plain = signed_in(db, server.url, member.user.email, member.user.id)
    looked = plain.get("/opt-outs")
    assert looked.status_code == 200 and _phones(looked.text) == [mine]
    assert 'action="/console/opt-outs/remove"' not in looked.text and 'aria-label="Opt a phone out"' not in looked.text
    assert plain.get("/opt-outs/events").status_code == 200 and plain.get("/opt-outs.csv").status_code == 200
    assert plain.post("/opt-outs", {"phone": phone(), "scope": f"account:{account_id}"}).status_code == 403
    assert plain.post("/opt-outs/remove", {"phone": mine, "scope": f"account:{account_id}"}).status_code == 403
    assert _upload(plain, "/opt-outs/import", f"phone\n{phone()}\n").status_code == 403
    assert _opted_out(db, account_id) == {(f"account:{account_id}", mine)}

    boss = signed_in(db, server.url, operator.user.email, operator.user.id)
    assert _phones(boss.get(f"/opt-outs?account={theirs}").text) == [hidden]
    assert "Their policy" in boss.get(f"/opt-outs/policies?account={theirs}").text
    lifted = boss.post("/opt-outs/remove", {"scope": f"account:{theirs}", "phone": hidden, "account": str(theirs)})
    assert lifted.status_code == 303 and lifted.headers["location"] == f"/console/opt-outs?account={theirs}&done=removed"
    assert _opted_out(db, theirs) == set()
    assert _audit(db, operator.user.id)[0][:3] == ("opt_out.remove", theirs, hidden)
    for c in (console, plain, boss):
        c.close()


def test_the_consent_policies_are_listed_with_their_keywords_and_numbers(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    account_id = _account_of(db, admin.user_id)
    with db.write() as session:
        rows = [numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=account_id) for _ in range(2)]
        policy = consent.create_policy(session, account_id, "Alerts <b>", consent.Texts(
            opt_out_keywords=["enough", "halt"], opt_in_keywords=["again"]), description="For alerts")
        consent.assign(session, policy, [r.id for r in rows])
        consent.create_policy(session, account_id, "Resting", consent.Texts(), active=False)
        held = [r.number for r in rows]
    console = signed_in(db, server.url, admin.email, admin.user_id)
    page = console.get("/opt-outs/policies")
    assert page.status_code == 200 and "Alerts &lt;b&gt;" in page.text and "<b>" not in page.text.split("<main")[1]
    assert "ENOUGH, HALT" in page.text and "AGAIN" in page.text and "For alerts" in page.text
    assert all(n in page.text for n in held) and "Numbers (2)" in page.text
    assert "not active" in page.text
    scopes = console.get("/opt-outs").text
    assert f'value="policy:{policy.id}"' in scopes and f'value="number:{held[0]}"' in scopes
    console.close()


def test_a_change_without_the_csrf_token_is_refused(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    account_id = _account_of(db, admin.user_id)
    console = signed_in(db, server.url, admin.email, admin.user_id)
    who = phone()
    assert console.http.post("/console/opt-outs", data={"phone": who}).status_code == 403
    assert console.http.post("/console/opt-outs", data={"phone": who, "csrf": "forged"}).status_code == 403
    assert console.http.post("/console/opt-outs/import", data={}, files={
        "file": ("x.csv", f"phone\n{who}\n".encode(), "text/csv")}).status_code == 403
    assert _opted_out(db, account_id) == set() and _audit(db, admin.user_id) == []
    console.close()


def test_the_opt_outs_screen_in_a_browser(db: Database, server: Server, page: Page, watch: Watch) -> None:
    """Opting a phone out and back in by label, under the console's Content-Security-Policy, at
    a phone's width."""
    admin = make_user(db, server)
    with_password(db, admin.user_id)
    who = phone()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/console/opt-outs")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Opt-outs")).to_be_visible()
    page.get_by_text("Opt a phone out").first.click()
    page.get_by_label("Phone", exact=True).first.fill(who)
    page.get_by_role("button", name="Opt out", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("The phone was opted out")
    expect(page.get_by_role("cell", name=who, exact=True)).to_be_visible()
    page.get_by_role("link", name="Keyword events").click()
    expect(page.get_by_role("cell", name="CONSOLE", exact=True)).to_be_visible()
    page.get_by_role("link", name="Opted out").click()
    page.get_by_role("button", name=f"Opt {who} back in to the account").click()
    expect(page.get_by_role("status")).to_contain_text("opted back in")
    expect(page.get_by_text("Nobody has opted out.")).to_be_visible()
    watch.assert_clean()
