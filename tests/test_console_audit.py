"""The console's Audit log over real HTTP, on SQLite and PostgreSQL: the entries the other
screens' changes wrote, newest first, to the operator only (403 for administrators and users),
filtered by account and by action, and walked in keyset pages to the end."""

from __future__ import annotations

import re
import uuid

from console_client import Console, signed_in, with_password
from sqlalchemy import select

from conftest import Server, make_user
from pigeon.accounts.models import User
from pigeon.accounts.service import create_account, create_user
from pigeon.audit import service as audit
from pigeon.audit.models import AuditEntry
from pigeon.db import Database

ENTRY = re.compile(r'<tr class="entry">\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td>(\d+)[^<]*</td>\s*'
                   r'<td><code>([^<]*)</code></td>\s*<td>([^<]*)</td>')
MORE = re.compile(r'hx-get="(/console/audit/rows\?[^"]+)"')


def _email() -> str:
    return f"audit-{uuid.uuid4().hex[:10]}@example.com"


def _account_of(db: Database, user_id: int) -> int:
    with db.read() as session:
        return session.get_one(User, user_id).account_id


def test_the_operator_sees_what_the_screens_changed(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    other = make_user(db, server)
    account_id, other_account = _account_of(db, admin.user_id), _account_of(db, other.user_id)
    with db.write() as session:
        member = create_user(session, account_id, _email())
        operator = create_account(session, _email(), master=True)
    as_admin = signed_in(db, server.url, admin.email, admin.user_id)
    as_other = signed_in(db, server.url, other.email, other.user_id)
    assert as_admin.post("/contacts", {"number": "+27825550001", "first_name": "Ann"}).status_code == 303
    assert as_admin.post("/contacts/groups", {"name": "Team"}).status_code == 303
    assert as_admin.post("/contacts/templates", {"name": "Hi", "body": "Hi {{firstName}}"}).status_code == 303
    assert as_admin.post("/campaigns", {"display_name": "Alerts"}).status_code == 303
    assert as_other.post("/contacts", {"number": "+27825550002"}).status_code == 303

    as_operator = signed_in(db, server.url, operator.user.email, operator.user.id)
    mine = as_operator.get(f"/audit?account={account_id}")
    assert mine.status_code == 200
    entries = ENTRY.findall(mine.text)
    assert [(who, int(acct), action) for who, acct, action, _ in entries] == [
        (admin.email, account_id, "campaign.create"), (admin.email, account_id, "template.create"),
        (admin.email, account_id, "group.create"), (admin.email, account_id, "contact.create"),
        (admin.email, account_id, "signin")]  # newest first
    assert entries[3][3] == "+27825550001" and entries[1][3] == "Hi"
    assert "+27825550002" not in mine.text
    everyone = as_operator.get("/audit").text
    assert "+27825550001" in everyone and "+27825550002" in everyone
    contacts = ENTRY.findall(as_operator.get(f"/audit?account={account_id}&action=contact").text)
    assert [action for _, _, action, _ in contacts] == ["contact.create"]
    exact = ENTRY.findall(as_operator.get(f"/audit?account={account_id}&action=group.create").text)
    assert [action for _, _, action, _ in exact] == ["group.create"]
    assert ENTRY.findall(as_operator.get(f"/audit?account={account_id}&action=group.delete").text) == []
    assert ENTRY.findall(as_operator.get(f"/audit?account={other_account}&action=template.*").text) == []
    assert as_operator.get("/audit?account=999999999").status_code == 404
    assert as_operator.get("/audit?account=abc").status_code == 404
    assert as_operator.get("/audit/rows?before=garbage").status_code == 400
    assert 'href="/console/audit"' in as_operator.get("/messages").text  # the operator's link

    as_member = signed_in(db, server.url, member.user.email, member.user.id)
    for console in (as_admin, as_member, as_other):
        refused = console.get("/audit")
        assert refused.status_code == 403 and "Only the operator" in refused.text
        assert console.get(f"/audit/rows?account={account_id}").status_code == 403
        assert 'href="/console/audit"' not in console.get("/messages").text
    for console in (as_admin, as_other, as_operator, as_member):
        console.close()


def test_sign_ins_failures_and_sign_outs_are_in_the_log(db: Database, server: Server) -> None:
    user = make_user(db, server)
    account_id = _account_of(db, user.user_id)
    with_password(db, user.user_id)
    nobody = _email()
    assert Console(server.url, user.email).sign_in("not the password").status_code == 401
    assert Console(server.url, nobody).sign_in().status_code == 401
    console = Console(server.url, user.email)
    assert console.sign_in().status_code == 303
    assert console.post("/sign-out").status_code == 303
    with db.read() as session:
        mine = session.execute(select(AuditEntry.action, AuditEntry.actor, AuditEntry.actor_id, AuditEntry.detail)
                               .where(AuditEntry.account_id == account_id).order_by(AuditEntry.id)).all()
        unknown = session.execute(select(AuditEntry.action, AuditEntry.account_id, AuditEntry.detail)
                                  .where(AuditEntry.subject == nobody)).all()
    assert [tuple(r) for r in mine] == [
        ("signin.failed", user.email, None, "wrong password, from 127.0.0.1"),
        ("signin", user.email, user.user_id, "from 127.0.0.1"),
        ("signout", user.email, user.user_id, None)]
    assert unknown == []  # a guess at an email that names nobody is not written: no text of a stranger's choosing
    with db.write() as session:
        operator = create_account(session, _email(), master=True)
    as_operator = signed_in(db, server.url, operator.user.email, operator.user.id)
    shown = ENTRY.findall(as_operator.get(f"/audit?account={account_id}&action=signin").text)
    assert [action for _, _, action, _ in shown] == ["signin", "signin.failed"]  # the family, not signout
    as_operator.close()
    console.close()


def test_the_log_walks_in_keyset_pages(db: Database, server: Server) -> None:
    owner = make_user(db, server)
    account_id = _account_of(db, owner.user_id)
    with db.write() as session:
        operator = create_account(session, _email(), master=True)
        for i in range(120):
            audit.record(session, "test.step", actor="cli", account_id=account_id, subject=f"step {i}")
    console = signed_in(db, server.url, operator.user.email, operator.user.id)
    first = console.get(f"/audit?account={account_id}&action=test")
    seen = [subject for _, _, _, subject in ENTRY.findall(first.text)]
    assert len(seen) == 50
    more = MORE.search(first.text)
    while more:
        page = console.http.get(more.group(1).replace("&amp;", "&"))
        assert page.status_code == 200
        seen += [subject for _, _, _, subject in ENTRY.findall(page.text)]
        more = MORE.search(page.text)
    with db.read() as session:
        order = session.scalars(select(AuditEntry.subject).where(AuditEntry.account_id == account_id)
                                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())).all()
    assert seen == list(order) and len(set(seen)) == 120  # every entry once, newest first
    console.close()
