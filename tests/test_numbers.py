"""The numbers Pigeon owns (pigeon.numbers), on both databases: their forms, owners, the sender
an account's message goes out from, whose a number a message came to, a file of numbers with
good and bad rows mixed, and the command line."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import select

from conftest import Server, User
from pigeon.accounts.models import User as UserRow
from pigeon.carriers.base import InboundSms
from pigeon.db import Database, utcnow
from pigeon.errors import Conflict, Forbidden, Invalid, NotFound, Reason
from pigeon.inbound.service import receive
from pigeon.numbers import importer, service
from pigeon.numbers.models import Kind, PhoneNumber, State


def fresh() -> str:
    """A valid US number no other test uses."""
    return "+1415" + str(2_000_000 + uuid.uuid4().int % 7_000_000)


def account_of(db: Database, user: User) -> int:
    with db.read() as session:
        return session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))


@pytest.mark.parametrize("raw,kind,stored", [
    ("+1 (415) 555-2671", Kind.LOCAL, "+14155552671"), ("0821234567", Kind.MOBILE, "+27821234567"),
    ("27821234567", Kind.TOLL_FREE, "+27821234567"), ("12345", Kind.SHORT_CODE, "12345"),
    ("PIGEON", Kind.ALPHANUMERIC, "PIGEON"), ("My Shop 24", Kind.ALPHANUMERIC, "My Shop 24"),
])
def test_the_stored_form_of_each_kind(raw: str, kind: Kind, stored: str) -> None:
    assert service.canonical(raw, kind, "ZA") == stored


@pytest.mark.parametrize("raw,kind", [
    ("12", Kind.LOCAL), ("12", Kind.SHORT_CODE), ("123456789", Kind.SHORT_CODE), ("12a45", Kind.SHORT_CODE),
    ("123456", Kind.ALPHANUMERIC), ("ABCDEFGHIJKL", Kind.ALPHANUMERIC), ("Shop!", Kind.ALPHANUMERIC),
    (None, Kind.SHORT_CODE), (12345, Kind.ALPHANUMERIC),
])
def test_what_is_no_number(raw: object, kind: Kind) -> None:
    with pytest.raises(Invalid) as refused:
        service.canonical(raw, kind, "ZA")
    assert refused.value.reason == Reason.INVALID_NUMBER


def test_numbers_owners_senders_and_routes(db: Database, user: User, other: User) -> None:
    mine, theirs = account_of(db, user), account_of(db, other)
    a, b, pending, mms_only = fresh(), fresh(), fresh(), fresh()
    with db.write() as session:
        row_a = service.add(session, service.Spec(a, carrier="main"), "ZA", account_id=mine, known_carriers=["main"])
        service.add(session, service.Spec(b), "ZA", account_id=theirs)
        service.add(session, service.Spec(pending, state=State.PENDING), "ZA", account_id=mine)
        service.add(session, service.Spec(mms_only, sms=False, mms=True), "ZA", account_id=mine)
        pool = service.add(session, service.Spec("PIGEON", Kind.ALPHANUMERIC), "ZA")
        for refused, spec, extra in [
            (Conflict, service.Spec(a.replace("+1", "001")), {}),  # another spelling of the same number
            (Invalid, service.Spec(fresh(), carrier="nope"), {"known_carriers": ["main"]}),
            (Invalid, service.Spec("SHOP", Kind.ALPHANUMERIC, mms=True), {}),
            (NotFound, service.Spec(fresh()), {"account_id": 2**31 - 1}),
        ]:
            with pytest.raises(refused), session.begin_nested():
                service.add(session, spec, "ZA", **extra)
        assert row_a.carrier == "main" and pool.account_id is None
        assert "PIGEON" in [n.number for n in service.numbers(session, pool=True)]
        assert a not in [n.number for n in service.numbers(session, pool=True)]
        # senders: what accept reads, in one query
        assert service.senders(session, mine, set()).default is None  # no default yet: the carrier's own
        found = service.senders(session, mine, {a, b, fresh(), pending, mms_only})
        assert found.usable == {a}  # not another account's, nobody's, a pending one, nor one without SMS
        service.make_default(session, row_a)
        assert service.senders(session, mine, set()).default == a
        with pytest.raises(Invalid):
            service.make_default(session, pool)  # in no account
        # users
        with pytest.raises(Invalid):
            service.assign_user(session, row_a, other.user_id)  # not of the owning account
        service.assign_user(session, row_a, user.user_id)
        # routes
        owner = service.owner_of(session, a.removeprefix("+"), "ZA")
        assert owner is not None and (owner.account_id, owner.user_id) == (mine, user.user_id)
        assert service.owner_of(session, pending, "ZA") is None and service.owner_of(session, fresh(), "ZA") is None
        assert service.owner_of(session, "PIGEON", "ZA") is None  # the pool's
        # moving a number takes its user and its default with it
        service.allocate(session, [row_a.id], theirs)
        session.refresh(row_a)
        assert (row_a.account_id, row_a.user_id, row_a.is_default) == (theirs, None, False)
        assert service.senders(session, mine, set()).default is None


def test_an_inbound_message_goes_to_the_numbers_owner(db: Database, user: User, other: User) -> None:
    owned, phone = fresh(), fresh()
    with db.write() as session:
        service.add(session, service.Spec(owned), "ZA", account_id=account_of(db, other))
    user.http.post("/app/api/rest/v1/sms/send.json", json={"recipientNumber": phone, "message": "hi"})
    with db.write() as session:  # the phone answers the owned number: the owner gets it, unlinked
        stored = receive(session, InboundSms("sim", phone, owned, "to the owner"), utcnow(), "ZA")
        assert stored is not None and (stored.user_id, stored.replied_to_id) == (other.user_id, None)
        stored = receive(session, InboundSms("sim", phone, "12345", "to a number nobody owns"), utcnow(), "ZA")
        assert stored is not None and stored.user_id == user.user_id and stored.replied_to_id  # the fallback
        assert receive(session, InboundSms("sim", fresh(), owned.removeprefix("+1"), "x"), utcnow(), "US") is not None


def test_a_file_of_numbers_good_and_bad_rows_mixed(db: Database, user: User, tmp_path) -> None:  # type: ignore[no-untyped-def]
    account = account_of(db, user)
    good = [fresh() for _ in range(3)]
    taken = fresh()
    with db.write() as session:
        service.add(session, service.Spec(taken), "ZA")
    lines = ["number,kind,source,carrier,account,capabilities",
             f"{good[0]},local,purchased,,,sms+mms", f"{good[1]},mobile,byoc,,{account},sms",
             "12,local,,,,", f"{good[0]},local,,,,", f"{taken},,,,,", f"{fresh()},landline,,,,",
             f"{fresh()},,,nope,,", f"{fresh()},,,,abc,", f"{fresh()},,,,,fax", "54321,short_code,,,,",
             f"{good[2]},,,,{2**31 - 1},", ",,,,,"]
    path = tmp_path / "numbers.csv"
    path.write_text("\n".join(lines) + "\n")
    with open(path, newline="") as stream:
        rows = list(importer.read(stream))
    summary = importer.import_rows(db, rows, "ZA", known_carriers=["main"])
    assert summary.added == 3, summary
    refused = {line: reason for line, _, reason in summary.refused}
    assert sorted(refused) == [4, 5, 6, 7, 8, 9, 10, 12, 13], refused
    assert "already" in refused[5] and "already" in refused[6] and "landline" in refused[7]
    assert "carrier" in refused[8] and "account" in refused[9] and "capabilities" in refused[10]
    with db.read() as session:
        made = {n.number: n for n in session.scalars(select(PhoneNumber).where(PhoneNumber.number.in_(good + ["54321"])))}
    assert set(made) == {good[0], good[1], "54321"} and made[good[0]].mms and made[good[1]].account_id == account
    with pytest.raises(Invalid, match="number"):
        list(importer.read(io.StringIO("phone,kind\n")))


def test_numbers_on_the_command_line(db: Database, server: Server, user: User, tmp_path) -> None:  # type: ignore[no-untyped-def]
    def pigeon(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pigeon", "numbers", *args], env=server.env,
                              cwd=server.workdir, capture_output=True, text=True, timeout=60)

    account, number = account_of(db, user), fresh()
    added = pigeon("add", number, "--kind", "mobile", "--capabilities", "sms,mms")
    assert added.returncode == 0 and number in added.stdout, added.stderr
    assert number in pigeon("list", "--pool").stdout
    allocated = pigeon("allocate", number.removeprefix("+"), "--account", str(account), "--user", user.email, "--default")
    assert allocated.returncode == 0 and "default sender" in allocated.stdout, allocated.stderr
    listed = pigeon("list", "--account", str(account)).stdout
    assert number in listed and "sms+mms" in listed and "default" in listed and f"user {user.user_id}" in listed
    again = pigeon("add", number)
    assert again.returncode == 1 and again.stderr.startswith("Error: Pigeon has the number"), again.stderr
    bad = pigeon("add", "12")
    assert bad.returncode == 1 and "Invalid local number" in bad.stderr and "Traceback" not in bad.stderr
    csv = tmp_path / "n.csv"
    csv.write_text(f"number,kind\n{fresh()},local\nnope,local\n")
    imported = pigeon("import", str(csv))
    assert imported.returncode == 0 and "added 1, refused 1" in imported.stdout and "line 3: nope" in imported.stdout
    assert pigeon("remove", number).returncode == 0
    assert number not in pigeon("list").stdout
    assert pigeon("remove", number).returncode == 1


def test_a_sender_must_be_the_accounts_and_one_bad_job_fails_alone(db: Database, user: User, other: User) -> None:
    import asyncio

    from pigeon.accounts.service import Principal
    from pigeon.config import Settings
    from pigeon.messages.models import Message
    from pigeon.sending.batcher import _accept, _Job
    from pigeon.sending.service import Sender, accept

    mine, theirs = fresh(), fresh()
    with db.write() as session:
        service.add(session, service.Spec(mine), "ZA", account_id=account_of(db, user))
        service.add(session, service.Spec(theirs), "ZA", account_id=account_of(db, other))
    me = Principal(user.user_id, account_of(db, user), user.email, True)
    sender = Sender(Settings(_env_file=None, database_url="sqlite://", demo_account=False))
    good = sender.prepare("+27821234567", "from mine", sender=mine.replace("+1", "001"))  # any spelling of it
    bad = sender.prepare("+27821234567", "from theirs", sender=theirs)
    assert good.sender == mine
    with pytest.raises(Forbidden, match="not one of your numbers"), db.write() as session:
        accept(session, me, [bad], utcnow())

    async def merged() -> list[_Job]:  # two jobs of one user in one commit, as the batcher merges them
        jobs = [_Job(me, [sender.prepare("+27821234568", "first")]), _Job(me, [bad]), _Job(me, [good])]
        with db.write() as session:
            _accept(session, jobs, utcnow())
        return jobs

    jobs = asyncio.run(merged())
    assert [type(job.error).__name__ if job.error else None for job in jobs] == [None, "Forbidden", None]
    with db.read() as session:
        stored = {m.body: m.from_number for m in session.scalars(select(Message).where(Message.user_id == user.user_id))}
    assert stored == {"first": None, "from mine": mine}  # no default yet: the first goes out with none


def test_the_same_number_added_by_two_writers_at_once(db: Database, user: User) -> None:
    """Both pass the check; the database's constraint decides, and the loser is refused cleanly."""
    import threading

    from pigeon.db.races import lost_races

    number, barrier, outcomes = fresh(), threading.Barrier(2), []

    def add() -> None:  # on SQLite the writes take turns (one writer); on PostgreSQL they race
        barrier.wait(5)
        try:
            with lost_races("taken"), db.write() as session:
                service.add(session, service.Spec(number), "ZA")
            outcomes.append("added")
        except Conflict as exc:
            outcomes.append(exc.detail)

    threads = [threading.Thread(target=add) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) in (["added", "taken"], ["Pigeon has the number " + number + " already", "added"])
    with db.read() as session:
        assert len([n for n in service.numbers(session) if n.number == number]) == 1


