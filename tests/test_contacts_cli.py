"""``pigeon contacts import``, ``pigeon templates`` and ``pigeon send-group``, run as commands
against the database the server uses; the server then delivers what send-group queued."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from test_contacts import contact_id, crowd, group_id, members

from conftest import API, Server, User, make_user
from pigeon.contacts.importer import CsvError, read_csv
from pigeon.db import Database

BIG = "x" * 140_000  # over the csv module's field limit, 131072 characters


def pigeon(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pigeon", *args], env=server.env, cwd=server.workdir,
                          capture_output=True, text=True, timeout=120)


def csv_file(server: Server, name: str, text: str) -> str:
    path = Path(server.workdir) / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def all_contacts(user: User) -> dict[str, dict]:
    listed = user.http.get(f"{API}/contacts/all", params={"pageSize": 1000}).json()["webServiceContacts"]
    return {c["contactNumber"]: c for c in listed}


# -- parsing ---------------------------------------------------------------------------------

def test_headers_are_read_in_any_case_and_lines_counted() -> None:
    text = ('\ufeffTitle;MOBILE;First_Name;lastname\nDr;0821234567;Ann;Lee\n\n;;;\n'
            'Mr;"+27 82 123 4568";"Multi\nline";\nMs;;Cat;\nMx;0821234569\n')
    rows = list(read_csv(io.StringIO(text.lstrip("\ufeff"))))
    assert [(r.line, r.number, r.title, r.first_name, r.last_name) for r in rows] == [
        (2, "0821234567", "Dr", "Ann", "Lee"), (5, "+27 82 123 4568", "Mr", "Multi\nline", ""),
        (7, "", "Ms", "Cat", ""), (8, "0821234569", "Mx", None, None),
    ]
    assert [r.number for r in read_csv(io.StringIO("contactNumber\n+27821234567\n"))] == ["+27821234567"]
    assert [r.first_name for r in read_csv(io.StringIO("phone,firstName\n1,A\n"))] == ["A"]


@pytest.mark.parametrize("text", ["", "\n", "name,email\nA,a@b.c\n"])
def test_a_file_without_a_number_column_is_refused(text: str) -> None:
    with pytest.raises(CsvError):
        list(read_csv(io.StringIO(text)))


def test_an_unreadable_line_is_refused_when_the_parser_can_go_on() -> None:
    text = f'number,firstName,notes\n0821234567,Ann\n0821234568,{BIG}\n0821234569,"Cy"\n0821234570,Di,a\x00b\n'
    rows = list(read_csv(io.StringIO(text)))
    assert [(r.line, r.number, r.first_name, r.problem) for r in rows] == [
        (2, "0821234567", "Ann", None),
        (3, "", None, "cannot be read: field larger than field limit (131072)"),
        (4, "0821234569", "Cy", None),
        (5, "0821234570", None, "a field contains a NUL character (\\x00)"),
    ]
    assert read_csv(io.StringIO("number\n08\x0012\n")).__next__().number == "08\\x0012"
    for spanning in (f'number,firstName\n0821234567,Ann\n0821234568,"{BIG}\nmore",x\n0821234569,Cy\n',
                     f'number,firstName\n0821234567,Ann\n0821234568,"Multi\n{BIG}",x\n0821234569,Cy\n'):
        with pytest.raises(CsvError, match="^line 3: field larger than field limit"):
            list(read_csv(io.StringIO(spanning)))
    with pytest.raises(CsvError, match="^line 1: "):
        list(read_csv(io.StringIO(f"number,{BIG}\n")))


# -- import ----------------------------------------------------------------------------------

def test_import(server: Server, user: User) -> None:
    existing = contact_id(user, "+27821000005", firstName="Already")
    path = csv_file(server, "contacts.csv", "\n".join([
        "contactNumber,FirstName,LastName,Title",  # line 1
        "0821000001,Ann,Lee,Dr",                   # 2 imported
        "+27821000002,Ben,,",                      # 3 imported
        "not-a-number,Bad,,",                      # 4 invalid
        "27821000001,Ann,Again,",                  # 5 duplicate of line 2
        ",Nobody,,",                               # 6 missing number
        "+27821000005,Dup,,",                      # 7 already a contact
        "+27821000003,Cy," + "x" * 300 + ",",      # 8 last name too long
        "+27 82 100 0004,Di,,Ms",                  # 9 imported
    ]) + "\n")
    done = pigeon(server, "contacts", "import", "--email", user.email, path, "--group", "Imported")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines == [
        "imported 3, refused 5",
        "line 4: not-a-number: invalid number",
        "line 5: +27821000001: duplicate in file",
        "line 6: (no number): missing number",
        "line 7: +27821000005: already in the address book",
        "line 8: +27821000003: lastName is longer than 255 characters",
    ]
    contacts = all_contacts(user)
    assert set(contacts) == {"+27821000001", "+27821000002", "+27821000004", "+27821000005"}
    ann = contacts["+27821000001"]
    assert (ann["firstName"], ann["lastName"], ann["title"]) == ("Ann", "Lee", "Dr")
    assert contacts["+27821000002"]["lastName"] is None
    assert contacts["+27821000005"] == {**contacts["+27821000005"], "contactId": existing, "firstName": "Already"}
    groups = user.http.get(f"{API}/groups/all").json()["webServiceGroups"]
    assert [g["name"] for g in groups] == ["Imported"]
    assert sorted(members(user, groups[0]["groupId"])) == ["+27821000001", "+27821000002", "+27821000004"]

    again = pigeon(server, "contacts", "import", "--email", user.email, path, "--group", groups[0]["groupId"])
    assert again.returncode == 0 and again.stdout.startswith("imported 0, refused 8"), again.stdout
    assert len(user.http.get(f"{API}/groups/all").json()["webServiceGroups"]) == 1


def test_a_large_import_in_chunks(server: Server, user: User) -> None:
    gid = group_id(user, "Many")
    rows = [f"+2782{i:07d},First{i},Last{i}" for i in range(4_500)]
    rows[100] = rows[99]  # one duplicate
    path = csv_file(server, "many.csv", "number,first_name,last_name\n" + "\n".join(rows) + "\n")
    done = pigeon(server, "contacts", "import", "--email", user.email, path, "--group", gid)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["imported 4499, refused 1", "line 102: +27820000099: duplicate in file"]
    page = user.http.get(f"{API}/groups/{gid}/contacts", params={"page": 5, "pageSize": 1000}).json()
    assert len(page["webServiceContacts"]) == 499


def test_the_listing_of_refusals_is_capped(server: Server, user: User) -> None:
    path = csv_file(server, "bad.csv", "phone\n" + "\n".join(f"bad{i}" for i in range(60)) + "\n")
    done = pigeon(server, "contacts", "import", "--email", user.email, path)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[0] == "imported 0, refused 60"
    assert len(lines) == 52 and lines[-1] == "... and 10 more"


def test_import_errors(server: Server, user: User) -> None:
    good = csv_file(server, "good.csv", "number\n+27821234567\n")
    unknown = pigeon(server, "contacts", "import", "--email", "nobody@example.com", good)
    assert unknown.returncode != 0 and "no user with email" in unknown.stderr
    missing = pigeon(server, "contacts", "import", "--email", user.email, str(Path(server.workdir) / "absent.csv"))
    assert missing.returncode != 0 and "cannot read" in missing.stderr
    binary = Path(server.workdir) / "binary.csv"
    binary.write_bytes(b"number\n\xff\xfe\x00\x81\n")
    assert pigeon(server, "contacts", "import", "--email", user.email, str(binary)).returncode != 0
    headless = csv_file(server, "headless.csv", "name\nAnn\n")
    refused = pigeon(server, "contacts", "import", "--email", user.email, headless)
    assert refused.returncode != 0 and "no number column" in refused.stderr
    assert all_contacts(user) == {}


def test_import_of_unreadable_lines_and_nul_characters(server: Server, user: User) -> None:
    odd = csv_file(server, "odd.csv", f"number,firstName,notes\n0821000001,Ann\n0821000002,{BIG}\n"
                                      "0821000003,D\x00i\n0821000004,Ed,x\x00\n0821000005,Flo\n")
    done = pigeon(server, "contacts", "import", "--email", user.email, odd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "imported 2, refused 3",
        "line 3: (no number): cannot be read: field larger than field limit (131072)",
        "line 4: 0821000003: a field contains a NUL character (\\x00)",
        "line 5: 0821000004: a field contains a NUL character (\\x00)",
    ]
    assert set(all_contacts(user)) == {"+27821000001", "+27821000005"}
    spanning = csv_file(server, "spanning.csv", f'number,firstName\n0821000006,Gus\n0821000007,"{BIG}\nmore"\n')
    refused = pigeon(server, "contacts", "import", "--email", user.email, spanning)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "line 3: field larger than field limit (131072)" in refused.stderr, refused.stderr
    assert set(all_contacts(user)) == {"+27821000001", "+27821000005"}


# -- templates -------------------------------------------------------------------------------

def test_templates_commands(server: Server, user: User) -> None:
    made = pigeon(server, "templates", "create", "--email", user.email, "--name", "hello", "--text", "Hi {{firstName}}")
    assert made.returncode == 0, made.stderr
    tid = int(made.stdout.strip())
    assert user.http.get(f"{API}/templates/{tid}").json()["data"] == "Hi {{firstName}}"
    edited = pigeon(server, "templates", "edit", "--email", user.email, str(tid), "--text", "Hey {{ firstName }}")
    assert edited.returncode == 0, edited.stderr
    renamed = pigeon(server, "templates", "edit", "--email", user.email, "hello", "--name", "hey")
    assert renamed.returncode == 0, renamed.stderr
    assert user.http.get(f"{API}/templates/{tid}").json() == {
        "templateId": tid, "name": "hey", "data": "Hey {{ firstName }}", "links": []}
    listed = pigeon(server, "templates", "list", "--email", user.email)
    assert listed.stdout.splitlines() == [f"{tid}\they\tHey {{{{ firstName }}}}"]

    bad = pigeon(server, "templates", "create", "--email", user.email, "--name", "x", "--text", "Hi {{nick}}")
    assert bad.returncode != 0 and "{{firstName}}" in bad.stderr
    dup = pigeon(server, "templates", "create", "--email", user.email, "--name", "hey", "--text", "x")
    assert dup.returncode != 0 and "already have" in dup.stderr
    missing = pigeon(server, "templates", "edit", "--email", user.email, "424242", "--text", "x")
    assert missing.returncode != 0 and "no template" in missing.stderr
    nothing = pigeon(server, "templates", "edit", "--email", user.email, str(tid))
    assert nothing.returncode != 0
    assert len(user.http.get(f"{API}/templates/all").json()["webServiceTemplates"]) == 1


# -- send-group ------------------------------------------------------------------------------

def test_send_group(server: Server, user: User) -> None:
    gid = group_id(user, "Choir")
    for number, first in (("+27821000001", "Ann"), ("+27821000002", "Ben")):
        user.http.get(f"{API}/groups/{gid}/addContact/{contact_id(user, number, firstName=first)}")
    pigeon(server, "templates", "create", "--email", user.email, "--name", "invite", "--text", "Come, {{firstName}}!")
    done = pigeon(server, "send-group", "--email", user.email, "--group", "Choir", "--template", "invite",
                  "--campaign", "choir", "--data-field", "d1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "queued 2 messages to group 'Choir', using 2 credits"
    listing = user.http.get(f"{API}/messages/all").json()["webServiceMessages"]
    assert len(listing) == 2
    delivered = {m["toNumber"]: user.wait_status(m["messageId"], "DELIVERED") for m in listing}
    assert {n: m["message"] for n, m in delivered.items()} == {"+27821000001": "Come, Ann!", "+27821000002": "Come, Ben!"}
    assert all(m["campaign"] == "choir" and m["userDataField"] == "d1" for m in delivered.values())
    assert user.balance() == 98.0

    later = pigeon(server, "send-group", "--email", user.email, "--group", gid, "--message", "Later {{firstName}}",
                   "--at", "209901011200")
    assert later.returncode == 0, later.stderr
    scheduled = user.http.get(f"{API}/messages/all", params={"status": "SCHEDULED"}).json()["webServiceMessages"]
    assert sorted(m["message"] for m in scheduled) == ["Later Ann", "Later Ben"]
    assert user.balance() == 96.0


def test_send_group_refusals(db: Database, server: Server) -> None:
    poor = make_user(db, server, credits=1.0)
    try:
        gid = group_id(poor, "Pair")
        for number in ("+27821000001", "+27821000002"):
            poor.http.get(f"{API}/groups/{gid}/addContact/{contact_id(poor, number)}")
        group_id(poor, "Empty")
        broke = pigeon(server, "send-group", "--email", poor.email, "--group", "Pair", "--message", "hi")
        assert broke.returncode != 0 and "Insufficient credits" in broke.stderr and "nothing was sent" in broke.stderr
        for args, said in ((["--group", "Nope", "--message", "hi"], "no group"),
                           (["--group", "Empty", "--message", "hi"], "no contacts"),
                           (["--group", "Pair", "--template", "none"], "no template"),
                           (["--group", "Pair", "--message", "hi {{x}}"], "Unknown placeholder"),
                           (["--group", "Pair", "--message", "hi", "--at", "soon"], "yyyyMMddHHmm"),
                           (["--group", "Pair"], "exactly one")):
            done = pigeon(server, "send-group", "--email", poor.email, *args)
            assert done.returncode != 0 and said in done.stderr, (args, done.stderr)
        assert poor.http.get(f"{API}/messages/all").json()["totalElements"] == 0
        assert poor.balance() == 1.0
    finally:
        poor.http.close()


def test_send_group_is_capped_at_10000(db: Database, server: Server, user: User) -> None:
    crowd(db, user, "Everyone", 10_001)
    done = pigeon(server, "send-group", "--email", user.email, "--group", "Everyone", "--message", "hi")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "10,001" in done.stderr and "10,000" in done.stderr and "nothing was sent" in done.stderr, done.stderr
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 0
