"""The console's Contacts screen over real HTTP, on SQLite and PostgreSQL: contacts created,
searched, edited and deleted, keyset pages walked to the end, a CSV import whose bad rows are
each refused with their line and reason, groups and their members, templates whose placeholders
are checked, each change in the audit log, and another user's records answering 404."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from browser import Watch
from console_client import PASSWORD, Console, signed_in, with_password
from playwright.sync_api import Page, expect
from sqlalchemy import select

from conftest import API, Server, make_user
from pigeon.accounts.models import User
from pigeon.accounts.service import create_user
from pigeon.audit.models import AuditEntry
from pigeon.contacts.models import Contact, Group, GroupMember
from pigeon.db import Database
from pigeon.templates.models import Template

CONTACT = re.compile(r'href="/console/contacts/([0-9a-f]{24})"')
MORE = re.compile(r'hx-get="(/console/contacts/rows\?[^"]+)"')


def _email() -> str:
    return f"contacts-{uuid.uuid4().hex[:10]}@example.com"


def _number() -> str:
    return f"+2782{uuid.uuid4().int % 10**7:07d}"


def _actions(db: Database, user_id: int) -> list[tuple[str, str | None]]:
    with db.read() as session:
        return [(a, s) for a, s in session.execute(select(AuditEntry.action, AuditEntry.subject)
                                                   .where(AuditEntry.actor_id == user_id, AuditEntry.action.not_like("sign%"))
                                                   .order_by(AuditEntry.id))]


def _contact_id(db: Database, user_id: int, number: str) -> str:
    with db.read() as session:
        return session.scalars(select(Contact.id).where(Contact.user_id == user_id, Contact.number == number)).one()


def test_contacts_are_created_searched_edited_and_deleted(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    made = console.post("/contacts", {"number": "082 123 4001", "first_name": "Thandi", "last_name": "Mokoena",
                                      "title": "Dr"})
    assert made.status_code == 303 and made.headers["location"] == "/console/contacts?done=created"
    assert console.post("/contacts", {"number": "+27821234002", "first_name": "Pieter"}).status_code == 303
    contact_id = _contact_id(db, user.user_id, "+27821234001")  # read in the default region, stored as E.164
    listed = console.get("/contacts")
    assert listed.status_code == 200 and "Thandi Mokoena" in listed.text and "+27821234002" in listed.text
    assert CONTACT.findall(console.get("/contacts?q=mokoena").text) == [contact_id]  # any case
    assert CONTACT.findall(console.get("/contacts?q=0821234001").text) == [contact_id]  # a local number
    assert CONTACT.findall(console.get("/contacts?q=nobody").text) == []

    twice = console.post("/contacts", {"number": "+27821234001", "first_name": "Again"})
    assert twice.status_code == 409 and "already have a contact with number +27821234001" in twice.text
    assert 'value="Again"' in twice.text  # the form keeps what was typed
    bad = console.post("/contacts", {"number": "not a number"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text
    long = console.post("/contacts", {"number": "+27821234003", "title": "x" * 65})
    assert long.status_code == 400 and "title is longer than 64" in long.text

    edited = console.post(f"/contacts/{contact_id}", {"number": "+27821234009", "first_name": "Thandi",
                                                      "last_name": "", "title": "Prof"})
    assert edited.status_code == 303
    page = console.get(f"/contacts/{contact_id}")
    assert 'value="+27821234009"' in page.text and 'value="Prof"' in page.text
    with db.read() as session:
        row = session.get_one(Contact, contact_id)
        assert (row.number, row.last_name, row.title) == ("+27821234009", None, "Prof")
    clash = console.post(f"/contacts/{contact_id}", {"number": "+27821234002"})
    assert clash.status_code == 409
    assert console.post(f"/contacts/{contact_id}/delete").status_code == 303
    assert console.get(f"/contacts/{contact_id}").status_code == 404
    assert [a for a, _ in _actions(db, user.user_id)] == ["contact.create", "contact.create", "contact.update",
                                                          "contact.delete"]
    assert console.http.post(f"/console/contacts/{_contact_id(db, user.user_id, '+27821234002')}/delete",
                             data={"csrf": "forged"}).status_code == 403  # no CSRF token: nothing changes
    assert _contact_id(db, user.user_id, "+27821234002")
    console.close()


def test_an_import_refuses_each_bad_row_with_its_line_and_the_list_walks_its_pages(db: Database,
                                                                                  server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    assert console.post("/contacts", {"number": "+27829990001"}).status_code == 303
    assert console.post("/contacts/groups", {"name": "Imported"}).status_code == 303
    with db.read() as session:
        group_id = session.scalars(select(Group.id).where(Group.user_id == user.user_id)).one()
    good = [f"+2782888{i:04d},Name{i},Surname{i}" for i in range(120)]
    lines = ["contactNumber,firstName,lastName", *good[:60], "not-a-number,Bad,Row", ",No,Number",
             "+27829990001,Already,There", good[0], "+27828889999," + "x" * 300 + ",Long", *good[60:]]
    answer = console.post("/contacts/import", {"group": group_id},
                          files={"file": ("people.csv", "\n".join(lines).encode(), "text/csv")})
    assert answer.status_code == 200, answer.text
    assert re.search(r'data-testid="imported">120<', answer.text)
    assert re.search(r'data-testid="refused">5<', answer.text)
    refused = re.findall(r'<tr class="refused"><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>', answer.text)
    assert refused == [("62", "not-a-number", "invalid number"), ("63", "(no number)", "missing number"),
                       ("64", "+27829990001", "already in the address book"),
                       ("65", "+27828880000", "duplicate in file"),
                       ("66", "+27828889999", "firstName is longer than 255 characters")]
    with db.read() as session:
        members = session.scalar(select(GroupMember.contact_id).where(GroupMember.group_id == group_id).limit(1))
        count = len(session.scalars(select(GroupMember.contact_id).where(GroupMember.group_id == group_id)).all())
    assert members is not None and count == 120
    assert ("contact.import", "people.csv") in _actions(db, user.user_id)
    with db.read() as session:
        detail = session.scalar(select(AuditEntry.detail).where(AuditEntry.actor_id == user.user_id,
                                                                AuditEntry.action == "contact.import"))
    assert detail == "imported 120 into group 'Imported'"  # one entry per chunk, written with it

    first = console.get("/contacts")
    seen = CONTACT.findall(first.text)
    assert len(seen) == 50
    more = MORE.search(first.text)
    while more:
        page = console.http.get(more.group(1).replace("&amp;", "&"))
        assert page.status_code == 200
        seen += CONTACT.findall(page.text)
        more = MORE.search(page.text)
    with db.read() as session:
        order = session.scalars(select(Contact.id).where(Contact.user_id == user.user_id)
                                .order_by(Contact.created_at.desc(), Contact.id.desc())).all()
    assert seen == list(order) and len(seen) == 121  # every contact once, newest first
    assert console.get("/contacts/rows?after=garbage").status_code == 400

    no_column = console.post("/contacts/import", files={"file": ("x.csv", b"name,surname\nA,B\n", "text/csv")})
    assert no_column.status_code == 400 and "no number column" in no_column.text
    latin = console.post("/contacts/import", files={"file": ("x.csv", "number\n+27821110000,caf\xe9\n".encode("latin-1"),
                                                             "text/csv")})
    assert latin.status_code == 400 and "not UTF-8" in latin.text
    assert console.post("/contacts/import").status_code == 400
    console.close()


def test_groups_and_their_members(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    for number in ("+27827770001", "+27827770002"):
        assert console.post("/contacts", {"number": number}).status_code == 303
    made = console.post("/contacts/groups", {"name": "Choir"})
    assert made.status_code == 303
    group_id = made.headers["location"].split("/")[-1].split("?")[0]
    assert console.post("/contacts/groups", {"name": " Choir "}).status_code == 409
    assert console.post("/contacts/groups", {"name": ""}).status_code == 400
    assert console.post(f"/contacts/groups/{group_id}/members", {"number": "082 777 0001"}).status_code == 303
    missing = console.post(f"/contacts/groups/{group_id}/members", {"number": "+27827770099"})
    assert missing.status_code == 404 and "No contact with number +27827770099" in missing.text
    second = _contact_id(db, user.user_id, "+27827770002")
    assert console.post(f"/contacts/{second}/groups", {"group": group_id}).status_code == 303
    assert console.post(f"/contacts/{second}/groups", {"group": group_id}).status_code == 303  # already in: stays
    page = console.get(f"/contacts/groups/{group_id}")
    assert page.status_code == 200 and "+27827770001" in page.text and "+27827770002" in page.text
    assert f'href="/console/send?group={group_id}"' in page.text
    assert "Choir" in console.get(f"/contacts/{second}").text
    removed = console.post(f"/contacts/groups/{group_id}/members/{second}/remove", {"back": "contact"})
    assert removed.status_code == 303 and removed.headers["location"] == f"/console/contacts/{second}?done=removed"
    assert "+27827770002" not in console.get(f"/contacts/groups/{group_id}").text
    assert console.post(f"/contacts/groups/{group_id}", {"name": "Choir 2026"}).status_code == 303
    assert "Choir 2026" in console.get("/contacts/groups").text
    assert console.post(f"/contacts/groups/{group_id}/delete").status_code == 303
    assert console.get(f"/contacts/groups/{group_id}").status_code == 404
    with db.read() as session:
        assert len(session.scalars(select(Contact.id).where(Contact.user_id == user.user_id)).all()) == 2  # kept
    assert [a for a, _ in _actions(db, user.user_id) if a.startswith("group.")] == [
        "group.create", "group.add_member", "group.add_member", "group.add_member", "group.remove_member",
        "group.rename", "group.delete"]
    console.close()


def test_templates_with_their_placeholders_checked(db: Database, server: Server) -> None:
    user = make_user(db, server)
    console = signed_in(db, server.url, user.email, user.user_id)
    made = console.post("/contacts/templates", {"name": "Welcome", "body": "Hi {{ firstName }}, welcome!"})
    assert made.status_code == 303
    bad = console.post("/contacts/templates", {"name": "Broken", "body": "Hi {{first_name}} from {{company}}"})
    assert bad.status_code == 400
    assert "Unknown placeholder {{first_name}}, {{company}}; the known ones are {{firstName}}" in bad.text
    assert "Hi {{first_name}} from {{company}}</textarea>" in bad.text  # kept for correcting
    assert console.post("/contacts/templates", {"name": "Welcome", "body": "again"}).status_code == 409
    assert console.post("/contacts/templates", {"name": "Empty", "body": "  "}).status_code == 400
    with db.read() as session:
        template_id = session.scalars(select(Template.id).where(Template.user_id == user.user_id)).one()
    edited = console.post(f"/contacts/templates/{template_id}", {"name": "Welcome", "body": "Dear {{title}} {{lastName}}"})
    assert edited.status_code == 303
    refused = console.post(f"/contacts/templates/{template_id}", {"name": "Welcome", "body": "{{nope}}"})
    assert refused.status_code == 400 and "Unknown placeholder {{nope}}" in refused.text
    assert "Dear {{title}} {{lastName}}" in console.get("/contacts/templates").text  # unchanged by the refusal
    # the API sees the same template
    assert user.http.get(f"{API}/templates/{template_id}").json()["data"] == "Dear {{title}} {{lastName}}"
    assert console.get("/contacts/templates/notanumber").status_code == 404
    assert console.post(f"/contacts/templates/{template_id}/delete").status_code == 303
    assert console.get(f"/contacts/templates/{template_id}").status_code == 404
    assert [a for a, _ in _actions(db, user.user_id)] == ["template.create", "template.update", "template.delete"]
    console.close()


def test_another_users_records_do_not_exist_for_the_visitor(db: Database, server: Server) -> None:
    owner = make_user(db, server)
    outsider = make_user(db, server)
    with db.write() as session:
        account_id = session.get_one(User, owner.user_id).account_id
        mate = create_user(session, account_id, _email())
    owner_http = owner.http
    contact_id = owner_http.post(f"{API}/contacts/create", json={"contactNumber": "+27826660001"}).json()["contactId"]
    group_id = owner_http.post(f"{API}/groups/create", json={"name": "Secret"}).json()["groupId"]
    template_id = owner_http.post(f"{API}/templates/create", json={"name": "Secret", "data": "hi"}).json()["templateId"]
    for email, user_id in ((outsider.email, outsider.user_id), (mate.user.email, mate.user.id)):
        console = signed_in(db, server.url, email, user_id)
        for path in (f"/contacts/{contact_id}", f"/contacts/groups/{group_id}", f"/contacts/templates/{template_id}"):
            assert console.get(path).status_code == 404, path
        assert console.post(f"/contacts/{contact_id}", {"number": "+27826660002"}).status_code == 404
        assert console.post(f"/contacts/{contact_id}/delete").status_code == 404
        assert console.post(f"/contacts/groups/{group_id}", {"name": "Mine"}).status_code == 404
        assert console.post(f"/contacts/groups/{group_id}/delete").status_code == 404
        assert console.post(f"/contacts/groups/{group_id}/members/{contact_id}/remove").status_code == 404
        assert console.post(f"/contacts/templates/{template_id}", {"name": "Mine", "body": "x"}).status_code == 404
        assert console.post(f"/contacts/templates/{template_id}/delete").status_code == 404
        assert console.post("/contacts/import", {"group": group_id},
                            files={"file": ("a.csv", b"number\n+27826660003\n", "text/csv")}).status_code == 404
        assert "+27826660001" not in console.get("/contacts?q=2782666").text
        assert "Secret" not in console.get("/contacts/groups").text
        console.close()
    with db.read() as session:
        assert session.get_one(Contact, contact_id).number == "+27826660001"
        assert session.get_one(Group, group_id).name == "Secret"
        assert session.get_one(Template, template_id).body == "hi"
        assert session.scalar(select(Contact.id).where(Contact.number == "+27826660003")) is None


def test_a_signed_out_visitor_is_sent_to_sign_in(server: Server) -> None:
    anonymous = Console(server.url, "nobody@example.com")
    away = anonymous.get("/contacts")
    assert away.status_code == 303 and "/console/sign-in" in away.headers["location"]
    anonymous.close()


def test_the_address_book_in_a_browser(db: Database, server: Server, page: Page, watch: Watch,
                                       tmp_path: Path) -> None:
    """The main flow by label, under the console's Content-Security-Policy, at a phone's width."""
    user = make_user(db, server)
    with_password(db, user.user_id)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/console/contacts")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Contacts")).to_be_visible()
    page.get_by_text("New contact").click()
    page.get_by_label("Number").fill("+27824440001")
    page.get_by_label("First name").fill("Lindiwe")
    page.get_by_role("button", name="Add contact").click()
    expect(page.get_by_role("status")).to_contain_text("The contact was added")
    expect(page.get_by_role("link", name="+27824440001")).to_be_visible()

    page.get_by_role("link", name="Templates").click()
    page.get_by_text("New template").click()
    page.get_by_label("Name").fill("Reminder")
    page.get_by_label("Text").fill("Hi {{firstname}}")
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_role("alert")).to_contain_text("Unknown placeholder {{firstname}}")
    page.get_by_label("Text").fill("Hi {{firstName}}")
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_role("link", name="Reminder")).to_be_visible()

    page.get_by_role("link", name="Import CSV").click()
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("number,firstName\n+27824440002,Sipho\nnonsense,Bad\n")
    page.get_by_label("CSV file").set_input_files(csv_file)
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_test_id("imported")).to_have_text("1")
    expect(page.locator("tr.refused")).to_contain_text("invalid number")
    watch.console[:] = [line for line in watch.console if "status of 400" not in line]  # the refusal asked for
    watch.assert_clean()