def test_what_an_operators_trial_found(db: Database, user: User, other: User, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Re-allocating within an account keeps user and default; an import survives a row with
    too many fields, other separators and kinds in capitals; an inbound number is kept in its
    stored form."""
    account = account_of(db, user)
    number = fresh()
    with db.write() as session:
        row = service.add(session, service.Spec(number), "ZA", account_id=account, user_id=user.user_id)
        service.make_default(session, row)
        service.allocate(session, [row.id], account)  # again, to the same account
        session.refresh(row)
        assert (row.user_id, row.is_default) == (user.user_id, True)
        with pytest.raises(Invalid, match="is not of account"):
            service.assign_user(session, row, other.user_id)
        with pytest.raises(Invalid, match="Invalid toll-free number"):
            service.canonical("12", Kind.TOLL_FREE, "ZA")
    first, second = fresh(), fresh()
    path = tmp_path / "semi.csv"
    path.write_text(f"number;kind;capabilities\n{first};MOBILE;sms\n{fresh()};mobile;sms;fax\n{second};local;\n")
    with open(path, newline="") as stream:
        summary = importer.import_rows(db, list(importer.read(stream)), "ZA")
    assert summary.added == 2 and [line for line, _, _ in summary.refused] == [3], summary  # empty: sms
    assert "too many fields" in summary.refused[0][2]
    phone = fresh()
    with db.write() as session:
        stored = receive(session, InboundSms("sim", phone, " " + number.removeprefix("+1"), "hi"), utcnow(), "US")
        assert stored is not None and stored.to_number == number and stored.user_id == user.user_id
