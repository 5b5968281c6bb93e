"""The command line's changes in the operator's audit log, running the real ``pigeon`` command
on SQLite and PostgreSQL: each change one entry naming ``cli:<login>``, the account it changed,
what it was done to and the options given (never a secret, nor a URL's query); a refused
command and one that only shows write none."""

from __future__ import annotations

import getpass
import random
import subprocess
import sys

from sqlalchemy import select

from conftest import Server
from pigeon.audit.models import AuditEntry
from pigeon.db import Database

ACTOR = f"cli:{getpass.getuser()}"


def pigeon(server: Server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pigeon", *args], env=server.env, cwd=server.workdir,
                          input=stdin, capture_output=True, text=True, timeout=60)


def entries(db: Database, since: int) -> list[tuple[str, str, int | None, str | None, str | None]]:
    with db.read() as session:
        rows = session.execute(select(AuditEntry.action, AuditEntry.actor, AuditEntry.account_id,
                                      AuditEntry.subject, AuditEntry.detail)
                               .where(AuditEntry.id > since, AuditEntry.actor.like("cli:%"))
                               .order_by(AuditEntry.id)).all()
    return [tuple(r) for r in rows]


def last_id(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0


def test_each_change_made_on_the_command_line_is_in_the_audit_log(db: Database, server: Server) -> None:
    email = f"cli-audit-{random.randrange(10**9)}@example.com"
    number = f"+2782{random.randrange(10**7):07d}"
    start = last_id(db)

    created = pigeon(server, "account", "create", "--email", email, "--credits", "3")
    assert created.returncode == 0, created.stderr
    account_id = int(created.stdout.split("account:")[1].split()[0])
    assert pigeon(server, "account", "create", "--email", email).returncode != 0  # refused: no entry
    assert pigeon(server, "account", "settings", "--email", email).returncode == 0  # only shows: no entry
    secret = "a-secret-never-logged-" + str(random.randrange(10**9))
    changed = pigeon(server, "account", "settings", "--email", email, "--report-url",
                     f"http://127.0.0.1:9/r?key={secret}", "--secret", secret)
    assert changed.returncode == 0, changed.stderr
    assert pigeon(server, "account", "password", "--email", email, "--stdin",
                  stdin="a long enough password\n").returncode == 0
    added = pigeon(server, "numbers", "add", number, "--account", str(account_id))
    assert added.returncode == 0, added.stderr
    assert pigeon(server, "numbers", "add", "not a number", "--account", str(account_id)).returncode != 0
    assert pigeon(server, "numbers", "list", "--account", str(account_id)).returncode == 0  # a read: no entry
    campaign = pigeon(server, "campaigns", "create", "--account", str(account_id), "--name", "Alerts")
    assert campaign.returncode == 0, campaign.stderr

    got = entries(db, start)
    assert [(action, actor, account) for action, actor, account, _, _ in got] == [
        ("account.create", ACTOR, account_id), ("webhook.settings", ACTOR, account_id),
        ("password.set", ACTOR, account_id), ("number.add", ACTOR, account_id),
        ("campaign.create", ACTOR, account_id)]
    create, settings, _, number_added, _ = got
    assert create[3] == email and create[4] == f"--email {email} --credits 3.0"
    assert settings[4] == "delivery report URL set to http://127.0.0.1:9/…; shared secret replaced"
    assert all(secret not in str(row) for row in got)
    assert number_added[3] == number


def test_a_porting_pin_is_never_written_and_flags_read_as_typed(db: Database, server: Server) -> None:
    email = f"cli-audit-{random.randrange(10**9)}@example.com"
    created = pigeon(server, "account", "create", "--email", email)
    assert created.returncode == 0, created.stderr
    account_id = int(created.stdout.split("account:")[1].split()[0])
    start = last_id(db)
    number = f"+2782{random.randrange(10**7):07d}"
    pin = str(random.randrange(10**7, 10**8))
    ordered = pigeon(server, "numbers", "port", "create", "--account", str(account_id), "--numbers", number,
                     "--billing", f"pin={pin}", "--billing", "company=Acme")
    assert ordered.returncode == 0, ordered.stderr
    allocated = pigeon(server, "numbers", "allocate", number, "--account", str(account_id), "--product",
                       "ZOOM_CONTACT_CENTER")
    assert allocated.returncode == 0, allocated.stderr
    got = entries(db, start)
    assert [(action, account) for action, _, account, _, _ in got] == [
        ("port.create", account_id), ("number.allocate", account_id)]
    assert got[0][4] == f"--account {account_id} --numbers {number} --product ZOOM_PHONE --billing (given)"
    assert all(pin not in str(row) for row in got)
    assert got[1][3] == number and got[1][4] == f"{number} --account {account_id} --product ZOOM_CONTACT_CENTER"


def test_a_change_whose_entry_cannot_be_written_warns_and_still_succeeds(db: Database, server: Server) -> None:
    """The entry's own transaction fails (the audit table made read-only for the run, by a
    trigger): the change stands, the command ends well, and stderr says the entry is missing."""
    email = f"cli-audit-{random.randrange(10**9)}@example.com"
    guard = "audit_frozen_" + str(random.randrange(10**6))
    if db.engine.dialect.name == "sqlite":
        create = (f"CREATE TRIGGER {guard} BEFORE INSERT ON audit_log WHEN NEW.subject = '{email}' "
                  "BEGIN SELECT RAISE(ABORT, 'audit log frozen'); END")
        drop = [f"DROP TRIGGER {guard}"]
    else:
        create = [f"CREATE FUNCTION {guard}() RETURNS trigger AS $$ BEGIN IF NEW.subject = '{email}' THEN "
                  "RAISE EXCEPTION 'audit log frozen'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                  f"CREATE TRIGGER {guard} BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION {guard}()"]
        drop = [f"DROP TRIGGER {guard} ON audit_log", f"DROP FUNCTION {guard}()"]
    with db.engine.begin() as conn:
        for statement in [create] if isinstance(create, str) else create:
            conn.exec_driver_sql(statement)
    try:
        created = pigeon(server, "account", "create", "--email", email)
    finally:
        with db.engine.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)
    assert created.returncode == 0, created.stderr
    assert "warning: done, but its audit log entry could not be written" in created.stderr
    assert "audit log frozen" in created.stderr
    assert created.stdout.strip().splitlines()[-1]  # the token printed, as ever
    with db.read() as session:
        from pigeon.accounts.models import User

        assert session.scalar(select(User.id).where(User.email == email)) is not None  # the change stands


def test_the_command_lines_entries_show_in_the_console_log(db: Database, server: Server) -> None:
    """The same table the console reads: filtered by account and action family."""
    from pigeon.audit import service as audit

    email = f"cli-audit-{random.randrange(10**9)}@example.com"
    created = pigeon(server, "account", "create", "--email", email)
    assert created.returncode == 0, created.stderr
    account_id = int(created.stdout.split("account:")[1].split()[0])
    assert pigeon(server, "account", "token", "--email", email).returncode == 0
    with db.read() as session:
        shown = audit.page(session, account_id=account_id, action="token")
    assert [(e.action, e.actor, e.subject) for e in shown] == [("token.rotate", ACTOR, email)]
